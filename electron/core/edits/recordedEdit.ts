// One edit as the history knows it, shared by `graft edit`, batch files and the app: metrics
// before, the edit (one ROME fact, or a MEMIT/EMMET/AlphaEdit batch) on top of the workspace's
// enabled stack, the norm guard, metrics after, the result with its keys and statistics
// recorded in one transaction, then the collapse watch on the new stack. A failure or a cancel
// leaves the edit recorded as failed/cancelled (switched off), never as done.
import fs from 'node:fs';
import path from 'node:path';

import type Database from 'better-sqlite3';

import { layerFactorsOf, writeOverlayAdapter } from '../export/editStack.ts';
import type { GraftNative } from '../native/binding.ts';
import type { GraphOverlay, NativeGraphModel } from '../native/graphTypes.ts';
import { watchWorkspace, type WatchResult } from '../probes/collapseWatch.ts';
import type { ProbeConfig } from '../probes/probeSuite.ts';
import type { Thresholds } from '../probes/verdict.ts';
import { recordEditKeys, preservedKeys } from '../store/editKeys.ts';
import { beginEdit, enabledOverlays, failEdit, finishEdit, recordStatistics, type WorkspaceRecord } from '../store/repository.ts';
import { alphaEditProjectors } from './alphaEditProjector.ts';
import { batchEdit, type BatchEditResult, type BatchHparams, type BatchMethod, type BatchProgress } from './batchEdit.ts';
import { defaultStatisticsDir } from './covariance.ts';
import { editMetrics, type EditMetrics } from './metrics.ts';
import { normGuard, type NormGuardLayer } from './normGuard.ts';
import type { EditRequest } from './request.ts';
import type { RomeHparams } from './rome.ts';
import { romeEdit, type RomeEditResult, type RomeProgress } from './romeEdit.ts';

export type EditMethod = 'rome' | BatchMethod;

export type EditSpec =
  | { method: 'rome'; requests: [EditRequest]; hparams: RomeHparams }
  | { method: BatchMethod; requests: EditRequest[]; hparams: BatchHparams };

export interface RecordedEditOptions {
  modelPath: string;
  workspace: WorkspaceRecord;
  edit: EditSpec;
  corpus?: string;
  statisticsTokens?: number;
  statisticsDir?: string;
  /** adapter file or folder; default: an `edits` folder beside the history database */
  out?: string;
  /** the batch of a batch run this edit is */
  batch?: { runId: number; index: number; requestIndices: number[] };
  /** scale the update down so that no edited matrix grows past this ‖W + ΔW‖/‖W‖; absent: only report */
  normCap?: number;
  signal?: AbortSignal;
  /** the edit's row exists (status running): lists may show it */
  onBegin?: (editId: number) => void;
  onProgress?: (p: RomeProgress | BatchProgress | { phase: 'metrics-before' | 'metrics-after' | 'recorded' }) => void;
  /** null: no collapse watch after the edit */
  probes: {
    config: ProbeConfig;
    autoDisable: boolean;
    thresholds?: Thresholds;
    threads?: number;
    onProgress?: (p: { probe: string; done: number; total: number }) => void;
  } | null;
}

export interface RequestMetrics {
  before: EditMetrics;
  after: EditMetrics;
}

export interface RecordedEdit {
  editId: number;
  method: EditMethod;
  /** how many enabled edits it was computed on */
  stack: number;
  /** ΔW per layer as recorded (after the norm guard) */
  factors: GraphOverlay[];
  adapter: string;
  rome: RomeEditResult | null;
  batch: BatchEditResult | null;
  /** one entry per request, in order */
  requests: RequestMetrics[];
  normGuard: NormGuardLayer[];
  watch: WatchResult | null;
}

