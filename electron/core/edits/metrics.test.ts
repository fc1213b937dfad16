import assert from 'node:assert/strict';
import { test } from 'node:test';

import { openGraphModel } from '../engine/graphModel.ts';
import { loadNative } from '../native/binding.ts';
import { generatedModel, tempDir } from '../testing/fixtures.ts';
import { fluency } from './metrics.ts';

test('fluency samples with an edit applied on the native graph, and a zero edit changes nothing', async () => {
  const native = await loadNative();
  const graph = await openGraphModel(native, generatedModel(native, tempDir(), { arch: 'llama', type: 'f32' }), { threads: 1 });
  try {
    const { nEmbd, nFf } = graph.info;
    const zero = [{ layer: 0, rank: 1, u: new Float32Array(nEmbd), v: new Float32Array(nFf) }];
    const prompts = ['the old man', 'a dog ran'];
    const plain = await fluency(graph, prompts, [], 3, 12);
    assert.equal(await fluency(graph, prompts, zero, 3, 12), plain);
  } finally {
    graph.dispose();
  }
});
