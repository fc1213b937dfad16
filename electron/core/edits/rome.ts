// ROME (Meng et al. 2022) with the corrected key handling of r-ROME / C-ROME: one fact in,
// a rank-one update of blk.L.ffn_down.weight out.
//
//   1. context templates   sampled from the model itself, seeded, kept with the edit
//   2. key k*              mean MLP key at the subject's last token over the prefixed prompts
//   3. value v*            W k* plus a delta on the MLP output, optimised so the model says the
//                          new target (NLL), stays itself on "{subject} is a" (KL), with a
//                          norm penalty and a norm bound
//   4. update              ΔW = (v* − W k*) (C⁻¹k*)ᵀ / ((C⁻¹k*)ᵀ k*)
//
// Prefix-averaged keys are used in the numerator, the denominator and W·k alike (r-ROME), so
// a subject that is the prompt's first token gets prefixed keys too (C-ROME).
import type { AdamOptions, GraphOverlay, GraphRequest, NativeGraphModel, RowRef, StepReport } from '../native/graphTypes.ts';
import { continuationTokens, optimizeDeltas } from '../engine/graphModel.ts';
import { filledPrompt, type EditRequest } from './request.ts';
import { detokenize, sampleContinuations } from './sampling.ts';

export interface RomeHparams {
  layer: number;
  vLr: number;
  vSteps: number;
  klFactor: number;
  /** ROME's weight decay: vWeightDecay · ‖δ‖ / ‖W k*‖² is added to the loss. */
  vWeightDecay: number;
  /** ‖δ‖ ≤ clampNormFactor · ‖W k*‖ after every step. */
  clampNormFactor: number;
  /** Use C⁻¹k* (true) or k* (false, C = I) as the update's direction. */
  mom2Adjustment: boolean;
  /**
   * C + mom2Ridge · mean(diag C) · I is factorised: second moments of fewer tokens than n_ff
   * are singular, and a small ridge barely changes a well-conditioned C.
   */
  mom2Ridge: number;
  /** Optimisation stops once the loss is below this. */
  stopLoss: number;
  seed: number;
  /** [count, tokens] groups of sampled context prefixes, besides the bare prompt. */
  contextTemplates: [number, number][];
}

/** ROME's published defaults for llama-style models (EasyEdit Llama-2/3, Qwen2.5), layer scaled to depth. */
export function romeDefaults(nLayer: number): RomeHparams {
  return {
    layer: Math.max(0, Math.min(nLayer - 1, Math.round((5 / 32) * nLayer))),
    vLr: 0.5,
    vSteps: 25,
    klFactor: 0.0625,
    vWeightDecay: 1e-3,
    clampNormFactor: 4,
    mom2Adjustment: true,
    mom2Ridge: 1e-3,
    stopLoss: 5e-2,
    seed: 0,
    contextTemplates: [[10, 5], [10, 10]],
  };
}

/** A tokenised prompt: where the subject's last token is and which tokens must follow. */
export interface PreparedPrompt {
  tokens: Int32Array;
  lookup: number;
  /** Teacher-forced target tokens: row pos must predict token. */
  targets: { pos: number; token: number }[];
}

const tokenizer = (graph: NativeGraphModel) => (text: string, special: boolean) => graph.tokenize(text, special);

/** ROME's prefixes: "{}" and short texts the model writes itself, each followed by ". {}". */
export async function contextTemplates(graph: NativeGraphModel, hp: Pick<RomeHparams, 'contextTemplates' | 'seed'>): Promise<string[]> {
  const lengths = hp.contextTemplates.flatMap(([count, tokens]) => Array<number>(count).fill(Math.max(1, tokens - 1)));
  const bos = graph.tokenize('', true);
  const texts = lengths.length === 0 ? [] : await sampleContinuations(graph, lengths.map(() => bos), { lengths, topK: 5, seed: hp.seed });
  return ['{}', ...texts.map((t) => `${detokenize(graph, t).replace(/[{}]/g, ' ').trim()}. {}`)];
}

/** Tokens of text with the subject's last token located; the subject must end on a token boundary. */
export function locateSubject(graph: NativeGraphModel, before: string, subject: string, after: string): { tokens: Int32Array; lookup: number } {
  const upTo = graph.tokenize(before + subject, true);
  const tokens = graph.tokenize(before + subject + after, true);
  const prefixMatches = upTo.length <= tokens.length && upTo.every((t, i) => tokens[i] === t);
  if (!prefixMatches || upTo.length === 0) {
    throw new Error(`the subject '${subject}' does not end on a token boundary in "${before + subject + after}": ` +
      'its last token merges with the text after it; rephrase the prompt or the subject');
  }
  return { tokens, lookup: upTo.length - 1 };
}

