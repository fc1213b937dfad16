import assert from 'node:assert/strict';
import { test } from 'node:test';

import { learningRate, type TrainSchedule } from './trainLoop.ts';
import { TrainingRows, type RowTokenizer } from './trainingRows.ts';

// one token per character, BOS = 0: rows can be read back as text
const chars: RowTokenizer = { bos: 0, encode: (text) => Array.from(text, (c) => c.charCodeAt(0)) };
const text = (ids: Int32Array) => String.fromCharCode(...ids);

test('each row starts with BOS, then whole sentences, later ones after a space, cut at the row end', () => {
  const sentences = ['Ab.', 'Cde.', 'Fg.'];
  const rows = new TrainingRows(sentences, chars, 12, 7);
  const batch = rows.batch(4);
  assert.equal(batch.length, 48);
  const seen: string[] = [];
  for (let r = 0; r < 4; r++) {
    const row = batch.subarray(r * 12, (r + 1) * 12);
    assert.equal(row[0], 0, 'BOS first');
    const body = text(row.subarray(1));
    assert.ok(sentences.some((s) => body.startsWith(s)), `a row opens with a whole sentence, bare: ${body}`);
    seen.push(...body.split(' ').filter((s) => s.endsWith('.')));
  }
  for (const s of seen) assert.ok(sentences.includes(s), `${s} is a corpus sentence`);
});

test('every sentence is used once per epoch, in a seeded order', () => {
  const sentences = Array.from({ length: 10 }, (_, i) => `S${i}.`);
  const firstSentences = (seed: number) => {
    const rows = new TrainingRows(sentences, chars, 4, seed);  // BOS + one 3-character sentence per row
    return Array.from({ length: 10 }, () => text(rows.batch(1).subarray(1)));
  };
  const a = firstSentences(1);
  assert.deepEqual([...a].sort(), [...sentences].sort(), 'one epoch holds each sentence once');
  assert.deepEqual(firstSentences(1), a, 'the same seed gives the same order');
  assert.notDeepEqual(firstSentences(2), a, 'another seed another order');
  assert.throws(() => new TrainingRows([], chars, 4, 1), /no sentences/);
});

test('the learning rate warms up linearly, then decays by a cosine to its floor', () => {
  const s: TrainSchedule = { steps: 1000, peakLr: 1e-3, warmupSteps: 100, finalLrRatio: 0.1, weightDecay: 0, gradClip: 0 };
  assert.ok(Math.abs(learningRate(s, 0) - 1e-5) < 1e-12);
  assert.ok(Math.abs(learningRate(s, 99) - 1e-3) < 1e-12);
  assert.ok(Math.abs(learningRate(s, 550) - 0.55e-3) < 1e-9, 'halfway down the cosine: the mean of peak and floor');
  assert.ok(Math.abs(learningRate(s, 1000) - 1e-4) < 1e-12);
  for (let i = 101; i < 1000; i++) assert.ok(learningRate(s, i) <= learningRate(s, i - 1) + 1e-15, `monotone after warm-up at ${i}`);
});
