// A LoRA adapter written by Graft and applied by llama.cpp equals the merged weight.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { openLlamaSession } from '../engine/llamaSession.ts';
import { loadNative, type GraftNative, type LoraAdapter } from '../native/binding.ts';
import { generatedModel, tempDir } from '../testing/fixtures.ts';
import { mergeLora, writeLoraAdapter, type LoraFactors } from './loraAdapter.ts';

let native: GraftNative;
const dir = tempDir();
let model: string;
before(async () => {
  native = await loadNative();
  model = generatedModel(native, dir, { arch: 'llama', type: 'f32' });
});

const text = 'the king of the city said that the river';

async function logprobs(file: string, lora: LoraAdapter[] = []): Promise<Float32Array> {
  const s = await openLlamaSession(native, file, { contextSize: 64, lora });
  try {
    return (await s.evaluate(s.tokenize(text))).logprobs!;
  } finally {
    s.dispose();
  }
}

function factors(layer: number, rank: number, nIn: number, nOut: number, seed: number): LoraFactors {
  return {
    base: `blk.${layer}.ffn_down.weight`, nIn, nOut, rank,
    a: Float32Array.from({ length: rank * nIn }, (_, i) => Math.sin(seed + i * 0.37) * 0.4),
    b: Float32Array.from({ length: nOut * rank }, (_, i) => Math.cos(seed + i * 0.91) * 0.6),
  };
}

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);

describe('LoRA adapters on the llama.cpp session', () => {
  for (const { rank, alpha, scale } of [{ rank: 1, alpha: 0, scale: 1 }, { rank: 2, alpha: 4, scale: 0.5 }]) {
    test(`rank ${rank} (alpha ${alpha}, scale ${scale}) on ffn_down equals the merged F32 model (≤ 1e-4)`, async () => {
      const layer = 1;
      const down = native.readTensor(model, `blk.${layer}.ffn_down.weight`);
      const [nIn, nOut] = down.shape as [number, number];
      const f = factors(layer, rank, nIn, nOut, rank);
      const adapter = path.join(dir, `edit-r${rank}.gguf`);
      writeLoraAdapter(native, adapter, { architecture: 'llama', alpha, factors: [f] });
      const merged = path.join(dir, `merged-r${rank}.gguf`);
      const s = alpha ? (scale * alpha) / rank : scale;
      await native.rewrite(model, merged, { replace: [{ name: f.base, type: 'f32', f32: mergeLora(down.values, f, s) }] });

      const base = await logprobs(model);
      const viaLora = await logprobs(model, [{ path: adapter, scale }]);
      const viaMerge = await logprobs(merged);
      assert.ok(maxDiff(base, viaMerge) > 1e-2, 'the edit must change the output');
      assert.ok(maxDiff(viaLora, viaMerge) <= 1e-4, `LoRA and merged weights differ by ${maxDiff(viaLora, viaMerge)}`);
    });
  }

  test('two adapters add up', async () => {
    const down = native.readTensor(model, 'blk.0.ffn_down.weight');
    const [nIn, nOut] = down.shape as [number, number];
    const f1 = factors(0, 1, nIn, nOut, 5);
    const f2 = factors(0, 1, nIn, nOut, 9);
    writeLoraAdapter(native, path.join(dir, 'a1.gguf'), { architecture: 'llama', factors: [f1] });
    writeLoraAdapter(native, path.join(dir, 'a2.gguf'), { architecture: 'llama', factors: [f2] });
    const merged = path.join(dir, 'merged-two.gguf');
    await native.rewrite(model, merged, { replace: [{ name: f1.base, type: 'f32', f32: mergeLora(mergeLora(down.values, f1), f2) }] });
    const viaLora = await logprobs(model, [{ path: path.join(dir, 'a1.gguf') }, { path: path.join(dir, 'a2.gguf') }]);
    assert.ok(maxDiff(viaLora, await logprobs(merged)) <= 1e-4);
  });

  test('bad adapters are refused with a clear error', async () => {
    const down = native.readTensor(model, 'blk.0.ffn_down.weight');
    const [nIn, nOut] = down.shape as [number, number];
    const qwen = path.join(dir, 'qwen.gguf');
    writeLoraAdapter(native, qwen, { architecture: 'qwen2', factors: [factors(0, 1, nIn, nOut, 1)] });
    await assert.rejects(logprobs(model, [{ path: qwen }]), /the LoRA adapter .*qwen\.gguf is for architecture 'qwen2' but the model is 'llama'/);
    await assert.rejects(logprobs(model, [{ path: model }]), /is not a LoRA adapter \(its general\.type is '', not 'adapter'\); give an adapter GGUF, not a model/);
    await assert.rejects(logprobs(model, [{ path: path.join(dir, 'missing.gguf') }]), /file not found: .*missing\.gguf/);
    const notGguf = path.join(dir, 'notes.txt');
    fs.writeFileSync(notGguf, 'hello');
    await assert.rejects(logprobs(model, [{ path: notGguf }]), /is not a GGUF file/);
    const wrongShape = path.join(dir, 'shape.gguf');
    writeLoraAdapter(native, wrongShape, { architecture: 'llama', factors: [factors(0, 1, nIn + 1, nOut, 1)] });
    await assert.rejects(logprobs(model, [{ path: wrongShape }]), /could not load the LoRA adapter .*shape\.gguf: .*tensor 'blk\.0\.ffn_down\.weight' has incorrect shape/);
    await assert.rejects(logprobs(model, [{ path: path.join(dir, 'a1.gguf'), scale: Number.NaN }]), /must be a finite number/);
    assert.throws(() => writeLoraAdapter(native, path.join(dir, 'x.gguf'), { architecture: 'llama', factors: [{ ...factors(0, 1, nIn, nOut, 1), rank: 2 }] }), /needs rank × nIn/);
    // The model itself still loads afterwards.
    assert.equal((await logprobs(model)).length > 0, true);
  });
});
