import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { openLlamaSession } from '../engine/llamaSession.ts';
import { writeLoraAdapter } from '../export/loraAdapter.ts';
import { loadNative, type GraftNative, type NativeLlamaSession } from '../native/binding.ts';
import { generatedModel, realModel, tempDir } from '../testing/fixtures.ts';
import { SeededRandom } from '../util/seededRandom.ts';
import { baseCacheFile, baseDistributions, clearBaseDistributionCache, klDivergence, klToBase, percentile } from './klToBase.ts';

let native: GraftNative;
before(async () => {
  native = await loadNative();
});

const prompts = [
  'Once upon a time', 'The little girl', 'Tom and his dog', 'She went to the', 'The sun was',
  'One day, a big', 'Lily wanted to', 'The cat sat on the', 'They played in the park and', 'Mom said',
  'He was very', 'The bird flew', 'At the end of the day', 'The king of the city said', 'A small boy named',
  'Ben liked to eat', 'The tree was tall and', 'It was a sunny', 'The ball rolled', 'Sue found a',
];

/** A rank-1 adapter on one ffn_down with random factors, as an edit would be stored. */
function randomAdapter(file: string, model: string, layer: number, seed: number): void {
  const down = native.readTensor(model, `blk.${layer}.ffn_down.weight`);
  const [nIn, nOut] = down.shape as [number, number];
  const rng = new SeededRandom(seed);
  const arch = native.inspect(model).kv.find((k) => k.key === 'general.architecture')!.value as string;
  writeLoraAdapter(native, file, {
    architecture: arch,
    factors: [{ base: `blk.${layer}.ffn_down.weight`, nIn, nOut, rank: 1, a: rng.fill(nIn, 1 / Math.sqrt(nIn)), b: rng.fill(nOut, 1) }],
  });
}

async function withSession<T>(model: string, lora: { path: string; scale: number } | null, fn: (s: NativeLlamaSession) => Promise<T>): Promise<T> {
  const s = await openLlamaSession(native, model, { contextSize: 256, threads: 1, ...(lora ? { lora: [lora] } : {}) });
  try {
    return await fn(s);
  } finally {
    s.dispose();
  }
}