/** Each template filled with the prompt and subject, then the target teacher-forced. */
export function rewritingPrompts(graph: NativeGraphModel, request: EditRequest, templates: string[]): PreparedPrompt[] {
  const [promptBefore, promptAfter] = request.prompt.split('{}') as [string, string];
  return templates.map((template) => {
    const [tBefore, tAfter] = template.split('{}') as [string, string];
    const before = tBefore + promptBefore, after = promptAfter + tAfter;
    const { tokens, lookup } = locateSubject(graph, before, request.subject, after);
    const target = continuationTokens(tokenizer(graph), before + request.subject + after, request.targetNew);
    if (target.length === 0) throw new Error(`target_new '${request.targetNew}' tokenizes to nothing`);
    const full = new Int32Array(tokens.length + target.length - 1);
    full.set(tokens);
    full.set(target.subarray(0, target.length - 1), tokens.length);
    return { tokens: full, lookup, targets: Array.from(target, (token, i) => ({ pos: tokens.length - 1 + i, token })) };
  });
}

/** "{subject} is a": the prompt whose next-token distribution the edit should keep. */
export function essencePrompt(graph: NativeGraphModel, request: EditRequest): PreparedPrompt {
  const { tokens, lookup } = locateSubject(graph, '', request.subject, ' is a');
  return { tokens, lookup, targets: [] };
}

function mean(rows: Float32Array[], width: number): Float64Array {
  const out = new Float64Array(width);
  for (const r of rows) for (let i = 0; i < width; i++) out[i]! += r[i]!;
  for (let i = 0; i < width; i++) out[i]! /= rows.length;
  return out;
}

function norm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

/** Hook values at each prompt's lookup row, from a capture over all tokens. */
export function atLookups(values: Float32Array, width: number, prompts: PreparedPrompt[]): Float32Array[] {
  let offset = 0;
  return prompts.map((p) => {
    const row = values.subarray((offset + p.lookup) * width, (offset + p.lookup + 1) * width);
    offset += p.tokens.length;
    return row;
  });
}

export interface KeyAndValue {
  /** k*: the mean MLP key at the subject's last token (n_ff). */
  key: Float64Array;
  /** W k*: the mean MLP output there (n_embd), the value the edit moves from. */
  value: Float64Array;
  /** The residual entering the layer for every token, to start the v* optimisation there. */
  layerInput: Float32Array;
}

export async function keyAndValue(graph: NativeGraphModel, prompts: PreparedPrompt[], layer: number, overlays: GraphOverlay[]): Promise<KeyAndValue> {
  const { nFf, nEmbd } = graph.info;
  const run = await graph.run({
    prompts: prompts.map((p) => p.tokens), overlays,
    captures: [{ layer, site: 'mlp_key' }, { layer, site: 'mlp_out' }, { layer, site: 'resid_in' }],
  });
  const [keys, outs, inputs] = run.captures as [typeof run.captures[0], typeof run.captures[0], typeof run.captures[0]];
  return { key: mean(atLookups(keys.values, nFf, prompts), nFf), value: mean(atLookups(outs.values, nEmbd, prompts), nEmbd), layerInput: inputs.values };
}

export interface ValueOptimisation {
  /** v* − W k*: the delta added to the MLP output. */
  delta: Float32Array;
  steps: StepReport[];
  cancelled: boolean;
  /** Mean probability of the target tokens on the rewriting prompts, before and after. */
  targetProbability: { before: number; after: number };
}

/** Where the optimised delta is added, and what it starts from (the value whose norm bounds it). */
export interface ValueSite {
  layer: number;
  /** ROME: the MLP output; MEMIT and its relatives: the layer's output (the residual stream). */
  site: 'mlp_out' | 'resid_out';
  start: Pick<KeyAndValue, 'value' | 'layerInput'>;
}

type ValueHparams = Pick<RomeHparams, 'vLr' | 'vSteps' | 'klFactor' | 'vWeightDecay' | 'clampNormFactor' | 'stopLoss'>;

/** The v* (ROME) or z (MEMIT) optimisation: a delta at layer L's site at every prompt's subject token. */
export async function optimizeValue(
  graph: NativeGraphModel, prompts: PreparedPrompt[], essence: PreparedPrompt, at: ValueSite, hp: ValueHparams, overlays: GraphOverlay[],
  control: { signal?: AbortSignal; onStep?: (s: StepReport) => void } = {},
): Promise<ValueOptimisation> {
  const [only] = await optimizeValues(graph, [{ prompts, essence, start: at.start }], { layer: at.layer, site: at.site }, hp, overlays, control);
  return only!;
}

export interface ValueItem {
  prompts: PreparedPrompt[];
  essence: PreparedPrompt;
  start: ValueSite['start'];
}

/**
 * Several independent optimisations in one graph: each item has its own delta on its own
 * prompts, so the summed loss's gradient for a delta is that item's alone and Adam, being per
 * coordinate, moves each delta exactly as a separate run would. Only the stop is shared: the
 * run ends when the summed loss is below items × stopLoss.
 */
