// Causal tracing (Meng et al. 2022, §2): where does the model recall a fact? The subject's
// token embeddings are corrupted with Gaussian noise (3× the embedding's standard deviation),
// which destroys the answer; then one hidden state at a time (layer × position) is restored
// to its clean value and the recovered probability of the answer is recorded. Besides the
// residual stream, the MLP output and the attention output are restored on their own, and
// the layer where restoring the MLP at the subject's last token recovers most is suggested
// for the edit.
//
// Restoring is exact in the own graph: the corrupted run's states are captured once, and the
// difference clean − corrupted is added as a delta at that (layer, site, position), so the
// state equals the clean one from there on.
import type { GraphDelta, GraphSite, NativeGraphModel } from '../native/graphTypes.ts';
import { SeededRandom } from '../util/seededRandom.ts';
import { locateSubject } from './rome.ts';

export interface TraceOptions {
  prompt: string;
  subject: string;
  /** Noise samples per restoration (ROME: 10). */
  samples?: number;
  /** Noise scale in units of the token embedding's standard deviation (ROME: 3). */
  noiseScale?: number;
  seed?: number;
}

export interface TraceGrid {
  kind: 'hidden' | 'mlp' | 'attention';
  /** layers × tokens: mean probability of the answer with that state restored. */
  probabilities: number[][];
}

export interface TraceResult {
  tokens: string[];
  subjectRange: [number, number];
  answer: { token: number; text: string };
  cleanProbability: number;
  corruptedProbability: number;
  grids: TraceGrid[];
  suggestedLayer: number;
}

const siteOf: Record<TraceGrid['kind'], GraphSite> = { hidden: 'resid_out', mlp: 'mlp_out', attention: 'attn_out' };

