// Seeded top-k sampling with Graft's own graph, all sequences advanced together in one
// batched forward per step. Used for ROME's context prefixes and for text sampled from the
// model itself when the user gives no corpus for the second moments.
import type { NativeGraphModel } from '../native/graphTypes.ts';
import { SeededRandom } from '../util/seededRandom.ts';

export interface SampleOptions {
  /** Tokens to add to each start sequence. */
  lengths: number[];
  topK: number;
  seed: number;
  /** Stop a sequence early at these tokens (end of sequence). */
  stopTokens?: number[];
}

function topKPick(logprobs: Float32Array, k: number, rng: SeededRandom): number {
  const idx = Array.from(logprobs.keys()).sort((a, b) => logprobs[b]! - logprobs[a]!).slice(0, k);
  const weights = idx.map((i) => Math.exp(logprobs[i]!));
  let r = rng.next() * weights.reduce((s, w) => s + w, 0);
  for (let i = 0; i < idx.length; i++) {
    r -= weights[i]!;
    if (r <= 0) return idx[i]!;
  }
  return idx[idx.length - 1]!;
}

export async function sampleContinuations(graph: NativeGraphModel, starts: Int32Array[], options: SampleOptions): Promise<Int32Array[]> {
  const rng = new SeededRandom(options.seed);
  const seqs = starts.map((s) => Array.from(s));
  const done = seqs.map((_, i) => (options.lengths[i] ?? 0) <= 0);
  const stop = new Set(options.stopTokens ?? []);
  const limit = graph.info.contextLength;
  while (done.some((d) => !d)) {
    const active = seqs.map((_, i) => i).filter((i) => !done[i]);
    const prompts = active.map((i) => Int32Array.from(seqs[i]!));
    const result = await graph.run({ prompts, logitRows: prompts.map((p, prompt) => ({ prompt, pos: p.length - 1 })) });
    const V = result.nVocab;
    active.forEach((i, row) => {
      const token = topKPick(result.logprobs.subarray(row * V, (row + 1) * V), options.topK, rng);
      const seq = seqs[i]!;
      seq.push(token);
      if (stop.has(token) || seq.length - starts[i]!.length >= options.lengths[i]! || seq.length >= limit) done[i] = true;
    });
  }
  return seqs.map((s, i) => Int32Array.from(s.slice(starts[i]!.length)));
}

export function detokenize(graph: NativeGraphModel, tokens: ArrayLike<number>): string {
  return Array.from(tokens, (t) => graph.tokenPiece(t)).join('');
}