describe('KL to the base model', () => {
  const stories = realModel('stories260K-F32.gguf');

  test('base vs itself is 0; an adapter gives KL > 0 growing with its scale, top-1 agreement not growing', async () => {
    const dir = tempDir();
    const model = stories.path ?? generatedModel(native, dir, { arch: 'llama', type: 'f32' });
    clearBaseDistributionCache();
    const base = await withSession(model, null, (s) => baseDistributions(s, prompts, { modelKey: model }));
    assert.equal(base.source, 'computed');
    assert.equal(base.logprobs.length, prompts.length * base.nVocab);

    const self = await withSession(model, null, (s) => klToBase(s, base));
    assert.ok(self.meanKl <= 1e-9 && self.maxKl <= 1e-9, `KL of the base with itself: mean ${self.meanKl}, max ${self.maxKl}`);
    assert.equal(self.top1Agreement, 1);
    assert.ok(Math.abs(self.worstDeltaP) <= 1e-9);

    const adapter = path.join(dir, 'edit.gguf');
    randomAdapter(adapter, model, 1, 11);
    const results = [];
    for (const scale of [0.5, 1, 2]) {
      results.push(await withSession(model, { path: adapter, scale }, async (s) => {
        const r = await klToBase(s, base);
        // Independent check on the prompt that moved most (where KL(b‖e) and KL(e‖b) differ
        // clearly): its log-probs from evaluate, not score. evaluate asks logits for every
        // position, so llama.cpp's last layer runs other matmul shapes: agreement to ~1e-7 in
        // log-probs, not bit for bit.
        const top = r.prompts.reduce((m, p) => (p.kl > m.kl ? p : m));
        const tokens = s.tokenize(prompts[top.index]!, true);
        const ev = await s.evaluate(tokens);
        const edited = ev.logprobs!.subarray((tokens.length - 1) * ev.nVocab, tokens.length * ev.nVocab);
        const b = base.logprobs.subarray(top.index * ev.nVocab, (top.index + 1) * ev.nVocab);
        let kl = 0;
        for (let t = 0; t < ev.nVocab; t++) kl += Math.exp(b[t]!) * (b[t]! - edited[t]!);
        assert.ok(Math.abs(top.kl - kl) <= 1e-5 * kl + 1e-8, `prompt ${top.index}: ${top.kl} vs ${kl}`);
        return r;
      }));
    }
    const kls = results.map((r) => r.meanKl);
    assert.ok(kls[0]! > 1e-6, `an adapter must move the distributions (KL ${kls[0]})`);
    assert.ok(kls[0]! < kls[1]! && kls[1]! < kls[2]!, `KL must grow with the scale: ${kls.join(', ')}`);
    const agreement = results.map((r) => r.top1Agreement);
    assert.ok(agreement[0]! >= agreement[1]! && agreement[1]! >= agreement[2]!, `top-1 agreement: ${agreement.join(', ')}`);
    assert.ok(agreement[2]! < 1, `scale 2 should change some top-1 token (agreement ${agreement[2]})`);
    for (const r of results) {
      assert.ok(r.p99Kl >= r.meanKl && r.p99Kl <= r.maxKl);
      assert.ok(r.worstDeltaP <= r.meanDeltaP);
      assert.equal(r.prompts[r.worstPrompt]!.deltaP, r.worstDeltaP);
    }
  });

  test('base distributions are cached in memory and on disk; a damaged cache file is recomputed', async () => {
    const dir = tempDir();
    const model = generatedModel(native, dir, { arch: 'llama', type: 'q8_0' });
    const cacheDir = path.join(dir, 'cache');
    clearBaseDistributionCache();
    await withSession(model, null, async (s) => {
      const first = await baseDistributions(s, prompts, { modelKey: 'sha-of-model', cacheDir });
      assert.equal(first.source, 'computed');
      assert.equal(first.file, baseCacheFile(cacheDir, 'sha-of-model', first.promptsSha256));
      assert.ok(fs.existsSync(first.file!));
      assert.ok(fs.statSync(first.file!).size < prompts.length * s.nVocab * 4 + 512, 'one float32 row per prompt plus a small header');
      assert.equal((await baseDistributions(s, prompts, { modelKey: 'sha-of-model', cacheDir })).source, 'memory');
      clearBaseDistributionCache();
      const fromDisk = await baseDistributions(s, prompts, { modelKey: 'sha-of-model', cacheDir });
      assert.equal(fromDisk.source, 'disk');
      assert.deepEqual(fromDisk.logprobs, first.logprobs);
      // Another prompt set or model is another entry.
      assert.equal((await baseDistributions(s, prompts.slice(1), { modelKey: 'sha-of-model', cacheDir })).source, 'computed');
      assert.equal((await baseDistributions(s, prompts, { modelKey: 'other-model' })).source, 'computed');
      clearBaseDistributionCache();
      fs.truncateSync(first.file!, 100);
      const again = await baseDistributions(s, prompts, { modelKey: 'sha-of-model', cacheDir });
      assert.equal(again.source, 'computed');
      assert.deepEqual(again.logprobs, first.logprobs);
    });
  });

  test('KL and percentile helpers against hand-computed values; clear errors', async () => {
    const p = [Math.log(0.5), Math.log(0.5), -Infinity];
    const q = [Math.log(0.25), Math.log(0.25), Math.log(0.5)];
    assert.ok(Math.abs(klDivergence(p, q) - Math.log(2)) < 1e-15);
    assert.equal(percentile([5, 1, 3, 2, 4], 0.99), 5);
    assert.equal(percentile(Array.from({ length: 200 }, (_, i) => i), 0.99), 197);
    const model = generatedModel(native, tempDir(), { arch: 'llama', type: 'q8_0' });
    await withSession(model, null, async (s) => {
      await assert.rejects(baseDistributions(s, [], { modelKey: 'm' }), /the prompt list is empty/);
      await assert.rejects(baseDistributions(s, ['ok', 'the king '.repeat(200)], { modelKey: 'm' }), /prompt 1 is \d+ tokens long but the session's context holds 256/);
    });
  });
});
