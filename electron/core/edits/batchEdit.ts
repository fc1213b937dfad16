// Many facts in one update, spread over a range of layers: MEMIT (Meng et al. 2023), EMMET
// (Gupta et al. 2024) and AlphaEdit (Fang et al. 2025) share everything but the solve.
//
//   1. targets z_i       per request, a delta on the residual stream leaving the last layer L
//                        at the subject's last token, optimised like ROME's v* (NLL + KL + norm)
//   2. per layer l, ascending, on the model with the earlier layers already updated:
//        K_l             keys at the subject's last token, averaged within each context type
//                        and then over the types (the bare prompt weighs as much as each group)
//        R               (z_i − h_L,i) / (layers left): each layer adds its share of what is missing
//        ΔW_l = R A_lᵀ   A_l from batchSolvers.ts
//   3. keys again on the fully edited model: AlphaEdit protects them in later batches
//
// Every ΔW_l has rank ≤ batch size and is kept exactly as factors (u = R's columns, v = A's).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { writeOverlayAdapter } from '../export/editStack.ts';
import { fromColumns, frobenius, matrix, type Matrix } from '../linalg/dense.ts';
import type { GraftNative } from '../native/binding.ts';
import type { GraphOverlay, NativeGraphModel, StepReport } from '../native/graphTypes.ts';
import { alphaEditAdjustedKeys, emmetAdjustedKeys, memitAdjustedKeys, type Projector } from './batchSolvers.ts';
import { layerStatistics, type LayerStatistics, type StatisticsSource, type StatisticsUsed } from './covariance.ts';
import { phaseTimer } from './phaseTimer.ts';
import { filledPrompt, type EditRequest } from './request.ts';
import { atLookups, contextTemplates, essencePrompt, locateSubject, optimizeValues, rewritingPrompts, type PreparedPrompt, type RomeHparams } from './rome.ts';

export const batchMethods = ['memit', 'emmet', 'alphaedit'] as const;
export type BatchMethod = (typeof batchMethods)[number];

export interface BatchHparams extends Omit<RomeHparams, 'layer' | 'mom2Adjustment'> {
  method: BatchMethod;
  /** Edited layers, ascending; z is optimised at the last one. */
  layers: number[];
  /** λ: how much the preserved keys' second moments weigh against the new keys (MEMIT, EMMET). */
  mom2UpdateWeight: number;
  /** EMMET's μ on D = KᵀC⁻¹K + μI (batches of more than one request). */
  emmetLambda: number;
  /** AlphaEdit: eigenvalues of C below this span the null space the update may use. */
  nullspaceThreshold: number;
  /** AlphaEdit's ℓ in S = P(KKᵀ + KₚKₚᵀ) + ℓI. */
  l2: number;
}