export async function optimizeValues(
  graph: NativeGraphModel, items: ValueItem[], at: Omit<ValueSite, 'start'>, hp: ValueHparams, overlays: GraphOverlay[],
  control: { signal?: AbortSignal; onStep?: (s: StepReport) => void } = {},
): Promise<ValueOptimisation[]> {
  const { layer } = at;
  const all: PreparedPrompt[] = [];
  const starts: number[] = [];
  for (const item of items) {
    starts.push(all.length);
    all.push(...item.prompts, item.essence);
  }
  const essenceRows = items.map((item, i) => ({ prompt: starts[i]! + item.prompts.length, pos: item.essence.lookup }));
  // The essence prompts' input states: one more run (they were not among the key prompts).
  const essenceInput = (await graph.run({ prompts: items.map((i) => i.essence.tokens), overlays, captures: [{ layer, site: 'resid_in' }] })).captures[0]!.values;
  const inputStates = new Float32Array(all.reduce((n, p) => n + p.tokens.length, 0) * graph.info.nEmbd);
  let offset = 0, essenceOffset = 0;
  items.forEach((item) => {
    inputStates.set(item.start.layerInput, offset);
    offset += item.start.layerInput.length;
    const width = item.essence.tokens.length * graph.info.nEmbd;
    inputStates.set(essenceInput.subarray(essenceOffset, essenceOffset + width), offset);
    offset += width;
    essenceOffset += width;
  });
  const reference = (await graph.run({ prompts: all.map((p) => p.tokens), overlays, logitRows: essenceRows })).logprobs;
  const V = graph.info.nVocab;
  const targets = items.flatMap((item, i) => {
    const n = item.prompts.reduce((c, p) => c + p.targets.length, 0);
    return item.prompts.flatMap((p, k) => p.targets.map((t) => ({ prompt: starts[i]! + k, pos: t.pos, token: t.token, weight: 1 / n, item: i })));
  });
  const request: GraphRequest = {
    prompts: all.map((p) => p.tokens),
    fromLayer: layer,
    inputStates,
    // earlier layers' edits are already in the input states
    overlays: overlays.filter((o) => o.layer >= layer),
    deltas: items.map((item, i) => ({
      layer, site: at.site, values: new Float32Array(graph.info.nEmbd),
      rows: [...item.prompts, item.essence].map((p, k) => ({ prompt: starts[i]! + k, pos: p.lookup })),
    })),
    targets: targets.map(({ item: _, ...t }) => t),
    references: hp.klFactor > 0 ? essenceRows.map((row, i) => ({ ...row, logprobs: reference.slice(i * V, (i + 1) * V), weight: hp.klFactor })) : [],
    // the context prefix and the subject before its last token are the same in every step
    reusePrefix: true,
  };
  const valueNorms = items.map((item) => norm(item.start.value));
  const adam: AdamOptions = {
    steps: hp.vSteps, lr: hp.vLr, stopLoss: hp.stopLoss * items.length,
    normPenalty: valueNorms.map((n) => hp.vWeightDecay / (n * n)),
    maxNorm: valueNorms.map((n) => hp.clampNormFactor * n),
  };
  const probabilities = async (deltas: GraphRequest['deltas']) => {
    const run = await graph.run({ ...request, deltas, targets: [], references: [], logitRows: targets });
    const nll = new Float64Array(items.length);
    targets.forEach((t, r) => (nll[t.item]! -= t.weight * run.logprobs[r * V + t.token]!));
    return Array.from(nll, (x) => Math.exp(-x));
  };
  const before = await probabilities(request.deltas);
  // optimizeDeltas sees an abort that came while the forward passes above ran
  const run = await optimizeDeltas(graph, request, adam, control);
  const after = await probabilities(request.deltas!.map((d, i) => ({ ...d, values: run.deltas[i]! })));
  return items.map((_, i) => ({
    delta: run.deltas[i]!,
    steps: run.steps,
    cancelled: run.cancelled,
    targetProbability: { before: before[i]!, after: after[i]! },
  }));
}

export interface RankOneUpdate {
  /** ΔW = u vᵀ: u ∈ R^n_embd, v ∈ R^n_ff. */
  u: Float32Array;
  v: Float32Array;
  /** (C⁻¹k*)ᵀ k*: near zero means an exploding update (a collapse warning). */
  denominator: number;
}

/** ΔW = (v* − W k*)(C⁻¹k*)ᵀ / ((C⁻¹k*)ᵀ k*); solve is C⁻¹ (identity when C is not used). */
export function rankOneUpdate(key: Float64Array, delta: Float32Array, solve: ((k: Float64Array) => Float64Array) | null): RankOneUpdate {
  const direction = solve ? solve(key) : Float64Array.from(key);
  let denominator = 0;
  for (let i = 0; i < key.length; i++) denominator += direction[i]! * key[i]!;
  if (!Number.isFinite(denominator) || denominator === 0) throw new Error(`the update's denominator (C⁻¹k*)ᵀk* is ${denominator}: the key is degenerate`);
  return {
    u: Float32Array.from(delta, (d) => d / denominator),
    v: Float32Array.from(direction),
    denominator,
  };
}
