// One ROME edit from request to adapter: the phases of rome.ts run on Graft's own graph, the
// second moments come from the G2 statistics cache (a corpus file, or text the model samples
// itself), and the result is written as a rank-one LoRA adapter for blk.L.ffn_down.weight.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { writeLoraAdapter } from '../export/loraAdapter.ts';
import type { GraftNative } from '../native/binding.ts';
import type { GraphOverlay, NativeGraphModel, StepReport } from '../native/graphTypes.ts';
import { layerStatistics, type StatisticsUsed } from './covariance.ts';
import { phaseTimer } from './phaseTimer.ts';
import type { EditRequest } from './request.ts';
import {
  contextTemplates, essencePrompt, keyAndValue, optimizeValue, rankOneUpdate, rewritingPrompts, type RomeHparams,
} from './rome.ts';

export type { StatisticsUsed } from './covariance.ts';

const romePhases = ['templates', 'statistics', 'key', 'value', 'update', 'adapter'] as const;
export type RomePhase = (typeof romePhases)[number];

export interface RomeProgress {
  phase: RomePhase;
  step?: StepReport;
  /** During the v* optimisation: exp(−mean target NLL), the target's probability per token. */
  targetProbability?: number;
}

export interface RomeEditOptions {
  modelPath: string;
  request: EditRequest;
  hparams: RomeHparams;
  /** Corpus for the second moments; without it the model samples its own text. */
  corpus?: string;
  /** Tokens of the corpus used for the second moments (default: all, or 8192 sampled). */
  statisticsTokens?: number;
  statisticsDir?: string;
  /** A second-moment file computed before (e.g. the one an earlier edit recorded): used as is. */
  statisticsFile?: string;
  /** Where the adapter goes: a file path, or a folder where it is named by its content. */
  out?: string;
  /** Edits already applied (the workspace's stack), as overlays. */
  overlays?: GraphOverlay[];
  signal?: AbortSignal;
  onProgress?: (p: RomeProgress) => void;
}

export interface RomeEditResult {
  layer: number;
  /** ΔW = u vᵀ on blk.<layer>.ffn_down.weight. */
  u: Float32Array;
  v: Float32Array;
  /** k*, W k* and v* − W k*, for checking the update. */
  key: Float64Array;
  value: Float64Array;
  delta: Float32Array;
  templates: string[];
  hparams: RomeHparams;
  preflight: {
    denominator: number;
    /** ‖ΔW‖_F / ‖W‖_F for blk.L.ffn_down.weight. */
    relativeUpdateNorm: number;
    /** denominator / (‖C⁻¹k*‖‖k*‖): near 0 when C⁻¹k* is almost orthogonal to k*, which inflates ΔW */
    denominatorCosine: number;
    subjectIsFirstToken: boolean;
    statisticsTokens: number | null;
  };
  optimisation: { steps: StepReport[]; targetProbability: { before: number; after: number } };
  adapter: string;
  /** The second-moment file C came from (null with mom2Adjustment off). */
  statistics: StatisticsUsed | null;
  timings: Record<RomePhase, number>;
}

async function covarianceSolve(native: GraftNative, graph: NativeGraphModel, o: RomeEditOptions): Promise<{ solve: (k: Float64Array) => Float64Array; tokens: number; used: StatisticsUsed }> {
  const [stats] = await layerStatistics(native, graph, { ...o, seed: o.hparams.seed }, [o.hparams.layer], o.hparams.mom2Ridge);
  return { solve: stats!.solve, tokens: stats!.tokens, used: stats!.used };
}

function frobenius(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i]! * values[i]!;
  return Math.sqrt(s);
}

/** Writes the rank-one adapter, named by a hash of its content unless a file name is given. */
function writeAdapter(native: GraftNative, arch: string, layer: number, u: Float32Array, v: Float32Array, out: string | undefined): string {
  const hash = createHash('sha256').update(`${arch}:${layer}:`).update(new Uint8Array(u.buffer, u.byteOffset, u.byteLength))
    .update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)).digest('hex').slice(0, 16);
  const target = out && out.endsWith('.gguf') ? out : path.join(out ?? process.cwd(), `rome-L${layer}-${hash}.gguf`);
  if (fs.existsSync(target) && out?.endsWith('.gguf')) throw new Error(`${target} exists; choose another --out (adapters are never overwritten)`);
  writeLoraAdapter(native, target, {
    architecture: arch, name: `graft rome edit, layer ${layer}`,
    factors: [{ base: `blk.${layer}.ffn_down.weight`, nIn: v.length, nOut: u.length, rank: 1, a: v, b: u }],
  });
  return target;
}

export async function romeEdit(native: GraftNative, graph: NativeGraphModel, o: RomeEditOptions): Promise<RomeEditResult> {
  const { request, hparams: hp } = o;
  const overlays = o.overlays ?? [];
  const info = graph.info;
  if (!Number.isInteger(hp.layer) || hp.layer < 0 || hp.layer >= info.nLayer) {
    throw new Error(`layer ${hp.layer} is out of range (the model has ${info.nLayer} layers, 0 to ${info.nLayer - 1})`);
  }
  const { phase, timings } = phaseTimer(romePhases, o);

  const templates = await phase('templates', () => contextTemplates(graph, hp));
  const prompts = rewritingPrompts(graph, request, templates);
  const essence = essencePrompt(graph, request);
  const bare = prompts[0]!;
  const bos = graph.tokenize('', true).length;
  const stats = hp.mom2Adjustment ? await phase('statistics', () => covarianceSolve(native, graph, o)) : null;
  // A subject that opens the bare prompt has an unprefixed key unlike any it meets in running
  // text (C-ROME); k* averages it with the prefixed ones and that one k* serves numerator,
  // denominator and W·k alike (r-ROME), so it cannot make the denominator collapse.
  const firstToken = bare.lookup === bos && graph.tokenize(request.subject, false).length === 1;
  const start = await phase('key', () => keyAndValue(graph, prompts, hp.layer, overlays));
  const value = await phase('value', () => optimizeValue(graph, prompts, essence, { layer: hp.layer, site: 'mlp_out', start }, hp, overlays, {
    ...(o.signal ? { signal: o.signal } : {}),
    onStep: (step) => o.onProgress?.({ phase: 'value', step, targetProbability: Math.exp(-step.nll) }),
  }));
  if (value.cancelled) throw new Error('the edit was cancelled during the v* optimisation; nothing was written');
  const update = await phase('update', () => rankOneUpdate(start.key, value.delta, stats?.solve ?? null));
  const weight = native.readTensor(o.modelPath, `blk.${hp.layer}.ffn_down.weight`).values;
  const relativeUpdateNorm = (frobenius(update.u) * frobenius(update.v)) / frobenius(weight);
  const adapter = await phase('adapter', () => writeAdapter(native, info.arch, hp.layer, update.u, update.v, o.out));
  return {
    layer: hp.layer, u: update.u, v: update.v, key: start.key, value: start.value, delta: value.delta, templates, hparams: hp,
    preflight: {
      denominator: update.denominator, relativeUpdateNorm,
      denominatorCosine: update.denominator / (frobenius(update.v) * frobenius(start.key)),
      subjectIsFirstToken: firstToken,
      statisticsTokens: stats?.tokens ?? null,
    },
    optimisation: { steps: value.steps, targetProbability: value.targetProbability },
    adapter, statistics: stats?.used ?? null, timings,
  };
}
