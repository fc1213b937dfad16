// The tensors of a llama-architecture model to be trained from scratch, and their seeded
// starting values (GPT-2 style: std 0.02, the projections that write into the residual stream
// scaled down by √(2·layers) so the stream does not grow with depth; norms at 1).
import type { TrainShape } from '../native/binding.ts';
import { SeededRandom } from '../util/seededRandom.ts';

export interface WeightSpec {
  name: string;
  /** ggml order (ne): the first dimension is the input width of a matrix. */
  shape: number[];
}

export function llamaWeightLayout(s: TrainShape): WeightSpec[] {
  const d = s.nEmbd, kv = (s.nEmbd / s.nHead) * s.nHeadKv;
  const layout: WeightSpec[] = [{ name: 'token_embd.weight', shape: [d, s.nVocab] }];
  for (let l = 0; l < s.nLayer; l++) {
    const b = `blk.${l}.`;
    layout.push(
      { name: `${b}attn_norm.weight`, shape: [d] },
      { name: `${b}attn_q.weight`, shape: [d, d] },
      { name: `${b}attn_k.weight`, shape: [d, kv] },
      { name: `${b}attn_v.weight`, shape: [d, kv] },
      { name: `${b}attn_output.weight`, shape: [d, d] },
      { name: `${b}ffn_norm.weight`, shape: [d] },
      { name: `${b}ffn_gate.weight`, shape: [d, s.nFf] },
      { name: `${b}ffn_up.weight`, shape: [d, s.nFf] },
      { name: `${b}ffn_down.weight`, shape: [s.nFf, d] },
    );
  }
  layout.push({ name: 'output_norm.weight', shape: [d] }, { name: 'output.weight', shape: [d, s.nVocab] });
  return layout;
}

export function parameterCount(s: TrainShape): number {
  return llamaWeightLayout(s).reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1), 0);
}

export function initialWeights(s: TrainShape, seed: number): Record<string, Float32Array> {
  const rng = new SeededRandom(seed);
  const residualStd = 0.02 / Math.sqrt(2 * s.nLayer);
  const out: Record<string, Float32Array> = {};
  for (const w of llamaWeightLayout(s)) {
    const n = w.shape.reduce((a, b) => a * b, 1);
    if (w.shape.length === 1) out[w.name] = new Float32Array(n).fill(1);
    else out[w.name] = rng.fill(n, /attn_output|ffn_down/.test(w.name) ? residualStd : 0.02);
  }
  return out;
}