function gaussian(rng: SeededRandom): number {
  const u = Math.max(rng.next(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
}

/** Standard deviation of the token embedding values (over the whole matrix). */
function embeddingStd(values: Float32Array): number {
  let s = 0, s2 = 0;
  for (const x of values) { s += x; s2 += x * x; }
  const mean = s / values.length;
  return Math.sqrt(Math.max(0, s2 / values.length - mean * mean));
}

export async function causalTrace(graph: NativeGraphModel, embeddings: Float32Array, o: TraceOptions): Promise<TraceResult> {
  const { nLayer, nEmbd } = graph.info;
  const samples = o.samples ?? 10;
  const [before, after] = o.prompt.includes('{}') ? (o.prompt.split('{}') as [string, string]) : splitOnSubject(o.prompt, o.subject);
  const { tokens, lookup } = locateSubject(graph, before, o.subject, after);
  // The subject starts where the tokens of the text before it stop matching (a trailing space
  // usually merges into the subject's first token).
  const beforeTokens = graph.tokenize(before, true);
  let first = 0;
  while (first < beforeTokens.length && first <= lookup && beforeTokens[first] === tokens[first]) first++;
  const subjectRange: [number, number] = [first, lookup + 1];
  if (subjectRange[0] >= subjectRange[1]) throw new Error(`the subject '${o.subject}' covers no token of the prompt`);
  const last = tokens.length - 1;
  const T = tokens.length;

  const kinds: TraceGrid['kind'][] = ['hidden', 'mlp', 'attention'];
  const captures = kinds.flatMap((k) => Array.from({ length: nLayer }, (_, layer) => ({ layer, site: siteOf[k] })));
  const clean = await graph.run({ prompts: [tokens], logitRows: [{ prompt: 0, pos: last }], captures });
  let answer = 0;
  for (let v = 1; v < clean.nVocab; v++) if (clean.logprobs[v]! > clean.logprobs[answer]!) answer = v;
  const cleanProbability = Math.exp(clean.logprobs[answer]!);

  const std = (o.noiseScale ?? 3) * embeddingStd(embeddings);
  const rng = new SeededRandom(o.seed ?? 0);
  const state = (capture: { values: Float32Array }, pos: number) => capture.values.subarray(pos * nEmbd, (pos + 1) * nEmbd);
  const sums = kinds.map(() => Array.from({ length: nLayer }, () => new Array<number>(T).fill(0)));
  let corruptedSum = 0;

  for (let s = 0; s < samples; s++) {
    // One noise vector per subject token, added to its embedding (the residual entering layer 0).
    const noise: GraphDelta[] = [];
    for (let pos = subjectRange[0]; pos < subjectRange[1]; pos++) {
      noise.push({ layer: 0, site: 'resid_in', rows: [{ prompt: 0, pos }], values: Float32Array.from({ length: nEmbd }, () => std * gaussian(rng)) });
    }
    const corrupted = await graph.run({ prompts: [tokens], deltas: noise, logitRows: [{ prompt: 0, pos: last }], captures });
    corruptedSum += Math.exp(corrupted.logprobs[answer]!);
    for (const [ki, kind] of kinds.entries()) {
      for (let layer = 0; layer < nLayer; layer++) {
        const c = ki * nLayer + layer;
        // every position of this layer restored in one batch: prompt i restores position i
        const deltas: GraphDelta[] = [];
        for (let pos = 0; pos < T; pos++) {
          for (const d of noise) deltas.push({ ...d, rows: d.rows.map((r) => ({ ...r, prompt: pos })) });
          const fix = Float32Array.from(state(clean.captures[c]!, pos), (x, e) => x - state(corrupted.captures[c]!, pos)[e]!);
          deltas.push({ layer, site: siteOf[kind], rows: [{ prompt: pos, pos }], values: fix });
        }
        const restored = await graph.run({
          prompts: Array.from({ length: T }, () => tokens), deltas,
          logitRows: Array.from({ length: T }, (_, prompt) => ({ prompt, pos: last })),
        });
        for (let pos = 0; pos < T; pos++) sums[ki]![layer]![pos]! += Math.exp(restored.logprobs[pos * restored.nVocab + answer]!);
      }
    }
  }
  const grids = kinds.map((kind, ki) => ({ kind, probabilities: sums[ki]!.map((row) => row.map((x) => x / samples)) }));
  const mlp = grids[1]!.probabilities;
  let suggestedLayer = 0;
  for (let l = 1; l < nLayer; l++) if (mlp[l]![lookup]! > mlp[suggestedLayer]![lookup]!) suggestedLayer = l;
  return {
    tokens: Array.from(tokens, (t) => graph.tokenPiece(t)),
    subjectRange,
    answer: { token: answer, text: graph.tokenPiece(answer) },
    cleanProbability,
    corruptedProbability: corruptedSum / samples,
    grids,
    suggestedLayer,
  };
}

function splitOnSubject(prompt: string, subject: string): [string, string] {
  const at = prompt.indexOf(subject);
  if (at < 0) throw new Error(`the subject '${subject}' does not occur in the prompt "${prompt}"; mark it with {} or fix the spelling`);
  return [prompt.slice(0, at), prompt.slice(at + subject.length)];
}

export interface LayerSuggestion {
  /** The layer most prompts' traces suggest (the lower one on a tie). */
  layer: number;
  /** Each prompt's suggestion, in order. */
  votes: number[];
}

/** ROME's recipe for choosing where to edit a model: trace several facts, take the most common suggestion. */
export async function suggestEditLayer(graph: NativeGraphModel, embeddings: Float32Array, prompts: { prompt: string; subject: string }[], samples = 5): Promise<LayerSuggestion> {
  if (prompts.length === 0) throw new Error('tracing needs at least one prompt');
  const votes: number[] = [];
  for (const p of prompts) votes.push((await causalTrace(graph, embeddings, { prompt: p.prompt, subject: p.subject, samples })).suggestedLayer);
  const count = (l: number) => votes.filter((v) => v === l).length;
  const layer = [...new Set(votes)].sort((a, b) => count(b) - count(a) || a - b)[0]!;
  return { layer, votes };
}
