// The native trainer against independent computations: its gradient against central finite
// differences of its own loss, and its forward against llama.cpp evaluating the written GGUF.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { loadNative, type GraftNative, type TrainShape } from '../native/binding.ts';
import { openLlamaSession } from '../engine/llamaSession.ts';
import { spmVocabularyKv } from '../models/testModels/spmVocabulary.ts';
import { initialWeights, llamaWeightLayout, parameterCount } from './initialWeights.ts';
import { writeTrainedModel } from './trainedModelFile.ts';
import { SeededRandom } from '../util/seededRandom.ts';

let native: GraftNative;
let dir: string;
before(async () => {
  native = await loadNative();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'graft-trainer-'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const shape: TrainShape = { nLayer: 2, nEmbd: 64, nFf: 96, nHead: 4, nHeadKv: 4, nVocab: 320, seqLen: 12, batch: 3, threads: 1 };

function randomRows(s: TrainShape, seed: number, count = s.batch): Int32Array {
  const rng = new SeededRandom(seed);
  const rows = new Int32Array(count * (s.seqLen + 1));
  // token 1 is BOS in the SentencePiece test vocabulary; keep it out of the middle of rows
  for (let i = 0; i < rows.length; i++) rows[i] = 3 + (rng.nextUint32() % (s.nVocab - 3));
  return rows;
}

function axpy(w: Record<string, Float32Array>, d: Record<string, Float32Array>, a: number): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const [k, v] of Object.entries(w)) out[k] = v.map((x, i) => x + a * d[k]![i]!);
  return out;
}

test('the layout counts every weight once', () => {
  const d = 64, ff = 96, V = 320;
  assert.equal(parameterCount(shape), 2 * V * d + d + 2 * (2 * d + 4 * d * d + 3 * d * ff));
  assert.equal(new Set(llamaWeightLayout(shape).map((w) => w.name)).size, llamaWeightLayout(shape).length);
});

test('the gradient equals central finite differences of the loss along it', async () => {
  const w0 = initialWeights(shape, 3);
  const rows = randomRows(shape, 4);
  // β1 = β2 = 0 and a huge ε turn AdamW into plain gradient descent: Δw = −(lr/ε)·g.
  const lr = 1e3, eps = 1e6;
  const t = native.createTrainer(shape, w0);
  const { loss, gradNorm } = await t.step(rows, { lr, beta1: 0, beta2: 0, eps, weightDecay: 0, gradClip: 0 });
  const w1 = t.weights();
  t.dispose();
  const dw: Record<string, Float32Array> = {};
  let n2 = 0;
  for (const k of Object.keys(w0)) {
    dw[k] = w1[k]!.map((x, i) => x - w0[k]![i]!);
    for (const x of dw[k]!) n2 += x * x;
  }
  const scale = lr / eps;
  assert.ok(Math.abs(Math.sqrt(n2) - scale * gradNorm) < 1e-3 * scale * gradNorm, 'the step is lr/ε times the gradient');
  const lossAt = async (w: Record<string, Float32Array>) => {
    const tr = native.createTrainer(shape, w);
    try { return await tr.loss(rows); } finally { tr.dispose(); }
  };
  assert.ok(Math.abs((await lossAt(w0)) - loss) < 1e-5, 'loss() equals the loss step() reported');
  // along u = Δw: d/ds L(w + s·u) at 0 = g·u = −(lr/ε)‖g‖²
  const h = 0.5;
  const fd = ((await lossAt(axpy(w0, dw, h))) - (await lossAt(axpy(w0, dw, -h)))) / (2 * h);
  const expected = -scale * gradNorm * gradNorm;
  assert.ok(Math.abs(fd - expected) < 0.02 * Math.abs(expected), `finite differences ${fd} vs gradient ${expected}`);
});

test('training lowers the loss of what it sees', async () => {
  const t = native.createTrainer(shape, initialWeights(shape, 5));
  const rows = randomRows(shape, 6);
  const first = await t.loss(rows);
  assert.ok(Math.abs(first - Math.log(shape.nVocab)) < 0.1, `an untrained model is near uniform: ${first} vs ln V = ${Math.log(shape.nVocab)}`);
  for (let i = 0; i < 30; i++) await t.step(rows, { lr: 1e-2 });
  const last = await t.loss(rows);
  t.dispose();
  assert.ok(last < first * 0.5, `loss ${first} → ${last}`);
});


test('llama.cpp computes the same loss from the written GGUF, F32 exactly and Q8_0 closely', async () => {
  const t = native.createTrainer(shape, initialWeights(shape, 7));
  const train = randomRows(shape, 8);
  for (let i = 0; i < 20; i++) await t.step(train, { lr: 1e-2 });
  const weights = t.weights();
  t.dispose();
  const single = { ...shape, batch: 1 };
  const row = randomRows(single, 9, 1);
  const probe = native.createTrainer(single, weights);
  const trainerLoss = await probe.loss(row);
  probe.dispose();

  // Q8_0 rounds weights and activations: within 1% of a loss far above ln V (the row is unseen)
  for (const [type, tolerance] of [['f32', 2e-4], ['q8_0', 1e-2 * trainerLoss]] as const) {
    const file = path.join(dir, `trained-${type}.gguf`);
    writeTrainedModel(native, file, shape, weights, type, {
      name: 'trainer-test', description: 'trainer parity test', contextLength: shape.seqLen + 1, vocabulary: spmVocabularyKv(shape.nVocab),
    });
    const session = await openLlamaSession(native, file, { contextSize: 32 });
    try {
      const scored = await session.score([{ tokens: row }]);
      const nll = scored.sequences[0]!.nll;
      assert.equal(nll.length, shape.seqLen);
      const mean = nll.reduce((a, b) => a + b, 0) / nll.length;
      assert.ok(Math.abs(mean - trainerLoss) < tolerance, `${type}: llama.cpp ${mean} vs trainer ${trainerLoss}`);
    } finally {
      session.dispose();
    }
  }
});

test('bad shapes and batches are refused with the reason', async () => {
  assert.throws(() => native.createTrainer({ ...shape, nHeadKv: 2 }, initialWeights(shape, 1)), /key\/value heads/);
  const w = initialWeights(shape, 1);
  delete w['output.weight'];
  assert.throws(() => native.createTrainer(shape, w), /lack output\.weight/);
  const t = native.createTrainer(shape, initialWeights(shape, 1));
  await assert.rejects(t.step(new Int32Array(5), { lr: 1e-3 }), /needs 3 rows of 13 tokens/);
  const bad = randomRows(shape, 2);
  bad[4] = shape.nVocab;
  await assert.rejects(t.loss(bad), /outside the vocabulary/);
  t.dispose();
});
