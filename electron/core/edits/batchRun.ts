// A request file run as one batch or as a sequence of batches, each batch one recorded edit on
// the stack the earlier ones left. The run and which of its batches are done live in the
// history, so a run that crashed or was cancelled picks up where it stopped when started again
// with the same file, method, batch size and settings. So does its curve: each batch's point is
// stored as soon as it is measured, and the result carries every stored point of the run.
import type Database from 'better-sqlite3';

import { writeOverlayAdapter } from '../export/editStack.ts';
import type { GraftNative } from '../native/binding.ts';
import type { GraphOverlay, NativeGraphModel } from '../native/graphTypes.ts';
import type { WatchResult } from '../probes/collapseWatch.ts';
import type { Judgement } from '../probes/verdict.ts';
import {
  batchCount, beginBatchRun, canonicalJson, curvePoints, doneBatchIndices, failBatchRun, finishBatchRun, getBatchRun, recordCurvePoint, resumableBatchRun, resumeBatchRun,
  type BatchRunPoint, type CurvePoint,
} from '../store/batchRuns.ts';
import { probeRunsOfEdit } from '../store/probeRuns.ts';
import { enabledOverlays, getEdit, listEdits } from '../store/repository.ts';
import type { BatchHparams } from './batchEdit.ts';
import { editMetrics } from './metrics.ts';
import { recordedEdit, summaryOf, type EditMethod, type EditSpec, type MetricsSummary, type RecordedEditOptions, type RequestMetrics } from './recordedEdit.ts';
import type { EditRequest } from './request.ts';
import { readRequestFile } from './requestFile.ts';
import type { RomeHparams } from './rome.ts';

export interface BatchRunOptions extends Omit<RecordedEditOptions, 'edit' | 'batch' | 'out'> {
  method: EditMethod;
  requestsPath: string;
  /** requests per edit: all of them by default (ROME: 1) */
  batchSize?: number;
  /** batches one after another, each computed on the model the earlier ones edited */
  sequential: boolean;
  hparams: RomeHparams | BatchHparams;
  /** one adapter holding every edit of the run */
  out?: string;
  /** after each batch, the efficacy of every request so far on the current stack */
  curve?: boolean;
  onBatch?: (outcome: BatchOutcome, batches: number) => void;
}

export interface BatchOutcome {
  index: number;
  editId: number;
  requestIndices: number[];
  requests: RequestMetrics[];
  /** done in an earlier, interrupted attempt of this run */
  resumed: boolean;
  verdict: string | null;
  autoDisabled: boolean;
  /** largest ‖W + ΔW‖/‖W‖ over the edited layers after this batch */
  normGrowth: number | null;
}

export interface BatchRunResult {
  runId: number;
  /** a run of the same file and settings existed and was continued */
  resumed: boolean;
  requests: number;
  batches: BatchOutcome[];
  /** each request measured right after its own batch */
  summary: MetricsSummary;
  /** the run's stored curve, one point per measured batch, earlier attempts' points included */
  curve: BatchRunPoint[];
  adapter: string | null;
}

/** Checks the combination of method, size and order, and says what to change. */
export function batchPlan(method: EditMethod, count: number, batchSize: number | undefined, sequential: boolean): number {
  if (batchSize !== undefined && (!Number.isInteger(batchSize) || batchSize < 1)) throw new Error(`--batch-size must be a whole number ≥ 1, got ${batchSize}`);
  if (method === 'rome') {
    if (batchSize !== undefined && batchSize !== 1) throw new Error('ROME edits one fact at a time: use --batch-size 1 (or leave it out), or a batch method (memit, emmet, alphaedit)');
    if (count > 1 && !sequential) throw new Error(`the file holds ${count} requests and ROME edits one fact at a time: add --sequential to apply them one after another, or use --method memit|emmet|alphaedit`);
    return 1;
  }
  const size = batchSize ?? count;
  if (size < count && !sequential) {
    throw new Error(`batches of ${size} out of ${count} requests need --sequential (each batch is computed on the model the earlier ones edited); leave out --batch-size for one batch`);
  }
  return Math.min(size, count);
}

function specOf(method: EditMethod, requests: EditRequest[], hparams: RomeHparams | BatchHparams): EditSpec {
  return method === 'rome' ? { method, requests: [requests[0]!], hparams: hparams as RomeHparams } : { method, requests, hparams: hparams as BatchHparams };
}

async function curvePoint(graph: NativeGraphModel, requests: EditRequest[], stack: GraphOverlay[], outcome: BatchOutcome, sentencePplRatio: number | null): Promise<CurvePoint> {
  let wins = 0, pNew = 0;
  for (const r of requests) {
    const { efficacy } = await editMetrics(graph, { ...r, paraphrasePrompts: [], neighborhoodPrompts: [], generationPrompts: [] }, stack);
    wins += efficacy.probabilityScore > 0 || (Number.isNaN(efficacy.probabilityScore) && efficacy.tokenAccuracy === 1) ? 1 : 0;
    pNew += efficacy.pNew;
  }
  return { edits: requests.length, efficacy: wins / requests.length, pNew: pNew / requests.length, sentencePplRatio, normGrowth: outcome.normGrowth };
}

/** An earlier attempt's batch, read back from the history. */
function recordedOutcome(db: Database.Database, runId: number, index: number): BatchOutcome {
  const edit = listEdits(db).find((e) => e.batchRunId === runId && e.batchIndex === index && e.status === 'done');
  if (!edit) throw new Error(`internal: batch ${index} of run ${runId} is marked done but has no done edit`);
  const metrics = getEdit(db, edit.id).metrics as { requests?: RequestMetrics[] } | RequestMetrics;
  const requests = 'requests' in metrics && Array.isArray(metrics.requests) ? metrics.requests : [metrics as RequestMetrics];
  return { index, editId: edit.id, requestIndices: edit.requestIndices ?? [], requests, resumed: true, verdict: null, autoDisabled: !edit.enabled, normGrowth: null };
}

