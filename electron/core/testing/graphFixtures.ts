// Helpers shared by the own-graph tests: comparisons of log-probability tables, vector
// metrics, a dequantised-F32 copy of a model, and the llama.cpp reference for given tokens.
import path from 'node:path';

import { openGraphModel, type OpenGraphOptions } from '../engine/graphModel.ts';
import { openLlamaSession } from '../engine/llamaSession.ts';
import type { GraftNative } from '../native/binding.ts';
import type { NativeGraphModel } from '../native/graphTypes.ts';
import { generatedModel, realModel, tempDir } from './fixtures.ts';

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} ≠ ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return ab / Math.sqrt(aa * bb);
}

/** ‖a − b‖ / ‖b‖ */
export function relativeL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, n = 0;
  for (let i = 0; i < a.length; i++) {
    d += (a[i]! - b[i]!) ** 2;
    n += b[i]! ** 2;
  }
  return Math.sqrt(d / n);
}

export function randomVector(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = ((s / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

/** The same model with every quantised or F16 tensor decoded to F32 (the G1 rewrite). */
export async function dequantizedCopy(native: GraftNative, src: string, dir: string): Promise<string> {
  const out = path.join(dir, `${path.basename(src, '.gguf')}-dequantized.gguf`);
  const replace = native.inspect(src).tensors.filter((t) => t.type !== 'F32').map((t) => ({ name: t.name, type: 'f32' }));
  await native.rewrite(src, out, { replace });
  return out;
}

/** llama.cpp's log-probabilities (F32 KV cache, no flash attention) for each prompt. */
export async function llamaLogprobs(native: GraftNative, model: string, prompts: Int32Array[], repack = true): Promise<Float32Array[]> {
  const session = await openLlamaSession(native, model, { contextSize: 256, repack });
  try {
    const out: Float32Array[] = [];
    for (const p of prompts) out.push((await session.evaluate(p)).logprobs!);
    return out;
  } finally {
    session.dispose();
  }
}

/** Opens the own graph on a model for the duration of fn. */
export async function withGraph<T>(native: GraftNative, model: string, fn: (g: NativeGraphModel) => Promise<T>, options: OpenGraphOptions = {}): Promise<T> {
  const g = await openGraphModel(native, model, options);
  try {
    return await fn(g);
  } finally {
    g.dispose();
  }
}

/**
 * The attention variants the own graph must get right, each as a test case: stories260K (real
 * weights), grouped-query attention (2 and 1 kv heads), biases (qwen2), q/k norms (qwen3), and
 * Q8_0 dequantised for the backward. `file` makes the model when the case runs.
 */
export function attentionVariants(native: () => GraftNative): { name: string; file: () => string; skip: string | false; options: OpenGraphOptions }[] {
  const stories = realModel('stories260K-F32.gguf');
  const generated = (o: Parameters<typeof generatedModel>[2]) => () => generatedModel(native(), tempDir(), o);
  return [
    { name: 'stories260K F32', file: () => stories.path!, skip: stories.skip, options: {} },
    { name: 'generated llama f32 (4 heads, 2 kv heads)', file: generated({ arch: 'llama', type: 'f32', layers: 3, heads: 4, kvHeads: 2 }), skip: false, options: {} },
    { name: 'generated llama f32 (8 heads, 1 kv head)', file: generated({ arch: 'llama', type: 'f32', layers: 3, heads: 8, kvHeads: 1 }), skip: false, options: {} },
    { name: 'generated qwen2 f32 (biases, 2 kv heads)', file: generated({ arch: 'qwen2', type: 'f32', layers: 3 }), skip: false, options: {} },
    { name: 'generated qwen3 f32 (q/k norms, 2 kv heads)', file: generated({ arch: 'qwen3', type: 'f32', layers: 3 }), skip: false, options: {} },
    { name: 'generated llama q8_0 (dequantised for backward)', file: generated({ arch: 'llama', type: 'q8_0', layers: 2 }), skip: false, options: { dequantizeForBackward: true } },
  ];
}