/** Layers 4–8 of 32 (MEMIT and AlphaEdit on Llama), scaled to depth, at least two when the model has them. */
function spreadLayers(nLayer: number): number[] {
  const first = Math.min(nLayer - 1, Math.round((4 / 32) * nLayer));
  const last = Math.min(nLayer - 1, Math.max(first + 1, Math.round((8 / 32) * nLayer)));
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

/**
 * The layers a method edits when causal tracing located the recall at `first`: EMMET that layer,
 * MEMIT and AlphaEdit a window as long as their default one, starting there (kept inside the model).
 */
export function batchLayersAt(method: BatchMethod, nLayer: number, first: number): number[] {
  if (!Number.isInteger(first) || first < 0 || first >= nLayer) throw new Error(`layer ${first} is out of range (the model has ${nLayer} layers)`);
  if (method === 'emmet') return [first];
  const length = spreadLayers(nLayer).length;
  const start = Math.max(0, Math.min(first, nLayer - length));
  return Array.from({ length }, (_, i) => start + i);
}

/** n_ff of Llama-2-7B, the model EasyEdit's λ values were chosen for. */
const publishedWidth = 11008;

/**
 * The published Llama defaults (EasyEdit's Llama-2-7B MEMIT and EMMET configs; AlphaEdit keeps
 * MEMIT's and adds its null-space threshold and EasyEdit's L2), layers scaled to depth and λ to
 * width: a key k drawn from the statistics has E[kᵀC⁻¹k] = tr(C⁻¹C) = n_ff, so λ·n_ff/11008
 * keeps the published balance between a new key's pull and the preserved keys'.
 */
export function batchDefaults(method: BatchMethod, nLayer: number, nFf: number): BatchHparams {
  const width = nFf / publishedWidth;
  const common = {
    method, vLr: 0.5, vSteps: 25, klFactor: 0.0625, vWeightDecay: 1e-3, clampNormFactor: 4, mom2Ridge: 1e-3, stopLoss: 5e-2, seed: 0,
    contextTemplates: [[5, 10], [10, 10]] as [number, number][],
    emmetLambda: 0.1, nullspaceThreshold: 2e-2, l2: 1,
  };
  if (method === 'emmet') return { ...common, layers: [Math.max(0, Math.min(nLayer - 1, Math.round((5 / 32) * nLayer)))], mom2UpdateWeight: 1e5 * width };
  return { ...common, layers: spreadLayers(nLayer), mom2UpdateWeight: 1.5e4 * width };
}

export function checkBatchHparams(hp: BatchHparams, nLayer: number): void {
  if (!batchMethods.includes(hp.method)) throw new Error(`unknown method '${hp.method}'; use one of ${batchMethods.join(', ')}`);
  if (hp.layers.length === 0) throw new Error('give at least one layer to edit');
  hp.layers.forEach((l, i) => {
    if (!Number.isInteger(l) || l < 0 || l >= nLayer) throw new Error(`layer ${l} is out of range (the model has ${nLayer} layers, 0 to ${nLayer - 1})`);
    if (i > 0 && l <= hp.layers[i - 1]!) throw new Error(`layers must be ascending and distinct, got ${hp.layers.join(', ')}`);
  });
  for (const key of ['mom2UpdateWeight', 'l2', 'nullspaceThreshold'] as const) {
    if (!(hp[key] > 0)) throw new Error(`${key} must be positive, got ${hp[key]}`);
  }
  if (!(hp.emmetLambda >= 0)) throw new Error(`emmetLambda must be ≥ 0, got ${hp.emmetLambda}`);
}

const batchPhases = ['templates', 'statistics', 'targets', 'layers', 'keys', 'adapter'] as const;
export type BatchPhase = (typeof batchPhases)[number];

export interface BatchProgress {
  phase: BatchPhase;
  /** targets: the request being optimised; layers: the layer being solved. */
  request?: number;
  layer?: number;
  step?: StepReport;
}

/** AlphaEdit's projector for a layer, built from that layer's second moments. */
export type ProjectorFor = (stats: LayerStatistics, threshold: number) => Promise<Projector & { dimension: number }>;

export interface BatchEditOptions extends Omit<StatisticsSource, 'seed' | 'statisticsFile'> {
  requests: EditRequest[];
  hparams: BatchHparams;
  /** The enabled stack the batch is computed on. */
  overlays?: GraphOverlay[];
  /** Keys earlier edits were made for at a layer (AlphaEdit's Kₚ): they must stay where they are. */
  preservedKeys?: (layer: number) => Float32Array[];
  /** Required for AlphaEdit. */
  projector?: ProjectorFor;
  /** A file path, or a folder where the adapter is named by its content. */
  out?: string;
  onProgress?: (p: BatchProgress) => void;
}

export interface LayerUpdate {
  layer: number;
  rank: number;
  /** ‖ΔW‖_F / ‖W‖_F */
  relativeUpdateNorm: number;
  /** EMMET: D was singular and its pseudo-inverse was used */
  pseudoInverse?: boolean;
  /** EMMET: smallest over largest eigenvalue of D */
  conditioning?: number;
  /** AlphaEdit: dimension of the null space the update lives in, and how many earlier keys were protected */
  nullSpaceDimension?: number;
  preservedKeys?: number;
}

export interface RequestTarget {
  /** exp(−mean target NLL) on the rewriting prompts, before and after z's optimisation */
  targetProbability: { before: number; after: number };
  steps: number;
  /** ‖z − h_L‖ / ‖h_L‖ */
  relativeShift: number;
}

export interface BatchEditResult {
  method: BatchMethod;
  hparams: BatchHparams;
  templates: string[];
  /** ΔW_l = Σ_j u_j v_jᵀ, as overlays (u: rank × n_embd, v: rank × n_ff). */
  factors: GraphOverlay[];
  /** Each layer's keys of the batch on the edited model (n_ff each), one per request. */
  keys: { layer: number; keys: Float32Array[] }[];
  targets: RequestTarget[];
  preflight: { layers: LayerUpdate[] };
  statistics: StatisticsUsed[];
  adapter: string;
  timings: Record<BatchPhase, number>;
}

/** Requests whose prompts the graph can run; a subject that does not end on a token boundary is named. */
function preparedRequests(graph: NativeGraphModel, requests: EditRequest[], templates: string[]) {
  return requests.map((request, i) => {
    try {
      const rewriting = rewritingPrompts(graph, request, templates);
      const [before, after] = request.prompt.split('{}') as [string, string];
      // The keys' prompts: each template around the prompt, without the target.
      const keyPrompts: PreparedPrompt[] = templates.map((t) => {
        const [tb, ta] = t.split('{}') as [string, string];
        return { ...locateSubject(graph, tb + before, request.subject, after + ta), targets: [] };
      });
      return { request, rewriting, essence: essencePrompt(graph, request), keyPrompts };
    } catch (error) {
      throw new Error(`request ${i + 1} ("${filledPrompt(request)}"): ${(error as Error).message}`);
    }
  });
}

/** Each template's weight in a key: the bare prompt is one context type, each sampled group another. */
function templateWeights(hp: Pick<BatchHparams, 'contextTemplates'>): number[] {
  const groups = [1, ...hp.contextTemplates.map(([count]) => count)].filter((c) => c > 0);
  return groups.flatMap((count) => Array<number>(count).fill(1 / (groups.length * count)));
}

const promptsPerRun = 64;
/**
 * Requests whose targets are optimised in one graph. Attention is per prompt now (cost linear
 * in the prompts), so joining no longer costs more, but it saves nothing either: on stories260K
 * (bench/jointTargets, 10 Adam steps, 1 thread) N requests together took 0.92–1.11× the time of
 * N apart for N = 1, 2, 4, 8, 16 (16: 4.8 s vs 5.1 s), where the old block-diagonal graph took
 * 4.4× at N = 4 and 8.3× at N = 8; the batch bench's targets phase took 64 s with 8 per graph
 * and 68 s with 1. The time goes to per-token work, which joining does not share, while a joint
 * run stops on the summed loss and so changes each z. With the reused prefix (each step computes
 * only the rows from the subject on) joining costs 0.90–1.31×, worse as N grows: the padding to
 * the longest computed suffix then weighs more. One at a time, then.
 */
const targetsPerRun = 1;

/** Captures at the subject token of every prompt, in runs of a bounded size. */
async function captureAtLookups(graph: NativeGraphModel, prompts: PreparedPrompt[], sites: { layer: number; site: 'mlp_key' | 'resid_out' | 'resid_in' }[], overlays: GraphOverlay[]): Promise<Float32Array[][]> {
  const out: Float32Array[][] = sites.map(() => []);
  for (let start = 0; start < prompts.length; start += promptsPerRun) {
    const chunk = prompts.slice(start, start + promptsPerRun);
    const run = await graph.run({ prompts: chunk.map((p) => p.tokens), overlays, captures: sites });
    run.captures.forEach((c, s) => out[s]!.push(...atLookups(c.values, c.width, chunk).map((r) => Float32Array.from(r))));
  }
  return out;
}

function norm(v: ArrayLike<number>): number {
  return frobenius(v);
}

export async function batchEdit(native: GraftNative, graph: NativeGraphModel, o: BatchEditOptions): Promise<BatchEditResult> {
  const hp = o.hparams;
  const info = graph.info;
  checkBatchHparams(hp, info.nLayer);
  if (o.requests.length === 0) throw new Error('the batch holds no requests');
  if (hp.method === 'alphaedit' && !o.projector) throw new Error('AlphaEdit needs the null-space projector of each layer');
  const overlays = o.overlays ?? [];
  const lastLayer = hp.layers[hp.layers.length - 1]!;
  const { phase, timings } = phaseTimer(batchPhases, o);

  const templates = await phase('templates', () => contextTemplates(graph, hp));
  const weights = templateWeights(hp);
  if (weights.length !== templates.length) throw new Error(`internal: ${templates.length} templates but ${weights.length} weights`);
  const prepared = preparedRequests(graph, o.requests, templates);
  const bare = prepared.map((p) => p.keyPrompts[0]!);
  const statistics = await phase('statistics', () => layerStatistics(native, graph, { ...o, seed: hp.seed }, hp.layers, hp.mom2Ridge));

  // 1. z: the residual each request needs leaving layer L, on the enabled stack
  const targets: RequestTarget[] = [];
  const z: Float64Array[] = [];
  await phase('targets', async () => {
    for (let first = 0; first < prepared.length; first += targetsPerRun) {
      const chunk = prepared.slice(first, first + targetsPerRun);
      const starts: { layerInput: Float32Array; value: Float64Array }[] = [];
      for (const p of chunk) {  // one graph computes at a time
        const [layerInput, outputs] = await captureFull(graph, p.rewriting, lastLayer, overlays);
        starts.push({ layerInput, value: Float64Array.from(outputs[0]!) });  // h_L at the bare prompt's subject token
      }
      const runs = await optimizeValues(graph, chunk.map((p, i) => ({ prompts: p.rewriting, essence: p.essence, start: starts[i]! })),
        { layer: lastLayer, site: 'resid_out' }, hp, overlays, {
          ...(o.signal ? { signal: o.signal } : {}),
          onStep: (step) => o.onProgress?.({ phase: 'targets', request: first, step }),
        });
      if (runs.some((r) => r.cancelled)) throw new Error('the edit was cancelled while optimising the targets; nothing was written');
      runs.forEach((run, i) => {
        const { value } = starts[i]!;
        z.push(Float64Array.from(value, (v, e) => v + run.delta[e]!));
        targets.push({ targetProbability: run.targetProbability, steps: run.steps.length, relativeShift: norm(run.delta) / norm(value) });
      });
    }
  });

  // 2. layer by layer, each on the model with the earlier layers' updates applied
  const factors: GraphOverlay[] = [];
  const layers: LayerUpdate[] = [];
  await phase('layers', async () => {
    for (const [i, layer] of hp.layers.entries()) {
      o.onProgress?.({ phase: 'layers', layer });
      if (o.signal?.aborted) throw new Error('the edit was cancelled');
      const current = [...overlays, ...factors];
      const allKeyPrompts = prepared.flatMap((p) => p.keyPrompts);
      const [keyRows] = await captureAtLookups(graph, allKeyPrompts, [{ layer, site: 'mlp_key' }], current);
      const [hL] = await captureAtLookups(graph, bare, [{ layer: lastLayer, site: 'resid_out' }], current);
      const keys = prepared.map((_, r) => weightedKey(keyRows!.slice(r * templates.length, (r + 1) * templates.length), weights));
      const k = fromColumns(keys, info.nFf);
      const resid = fromColumns(z.map((zi, r) => Float64Array.from(zi, (v, e) => (v - hL![r]![e]!) / (hp.layers.length - i))), info.nEmbd);
      const stats = statistics[i]!;
      const update: LayerUpdate = { layer, rank: o.requests.length, relativeUpdateNorm: 0 };
      let adjusted: Matrix;
      if (hp.method === 'memit') {
        adjusted = memitAdjustedKeys(k, stats.solve, hp.mom2UpdateWeight);
      } else if (hp.method === 'emmet') {
        const e = emmetAdjustedKeys(k, stats.solve, hp.mom2UpdateWeight, hp.emmetLambda);
        adjusted = e.adjusted;
        Object.assign(update, { pseudoInverse: e.pseudoInverse, conditioning: e.conditioning });
      } else {
        const projector = await o.projector!(stats, hp.nullspaceThreshold);
        if (projector.dimension === 0) {
          throw new Error(`layer ${layer}: no eigenvalue of the second moments is below the null-space threshold ${hp.nullspaceThreshold}, ` +
            'so AlphaEdit has no room for an update; raise nullspaceThreshold');
        }
        const preserved = o.preservedKeys?.(layer) ?? [];
        adjusted = alphaEditAdjustedKeys(k, preserved.length > 0 ? fromColumns(preserved, info.nFf) : null, projector, hp.l2);
        Object.assign(update, { nullSpaceDimension: projector.dimension, preservedKeys: preserved.length });
      }
      const overlay = overlayOf(layer, resid, adjusted);
      const weight = native.readTensor(o.modelPath, `blk.${layer}.ffn_down.weight`).values;
      update.relativeUpdateNorm = updateNorm(overlay) / norm(weight);
      if (!Number.isFinite(update.relativeUpdateNorm)) throw new Error(`layer ${layer}: the update is not finite; the keys or the statistics are degenerate`);
      factors.push(overlay);
      layers.push(update);
    }
  });

  // 3. the batch's keys on the edited model, as AlphaEdit accumulates them
  const keys = await phase('keys', async () => {
    const all = prepared.flatMap((p) => p.keyPrompts);
    const rows = await captureAtLookups(graph, all, hp.layers.map((layer) => ({ layer, site: 'mlp_key' as const })), [...overlays, ...factors]);
    return hp.layers.map((layer, l) => ({
      layer,
      keys: prepared.map((_, r) => Float32Array.from(weightedKey(rows[l]!.slice(r * templates.length, (r + 1) * templates.length), weights))),
    }));
  });

  const adapter = await phase('adapter', () => writeBatchAdapter(native, info.arch, hp.method, factors, o.out));
  return { method: hp.method, hparams: hp, templates, factors, keys, targets, preflight: { layers }, statistics: statistics.map((s) => s.used), adapter, timings };
}

/** resid_in and resid_out of layer L for every token of the prompts (the optimisation starts from the input), with resid_out at the subject tokens. */
async function captureFull(graph: NativeGraphModel, prompts: PreparedPrompt[], layer: number, overlays: GraphOverlay[]): Promise<[Float32Array, Float32Array[]]> {
  const run = await graph.run({ prompts: prompts.map((p) => p.tokens), overlays, captures: [{ layer, site: 'resid_in' }, { layer, site: 'resid_out' }] });
  const [inputs, outputs] = run.captures as [typeof run.captures[0], typeof run.captures[0]];
  return [inputs.values, atLookups(outputs.values, outputs.width, prompts)];
}

function weightedKey(rows: Float32Array[], weights: number[]): Float64Array {
  const out = new Float64Array(rows[0]!.length);
  rows.forEach((r, t) => { for (let i = 0; i < out.length; i++) out[i]! += weights[t]! * r[i]!; });
  return out;
}

/** ΔW = R Aᵀ as factors: u_j = R's column j, v_j = A's column j. */
function overlayOf(layer: number, r: Matrix, a: Matrix): GraphOverlay {
  const m = r.cols;
  const u = new Float32Array(m * r.rows), v = new Float32Array(m * a.rows);
  for (let j = 0; j < m; j++) {
    for (let e = 0; e < r.rows; e++) u[j * r.rows + e] = r.data[e * m + j]!;
    for (let f = 0; f < a.rows; f++) v[j * a.rows + f] = a.data[f * m + j]!;
  }
  return { layer, rank: m, u, v };
}

/** ‖Σ_j u_j v_jᵀ‖_F from the Gram matrices of the factors. */
export function updateNorm(o: GraphOverlay): number {
  const nEmbd = o.u.length / o.rank, nFf = o.v.length / o.rank;
  const gu = matrix(o.rank, o.rank), gv = matrix(o.rank, o.rank);
  for (let i = 0; i < o.rank; i++) {
    for (let j = 0; j <= i; j++) {
      let su = 0, sv = 0;
      for (let e = 0; e < nEmbd; e++) su += o.u[i * nEmbd + e]! * o.u[j * nEmbd + e]!;
      for (let f = 0; f < nFf; f++) sv += o.v[i * nFf + f]! * o.v[j * nFf + f]!;
      gu.data[i * o.rank + j] = gu.data[j * o.rank + i] = su;
      gv.data[i * o.rank + j] = gv.data[j * o.rank + i] = sv;
    }
  }
  let s = 0;
  for (let i = 0; i < gu.data.length; i++) s += gu.data[i]! * gv.data[i]!;
  return Math.sqrt(Math.max(0, s));
}

function writeBatchAdapter(native: GraftNative, arch: string, method: BatchMethod, factors: GraphOverlay[], out: string | undefined): string {
  const hash = createHash('sha256').update(`${arch}:${method}:`);
  for (const f of factors) hash.update(`${f.layer}:${f.rank}:`).update(new Uint8Array(f.u.buffer, f.u.byteOffset, f.u.byteLength)).update(new Uint8Array(f.v.buffer, f.v.byteOffset, f.v.byteLength));
  const layers = factors.map((f) => f.layer);
  const target = out && out.endsWith('.gguf') ? out : path.join(out ?? process.cwd(), `${method}-L${layers[0]}-${layers[layers.length - 1]}-${hash.digest('hex').slice(0, 16)}.gguf`);
  if (fs.existsSync(target) && out?.endsWith('.gguf')) throw new Error(`${target} exists; choose another --out (adapters are never overwritten)`);
  writeOverlayAdapter(native, target, arch, factors, `graft ${method} edit of ${factors[0]!.rank} facts, layers ${layers.join(', ')}`);
  return target;
}