export function editsFolderBeside(dbFile: string): string {
  const dir = path.join(path.dirname(dbFile), 'edits');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

function layersOf(edit: EditSpec): number[] {
  return edit.method === 'rome' ? [edit.hparams.layer] : edit.hparams.layers;
}

async function metricsOf(graph: NativeGraphModel, requests: EditRequest[], overlays: GraphOverlay[], seed: number): Promise<EditMetrics[]> {
  const out: EditMetrics[] = [];
  for (const request of requests) out.push(await editMetrics(graph, request, overlays, { fluency: request.generationPrompts.length > 0, seed }));
  return out;
}

/** The norm guard's scales applied to the new factors (ΔW is linear in u). */
function scaled(factors: GraphOverlay[], guard: NormGuardLayer[]): GraphOverlay[] {
  return factors.map((f) => {
    const s = guard.find((g) => g.layer === f.layer)?.scale ?? 1;
    return s === 1 ? f : { ...f, u: f.u.map((x) => x * s) };
  });
}

export async function recordedEdit(native: GraftNative, db: Database.Database, graph: NativeGraphModel, o: RecordedEditOptions): Promise<RecordedEdit> {
  const { edit } = o;
  if (edit.requests.length === 0) throw new Error('the edit holds no requests');
  if (edit.method === 'rome' && edit.requests.length !== 1) throw new Error('ROME edits one fact at a time; run the others as a sequence');
  const stack = enabledOverlays(db, o.workspace.id);
  const seed = edit.hparams.seed;
  o.onProgress?.({ phase: 'metrics-before' });
  const before = await metricsOf(graph, edit.requests, stack, seed);
  const editId = beginEdit(db, o.workspace.id, {
    method: edit.method, request: edit.method === 'rome' ? edit.requests[0] : edit.requests, layers: layersOf(edit), hparams: edit.hparams, seed,
    ...(o.batch ? { batch: o.batch } : {}),
  });
  o.onBegin?.(editId);
  const out = o.out ?? editsFolderBeside(db.name);
  const common = {
    modelPath: o.modelPath, overlays: stack, out,
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.corpus !== undefined ? { corpus: o.corpus } : {}),
    ...(o.statisticsTokens !== undefined ? { statisticsTokens: o.statisticsTokens } : {}),
    ...(o.statisticsDir !== undefined ? { statisticsDir: o.statisticsDir } : {}),
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
  };
  try {
    let rome: RomeEditResult | null = null, batch: BatchEditResult | null = null;
    let factors: GraphOverlay[], keys: { layer: number; keys: Float32Array[] }[], adapter: string;
    let templates: string[], timings: unknown, preflight: Record<string, unknown>, statistics;
    if (edit.method === 'rome') {
      rome = await romeEdit(native, graph, { ...common, request: edit.requests[0], hparams: edit.hparams });
      factors = [{ layer: rome.layer, rank: 1, u: rome.u, v: rome.v }];
      keys = [{ layer: rome.layer, keys: [Float32Array.from(rome.key)] }];
      ({ adapter, templates, timings } = rome);
      preflight = { ...rome.preflight };
      statistics = rome.statistics ? [rome.statistics] : [];
    } else {
      batch = await batchEdit(native, graph, {
        ...common, requests: edit.requests, hparams: edit.hparams,
        preservedKeys: (layer) => preservedKeys(db, o.workspace.id, layer),
        projector: alphaEditProjectors(native, { cacheDir: path.join(o.statisticsDir ?? defaultStatisticsDir(), 'null-spaces'), ...(o.signal ? { signal: o.signal } : {}) }),
      });
      ({ factors, keys, adapter, templates, timings } = batch);
      // the largest layer's ‖ΔW‖/‖W‖ is what the collapse verdict weighs
      preflight = { relativeUpdateNorm: Math.max(...batch.preflight.layers.map((l) => l.relativeUpdateNorm)), layers: batch.preflight.layers, targets: batch.targets };
      statistics = batch.statistics;
    }
    if (o.signal?.aborted) throw new Error('the edit was cancelled');

    const guard = normGuard(native, o.modelPath, layerFactorsOf(stack), layerFactorsOf(factors), o.normCap ?? Number.POSITIVE_INFINITY);
    if (guard.some((g) => g.scale === 0)) {
      fs.rmSync(adapter, { force: true });  // the update is refused: no adapter of it may stay behind
      throw new Error(guard.map((g) => g.note).filter(Boolean).join('; '));
    }
    if (guard.some((g) => g.scale < 1)) {
      factors = scaled(factors, guard);
      // the adapter beside the history must hold what is recorded: the scaled update replaces it
      const capped = adapter.replace(/\.gguf$/, `-capped${o.normCap}.gguf`);
      writeOverlayAdapter(native, capped, graph.info.arch, factors, `graft ${edit.method} edit, norm-capped at ${o.normCap}`);
      fs.rmSync(adapter, { force: true });
      adapter = capped;
    }
    preflight.normGuard = guard.map(({ layer, growthBefore, growthAfter, scale, cappedGrowth, note }) => ({ layer, growthBefore, growthAfter, scale, cappedGrowth, note }));

    o.onProgress?.({ phase: 'metrics-after' });
    const after = await metricsOf(graph, edit.requests, [...stack, ...factors], seed);
    // a cancel that arrives during the metrics still wins: nothing is recorded as done after it
    if (o.signal?.aborted) throw new Error('the edit was cancelled');
    const requests = before.map((b, i) => ({ before: b, after: after[i]! }));
    db.transaction(() => {
      for (const s of statistics) recordStatistics(db, editId, o.workspace.modelId, s);
      finishEdit(db, editId, {
        templates, factors, timings, preflight, adapterPath: adapter,
        metrics: edit.method === 'rome' ? requests[0] : { requests, summary: summaryOf(requests) },
      });
      for (const k of keys) recordEditKeys(db, editId, k.layer, k.keys);
    })();
    o.onProgress?.({ phase: 'recorded' });
    // the collapse watch: the default probes on the new stack, judged with the edit's preflight
    const watch = o.probes ? await watchWorkspace(native, db, o.workspace, o.probes.config, {
      editId, autoDisable: o.probes.autoDisable, ...(o.probes.thresholds ? { thresholds: o.probes.thresholds } : {}),
      ...(o.probes.threads !== undefined ? { threads: o.probes.threads } : {}), ...(o.signal ? { signal: o.signal } : {}),
      ...(o.probes.onProgress ? { onProgress: o.probes.onProgress } : {}),
    }) : null;
    return { editId, method: edit.method, stack: stack.length, factors, adapter, rome, batch, requests, normGuard: guard, watch };
  } catch (error) {
    // failEdit only touches a running edit: one that was recorded before the watch failed stays done
    failEdit(db, editId, o.signal?.aborted || /cancel/i.test(String(error)) ? 'cancelled' : 'failed', (error as Error).message);
    throw error;
  }
}

export interface MetricsSummary {
  requests: number;
  /** means over the requests that have the measure; null when none has it */
  efficacy: number | null;
  paraphrase: number | null;
  neighbourhood: number | null;
  efficacyTokenAccuracy: number | null;
  paraphraseTokenAccuracy: number | null;
  neighbourhoodTokenAccuracy: number | null;
}

/** The published tables' columns: probability comparison (ES/PS/NS) and token accuracy, averaged over requests. */
export function summaryOf(requests: RequestMetrics[]): MetricsSummary {
  const mean = (pick: (m: EditMetrics) => number | null | undefined) => {
    const xs = requests.map((r) => pick(r.after)).filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
    return xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length;
  };
  return {
    requests: requests.length,
    efficacy: mean((m) => m.efficacy.probabilityScore),
    paraphrase: mean((m) => m.paraphrase?.probabilityScore),
    neighbourhood: mean((m) => m.neighbourhood?.probabilityScore),
    efficacyTokenAccuracy: mean((m) => m.efficacy.tokenAccuracy),
    paraphraseTokenAccuracy: mean((m) => m.paraphrase?.tokenAccuracy),
    neighbourhoodTokenAccuracy: mean((m) => m.neighbourhood?.tokenAccuracy),
  };
}
