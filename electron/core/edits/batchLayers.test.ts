import assert from 'node:assert/strict';
import { test } from 'node:test';

import { batchDefaults, batchLayersAt } from './batchEdit.ts';

test('default layers scale EasyEdit\'s Llama-2 choice (4–8 of 32) to depth', () => {
  assert.deepEqual(batchDefaults('memit', 32, 11008).layers, [4, 5, 6, 7, 8]);
  assert.deepEqual(batchDefaults('memit', 4, 512).layers, [1, 2]);
  assert.deepEqual(batchDefaults('emmet', 32, 11008).layers, [5]);
});

test('a traced layer starts a window as long as the default one, kept inside the model', () => {
  assert.deepEqual(batchLayersAt('memit', 4, 0), [0, 1]);
  assert.deepEqual(batchLayersAt('alphaedit', 4, 3), [2, 3]);
  assert.deepEqual(batchLayersAt('memit', 32, 6), [6, 7, 8, 9, 10]);
  assert.deepEqual(batchLayersAt('memit', 32, 30), [27, 28, 29, 30, 31]);
  assert.deepEqual(batchLayersAt('emmet', 4, 2), [2]);
  assert.throws(() => batchLayersAt('memit', 4, 4), /out of range/);
});
