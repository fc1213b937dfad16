// One ROME edit as the history knows it, shared by `graft edit` and the app: metrics before,
// the edit on top of the workspace's enabled stack, metrics after, the result and its
// statistics recorded in one go, then the collapse watch on the new stack. A failure or a
// cancel leaves the edit recorded as failed/cancelled (switched off), never as done.
import fs from 'node:fs';
import path from 'node:path';

import type Database from 'better-sqlite3';

import type { GraftNative } from '../native/binding.ts';
import type { NativeGraphModel } from '../native/graphTypes.ts';
import { watchWorkspace, type WatchResult } from '../probes/collapseWatch.ts';
import type { ProbeConfig } from '../probes/probeSuite.ts';
import type { Thresholds } from '../probes/verdict.ts';
import { beginEdit, enabledOverlays, failEdit, finishEdit, recordStatistics, type WorkspaceRecord } from '../store/repository.ts';
import { editMetrics, type EditMetrics } from './metrics.ts';
import type { EditRequest } from './request.ts';
import type { RomeHparams } from './rome.ts';
import { romeEdit, type RomeEditResult, type RomeProgress } from './romeEdit.ts';

export interface RecordedEditOptions {
  modelPath: string;
  workspace: WorkspaceRecord;
  request: EditRequest;
  hparams: RomeHparams;
  corpus?: string;
  statisticsTokens?: number;
  statisticsDir?: string;
  /** adapter file or folder; default: an `edits` folder beside the history database */
  out?: string;
  signal?: AbortSignal;
  /** the edit's row exists (status running): lists may show it */
  onBegin?: (editId: number) => void;
  onProgress?: (p: RomeProgress | { phase: 'metrics-before' | 'metrics-after' | 'recorded' }) => void;
  /** null: no collapse watch after the edit */
  probes: {
    config: ProbeConfig;
    autoDisable: boolean;
    thresholds?: Thresholds;
    threads?: number;
    onProgress?: (p: { probe: string; done: number; total: number }) => void;
  } | null;
}

export interface RecordedEdit {
  editId: number;
  /** how many enabled edits it was computed on */
  stack: number;
  result: RomeEditResult;
  metrics: { before: EditMetrics; after: EditMetrics };
  watch: WatchResult | null;
}

export function editsFolderBeside(dbFile: string): string {
  const dir = path.join(path.dirname(dbFile), 'edits');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

export async function recordedEdit(native: GraftNative, db: Database.Database, graph: NativeGraphModel, o: RecordedEditOptions): Promise<RecordedEdit> {
  const { request, hparams } = o;
  const stack = enabledOverlays(db, o.workspace.id);
  const fluency = { fluency: request.generationPrompts.length > 0, seed: hparams.seed };
  o.onProgress?.({ phase: 'metrics-before' });
  const before = await editMetrics(graph, request, stack, fluency);
  const editId = beginEdit(db, o.workspace.id, { method: 'rome', request, layers: [hparams.layer], hparams, seed: hparams.seed });
  o.onBegin?.(editId);
  try {
    const result = await romeEdit(native, graph, {
      modelPath: o.modelPath, request, hparams, overlays: stack, out: o.out ?? editsFolderBeside(db.name),
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.corpus !== undefined ? { corpus: o.corpus } : {}),
      ...(o.statisticsTokens !== undefined ? { statisticsTokens: o.statisticsTokens } : {}),
      ...(o.statisticsDir !== undefined ? { statisticsDir: o.statisticsDir } : {}),
      ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    });
    if (o.signal?.aborted) throw new Error('the edit was cancelled');
    o.onProgress?.({ phase: 'metrics-after' });
    const after = await editMetrics(graph, request, [...stack, { layer: result.layer, rank: 1, u: result.u, v: result.v }], fluency);
    // a cancel that arrives during the metrics still wins: nothing is recorded as done after it
    if (o.signal?.aborted) throw new Error('the edit was cancelled');
    if (result.statistics) recordStatistics(db, editId, o.workspace.modelId, result.statistics);
    finishEdit(db, editId, {
      templates: result.templates, factors: [{ layer: result.layer, rank: 1, u: result.u, v: result.v }],
      timings: result.timings, preflight: result.preflight, metrics: { before, after }, adapterPath: result.adapter,
    });
    o.onProgress?.({ phase: 'recorded' });
    // the collapse watch: the default probes on the new stack, judged with the edit's preflight
    const watch = o.probes ? await watchWorkspace(native, db, o.workspace, o.probes.config, {
      editId, autoDisable: o.probes.autoDisable, ...(o.probes.thresholds ? { thresholds: o.probes.thresholds } : {}),
      ...(o.probes.threads !== undefined ? { threads: o.probes.threads } : {}), ...(o.signal ? { signal: o.signal } : {}),
      ...(o.probes.onProgress ? { onProgress: o.probes.onProgress } : {}),
    }) : null;
    return { editId, stack: stack.length, result, metrics: { before, after }, watch };
  } catch (error) {
    // failEdit only touches a running edit: one that was recorded before the watch failed stays done
    failEdit(db, editId, o.signal?.aborted || /cancel/i.test(String(error)) ? 'cancelled' : 'failed', (error as Error).message);
    throw error;
  }
}
