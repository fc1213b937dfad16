// LoRA adapter GGUFs as llama.cpp loads them (src/llama-adapter.cpp): an edit ΔW = s·B·A of a
// weight travels as two small tensors, exact and tiny, instead of a rewritten model.
//
// For a base weight W with ggml shape [nIn, nOut] (y = W x, x of length nIn):
//   <base>.lora_a  ggml shape [nIn, rank]   A, rank rows of nIn
//   <base>.lora_b  ggml shape [rank, nOut]  B, nOut rows of rank
// and llama.cpp adds s·B·(A·x), with s = scale·alpha/rank when adapter.lora.alpha is set and
// non-zero, else s = scale (the user scale given when the adapter is applied).
import type { GraftNative, KvEntry } from '../native/binding.ts';
import { writeGgufFile, type TensorSource } from '../gguf/writer.ts';

export interface LoraFactors {
  /** The adapted weight, e.g. blk.7.ffn_down.weight. */
  base: string;
  nIn: number;
  nOut: number;
  rank: number;
  /** rank × nIn, row-major. */
  a: Float32Array;
  /** nOut × rank, row-major. */
  b: Float32Array;
}

export interface LoraAdapterSpec {
  /** Must equal the model's general.architecture, or llama.cpp refuses the adapter. */
  architecture: string;
  /** adapter.lora.alpha; 0 or omitted applies B·A unscaled. */
  alpha?: number;
  name?: string;
  factors: LoraFactors[];
}

function check(f: LoraFactors): void {
  for (const k of ['nIn', 'nOut', 'rank'] as const) {
    if (!Number.isInteger(f[k]) || f[k] <= 0) throw new Error(`LoRA factors of ${f.base}: ${k} must be a positive integer, got ${f[k]}`);
  }
  if (f.a.length !== f.rank * f.nIn) throw new Error(`LoRA factor A of ${f.base} needs rank × nIn = ${f.rank * f.nIn} values, got ${f.a.length}`);
  if (f.b.length !== f.nOut * f.rank) throw new Error(`LoRA factor B of ${f.base} needs nOut × rank = ${f.nOut * f.rank} values, got ${f.b.length}`);
  if (f.base.endsWith('_norm.weight')) throw new Error(`llama.cpp ignores LoRA factors of norm weights (${f.base})`);
}

/** Writes the adapter as F32 (at rank 1, B has rows of one value, which only F32/F16 can hold). */
export function writeLoraAdapter(native: GraftNative, file: string, spec: LoraAdapterSpec): number {
  if (spec.factors.length === 0) throw new Error('a LoRA adapter needs at least one adapted weight');
  const seen = new Set<string>();
  for (const f of spec.factors) {
    check(f);
    if (seen.has(f.base)) throw new Error(`${f.base} is adapted twice; merge its factors into one of higher rank`);
    seen.add(f.base);
  }
  const kv: KvEntry[] = [
    { key: 'general.type', type: 'str', value: 'adapter' },
    { key: 'general.architecture', type: 'str', value: spec.architecture },
    { key: 'general.name', type: 'str', value: spec.name ?? 'graft edit' },
    { key: 'adapter.type', type: 'str', value: 'lora' },
    { key: 'adapter.lora.alpha', type: 'f32', value: spec.alpha ?? 0 },
  ];
  const tensors: TensorSource[] = spec.factors.flatMap((f) => [
    { name: `${f.base}.lora_a`, type: 'f32', shape: [f.nIn, f.rank], values: () => f.a },
    { name: `${f.base}.lora_b`, type: 'f32', shape: [f.rank, f.nOut], values: () => f.b },
  ]);
  return writeGgufFile(native, file, kv, tensors);
}

/** W + s·B·A for a weight stored row-major as nOut rows of nIn (ggml shape [nIn, nOut]). */
export function mergeLora(weight: Float32Array, f: LoraFactors, s = 1): Float32Array {
  if (weight.length !== f.nIn * f.nOut) throw new Error(`${f.base} has ${weight.length} values, not nIn × nOut = ${f.nIn * f.nOut}`);
  const out = Float32Array.from(weight);
  for (let o = 0; o < f.nOut; o++) {
    for (let k = 0; k < f.rank; k++) {
      const bk = s * f.b[o * f.rank + k]!;
      if (bk === 0) continue;
      for (let i = 0; i < f.nIn; i++) out[o * f.nIn + i]! += bk * f.a[k * f.nIn + i]!;
    }
  }
  return out;
}