export async function runBatchFile(native: GraftNative, db: Database.Database, graph: NativeGraphModel, o: BatchRunOptions): Promise<BatchRunResult> {
  const { requests, sha256 } = readRequestFile(o.requestsPath);
  const size = batchPlan(o.method, requests.length, o.batchSize, o.sequential);
  const spec = {
    method: o.method, requestsPath: o.requestsPath, requestsSha256: sha256, requestCount: requests.length,
    batchSize: size, sequential: o.sequential, hparams: JSON.parse(canonicalJson(o.hparams)) as unknown,
  };
  const existing = resumableBatchRun(db, o.workspace.id, spec);
  const runId = existing ? existing.id : beginBatchRun(db, o.workspace.id, spec);
  if (existing) resumeBatchRun(db, runId);
  const batches = batchCount(getBatchRun(db, runId));
  const done = new Set(doneBatchIndices(db, runId));
  const measured = new Set(curvePoints(db, runId).map((p) => p.batchIndex));
  const outcomes: BatchOutcome[] = [];
  const recordPoint = async (outcome: BatchOutcome, sentencePplRatio: number | null) => {
    const soFar = requests.slice(0, outcome.requestIndices.at(-1)! + 1);
    recordCurvePoint(db, runId, { batchIndex: outcome.index, ...(await curvePoint(graph, soFar, enabledOverlays(db, o.workspace.id), outcome, sentencePplRatio)) });
  };
  try {
    for (let index = 0; index < batches; index++) {
      const requestIndices = Array.from({ length: Math.min(size, requests.length - index * size) }, (_, i) => index * size + i);
      if (done.has(index)) {
        const outcome = recordedOutcome(db, runId, index);
        outcomes.push(outcome);
        // A process that died between saving a batch and measuring it left no point. While no
        // later batch is done the stack is still the one that point describes: measure it now.
        if (o.curve && !measured.has(index) && index === Math.max(...done)) {
          const recorded = recordedSignals(db, outcome.editId);
          await recordPoint({ ...outcome, normGrowth: recorded.normGrowth }, recorded.sentencePplRatio);
        }
        o.onBatch?.(outcome, batches);
        continue;
      }
      const batch = requestIndices.map((i) => requests[i]!);
      const r = await recordedEdit(native, db, graph, { ...o, out: undefined, edit: specOf(o.method, batch, o.hparams), batch: { runId, index, requestIndices } } as RecordedEditOptions);
      const growth = r.watch?.normGrowth.length ? Math.max(...r.watch.normGrowth.map((g) => g.growth)) : Math.max(...r.normGuard.map((g) => g.cappedGrowth));
      const outcome: BatchOutcome = {
        index, editId: r.editId, requestIndices, requests: r.requests, resumed: false,
        verdict: r.watch?.verdict ?? null, autoDisabled: r.watch?.autoDisabled ?? false, normGrowth: Number.isFinite(growth) ? growth : null,
      };
      outcomes.push(outcome);
      if (o.curve) await recordPoint(outcome, r.watch ? sentenceRatio(r.watch) : null);
      o.onBatch?.(outcome, batches);
    }
    finishBatchRun(db, runId);
  } catch (error) {
    failBatchRun(db, runId, o.signal?.aborted || /cancel/i.test(String(error)) ? 'cancelled' : 'failed', (error as Error).message);
    throw error;
  }
  const adapter = o.out ? writeRunAdapter(native, db, graph.info.arch, outcomes, o.out, o.method) : null;
  return { runId, resumed: existing !== null, requests: requests.length, batches: outcomes, summary: summaryOf(outcomes.flatMap((b) => b.requests)), curve: curvePoints(db, runId), adapter };
}

/** What the collapse watch (or, without probes, the norm guard) recorded after an edit, as the live point takes it. */
function recordedSignals(db: Database.Database, editId: number): { sentencePplRatio: number | null; normGrowth: number | null } {
  const signals = (probeRunsOfEdit(db, editId).at(-1)?.judgement as Judgement | null | undefined)?.signals;
  const guard = (getEdit(db, editId).preflight as { normGuard?: { cappedGrowth: number }[] } | null)?.normGuard ?? [];
  const growth = signals?.normGrowth ?? (guard.length > 0 ? Math.max(...guard.map((g) => g.cappedGrowth)) : null);
  return { sentencePplRatio: signals?.sentencePplRatio ?? null, normGrowth: growth !== null && Number.isFinite(growth) ? growth : null };
}

function sentenceRatio(watch: WatchResult): number {
  return watch.results.sentence.meanPpl / watch.baseline.sentence.meanPpl;
}

/** Every enabled edit of the run in one adapter (ranks add per layer). */
function writeRunAdapter(native: GraftNative, db: Database.Database, arch: string, outcomes: BatchOutcome[], out: string, method: EditMethod): string {
  if (!out.endsWith('.gguf')) throw new Error(`--out ${out}: the run's adapter is one file; give a path ending in .gguf`);
  const overlays = outcomes.flatMap((b) => {
    const edit = getEdit(db, b.editId);
    return edit.enabled ? edit.factors.map((f) => ({ layer: f.layer, rank: f.rank, u: f.u, v: f.v })) : [];
  });
  if (overlays.length === 0) throw new Error('no edit of the run is enabled; nothing to write');
  writeOverlayAdapter(native, out, arch, overlays, `graft ${method} run of ${outcomes.reduce((n, b) => n + b.requestIndices.length, 0)} facts`);
  return out;
}
