import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { loadNative, type GraftNative } from '../native/binding.ts';
import { generatedModel, realModel, tempDir } from '../testing/fixtures.ts';
import { nextTokenDistribution, withModel } from '../models/nodeLlamaProbe.ts';
import { openLlamaSession } from './llamaSession.ts';

let native: GraftNative;
before(async () => {
  native = await loadNative();
});

async function assertMatchesNodeLlamaCpp(model: string, text: string) {
  const session = await openLlamaSession(native, model);
  try {
    const tokens = session.tokenize(text);
    const ours = await session.evaluate(tokens);
    const last = ours.logprobs!.subarray((ours.nTokens - 1) * ours.nVocab, ours.nTokens * ours.nVocab);
    const theirs = await withModel(model, (m) => nextTokenDistribution(m, text, true));
    let maxDiff = 0;
    for (let t = 0; t < ours.nVocab; t++) maxDiff = Math.max(maxDiff, Math.abs(Math.exp(last[t]!) - (theirs.get(t) ?? 0)));
    assert.ok(maxDiff < 1e-5, `next-token probabilities differ by up to ${maxDiff}`);
    // Every row is a normalised distribution.
    for (let i = 0; i < ours.nTokens; i++) {
      let sum = 0;
      for (let t = 0; t < ours.nVocab; t++) sum += Math.exp(ours.logprobs![i * ours.nVocab + t]!);
      assert.ok(Math.abs(sum - 1) < 1e-4, `row ${i} sums to ${sum}`);
    }
  } finally {
    session.dispose();
  }
}

describe('llama.cpp session', () => {
  const stories = realModel('stories260K-F32.gguf');
  test('stories260K: next-token probabilities equal node-llama-cpp\'s (F32 cache)', { skip: stories.skip }, async () => {
    await assertMatchesNodeLlamaCpp(stories.path!, 'Once upon a time, there was a little girl named Lily.');
  });

  for (const arch of ['llama', 'qwen2', 'qwen3'] as const) {
    test(`generated ${arch}: next-token probabilities equal node-llama-cpp's`, async () => {
      await assertMatchesNodeLlamaCpp(generatedModel(native, tempDir(), { arch, type: 'f32' }), 'the king of the city said');
    });
  }

  test('captured keys are the input of ffn_down: a change ΔW of that matrix moves l_out by exactly ΔW·k', async () => {
    const dir = tempDir();
    const src = stories.path ?? generatedModel(native, dir, { arch: 'llama', type: 'f32' });
    const layer = 2;
    const name = `blk.${layer}.ffn_down.weight`;
    const down = native.readTensor(src, name);
    const [nFf, nEmbd] = down.shape as [number, number];
    // ΔW = u vᵀ with u over n_embd (rows) and v over n_ff (columns); ggml stores row-major with ne0 = n_ff.
    const u = Float32Array.from({ length: nEmbd }, (_, i) => Math.sin(i + 1) * 0.5);
    const v = Float32Array.from({ length: nFf }, (_, j) => Math.cos(j * 0.7) * 0.3);
    const edited = Float32Array.from(down.values);
    for (let r = 0; r < nEmbd; r++) for (let c = 0; c < nFf; c++) edited[r * nFf + c]! += u[r]! * v[c]!;
    const out = path.join(dir, 'edited.gguf');
    await native.rewrite(src, out, { replace: [{ name, type: 'f32', f32: edited }] });

    const text = 'Once upon a time there was a dog';
    const capture = async (file: string) => {
      const s = await openLlamaSession(native, file);
      try {
        return await s.evaluate(s.tokenize(text), { keyLayers: [layer], residualLayers: [layer], logprobs: false });
      } finally {
        s.dispose();
      }
    };
    const base = await capture(src);
    const after = await capture(out);
    const keys = base.keys[String(layer)]!;
    assert.equal(keys.length, base.nTokens * nFf);
    assert.deepEqual(after.keys[String(layer)], keys, 'keys of the edited layer must not change');
    let errSq = 0;
    let refSq = 0;
    for (let p = 0; p < base.nTokens; p++) {
      let vk = 0;
      for (let c = 0; c < nFf; c++) vk += v[c]! * keys[p * nFf + c]!;
      for (let r = 0; r < nEmbd; r++) {
        const expected = u[r]! * vk;
        const got = after.residuals[String(layer)]![p * nEmbd + r]! - base.residuals[String(layer)]![p * nEmbd + r]!;
        errSq += (got - expected) ** 2;
        refSq += expected ** 2;
      }
    }
    assert.ok(refSq > 0);
    assert.ok(Math.sqrt(errSq / refSq) < 1e-4, `relative error ${Math.sqrt(errSq / refSq)}`);
  });

  test('bad requests: layer out of range, text longer than the context, empty tokens', async () => {
    const session = await openLlamaSession(native, generatedModel(native, tempDir(), { arch: 'llama', type: 'q8_0' }), { contextSize: 16 });
    try {
      await assert.rejects(session.evaluate(session.tokenize('the king'), { keyLayers: [5] }), /layer 5 is out of range \(the model has 2 layers/);
      await assert.rejects(session.evaluate(session.tokenize('the king '.repeat(20))), /tokens long but the context holds 16/);
      await assert.rejects(session.evaluate(new Int32Array(0)), /the text is empty/);
      await assert.rejects(session.evaluate(Int32Array.from([99999])), /outside the vocabulary/);
    } finally {
      session.dispose();
    }
    await assert.rejects(openLlamaSession(native, '/nonexistent.gguf'), /file not found/);
  });
});
