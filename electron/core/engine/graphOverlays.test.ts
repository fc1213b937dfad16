// The own graph's low-rank overlays equal a model whose ffn_down was merged and rewritten
// (and a LoRA adapter file read back as overlays), and its deltas equal llama.cpp's
// activation patching in the eval callback.
import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { mergeLora, writeLoraAdapter, type LoraFactors } from '../export/loraAdapter.ts';
import { loadNative, type GraftNative } from '../native/binding.ts';
import type { NativeGraphModel } from '../native/graphTypes.ts';
import { generatedModel, realModel, tempDir } from '../testing/fixtures.ts';
import { maxAbsDiff, randomVector } from '../testing/graphFixtures.ts';
import { withGraph as withGraphOf } from '../testing/graphFixtures.ts';
import type { OpenGraphOptions } from './graphModel.ts';
import { openLlamaSession } from './llamaSession.ts';
import { overlaysFromLora } from './loraOverlays.ts';

let native: GraftNative;
before(async () => {
  native = await loadNative();
});

function withGraph<T>(model: string, fn: (g: NativeGraphModel) => Promise<T>, options: OpenGraphOptions = {}): Promise<T> {
  return withGraphOf(native, model, fn, options);
}

const text = 'Once upon a time, there was a little girl named Lily.';

describe('own graph: low-rank overlays', () => {
  const stories = realModel('stories260K-F32.gguf');
  for (const [name, file, skip] of [
    ['stories260K F32', () => stories.path!, stories.skip],
    ['generated qwen2 f32', () => generatedModel(native, tempDir(), { arch: 'qwen2', type: 'f32' }), false],
  ] as const) {
    test(`equal the merged, rewritten ffn_down (${name}, ≤ 1e-4), also read from a LoRA file`, { skip }, async () => {
      const dir = tempDir();
      const model = file();
      const info = await withGraph(model, async (g) => g.info);
      const layer = info.nLayer - 2, rank = 2, base = `blk.${layer}.ffn_down.weight`;
      const u = randomVector(rank * info.nEmbd, 3, 0.5), v = randomVector(rank * info.nFf, 4, 0.5);
      // as LoRA factors: A = rows v_j (rank × n_ff), B = n_embd × rank with B[e][j] = u_j[e]
      const b = new Float32Array(info.nEmbd * rank);
      for (let e = 0; e < info.nEmbd; e++) for (let j = 0; j < rank; j++) b[e * rank + j] = u[j * info.nEmbd + e]!;
      const factors: LoraFactors = { base, nIn: info.nFf, nOut: info.nEmbd, rank, a: v, b };
      const merged = path.join(dir, 'merged.gguf');
      await native.rewrite(model, merged, { replace: [{ name: base, type: 'f32', f32: mergeLora(native.readTensor(model, base).values, factors) }] });
      const adapter = path.join(dir, 'edit.gguf');
      writeLoraAdapter(native, adapter, { architecture: info.arch, alpha: 4, factors: [factors] });  // alpha/rank = 2

      const reference = await withGraph(merged, async (g) => (await g.run({ prompts: [g.tokenize(text, true)], allLogits: true })).logprobs);
      await withGraph(model, async (g) => {
        const prompts = [g.tokenize(text, true)];
        const plain = (await g.run({ prompts, allLogits: true })).logprobs;
        assert.ok(maxAbsDiff(plain, reference) > 1e-2, 'the edit must matter for the comparison to mean anything');
        const overlaid = (await g.run({ prompts, allLogits: true, overlays: [{ layer, rank, u, v }] })).logprobs;
        assert.ok(maxAbsDiff(overlaid, reference) <= 1e-4, `overlay vs merged: ${maxAbsDiff(overlaid, reference)}`);
        const fromFile = overlaysFromLora(native, adapter, g.info, 0.5);  // 0.5 · alpha/rank = 1
        const lora = (await g.run({ prompts, allLogits: true, overlays: fromFile })).logprobs;
        assert.ok(maxAbsDiff(lora, reference) <= 1e-4, `LoRA file vs merged: ${maxAbsDiff(lora, reference)}`);
      });
      // and llama.cpp on the merged file agrees too
      const session = await openLlamaSession(native, merged, { contextSize: 128 });
      try {
        const llama = (await session.evaluate(session.tokenize(text, true))).logprobs!;
        assert.ok(maxAbsDiff(llama, reference) <= 1e-3);
      } finally {
        session.dispose();
      }
    });
  }

  test('an adapter for other weights or another architecture is refused', async () => {
    const dir = tempDir();
    const model = generatedModel(native, dir, { arch: 'llama', type: 'f32' });
    const attn = path.join(dir, 'attn.gguf');
    writeLoraAdapter(native, attn, { architecture: 'llama', factors: [{ base: 'blk.0.attn_q.weight', nIn: 64, nOut: 64, rank: 1, a: new Float32Array(64), b: new Float32Array(64) }] });
    const qwen = path.join(dir, 'qwen.gguf');
    writeLoraAdapter(native, qwen, { architecture: 'qwen2', factors: [{ base: 'blk.0.ffn_down.weight', nIn: 128, nOut: 64, rank: 1, a: new Float32Array(128), b: new Float32Array(64) }] });
    await withGraph(model, async (g) => {
      assert.throws(() => overlaysFromLora(native, attn, g.info), /applies adapters to blk\.N\.ffn_down\.weight only/);
      assert.throws(() => overlaysFromLora(native, qwen, g.info), /adapter for 'qwen2' but the model is 'llama'/);
      assert.throws(() => overlaysFromLora(native, model, g.info), /is not a LoRA adapter/);
    });
  });
});

describe('own graph: deltas equal llama.cpp activation patching', () => {
  const stories = realModel('stories260K-F32.gguf');
  test('adding a vector at (layer, site, position) gives the same log-probabilities in both engines', async () => {
    const model = stories.path ?? generatedModel(native, tempDir(), { arch: 'llama', type: 'f32', layers: 3 });
    const session = await openLlamaSession(native, model, { contextSize: 128 });
    try {
      await withGraph(model, async (g) => {
        const tokens = g.tokenize(text, true);
        for (const [site, layer, pos] of [['mlp_out', 0, 4], ['resid', 1, 7], ['mlp_out', g.info.nLayer - 1, 2]] as const) {
          const values = randomVector(g.info.nEmbd, 17 + layer, 0.8);
          const ours = await g.run({ prompts: [tokens], allLogits: true, deltas: [{ layer, site, rows: [{ prompt: 0, pos }], values }] });
          const theirs = await session.evaluate(tokens, { patches: [{ layer, site, position: pos, mode: 'add', values }] });
          const plain = await session.evaluate(tokens);
          assert.ok(maxAbsDiff(theirs.logprobs!, plain.logprobs!) > 1e-3, `${site} ${layer}: the patch must change something`);
          const d = maxAbsDiff(ours.logprobs, theirs.logprobs!);
          assert.ok(d <= 1e-3, `${site} layer ${layer} position ${pos}: engines differ by ${d}`);
        }
      });
    } finally {
      session.dispose();
    }
  });
});
