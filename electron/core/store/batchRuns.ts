// Batch runs in the history: a request file worked through in batches, one edit per batch. A run
// is resumed rather than restarted: the same file (by sha256), method, batch size, order and
// settings find the unfinished run, and the batches with a completed edit are skipped, so what
// is done is what the database says, never what a crashed process believed. A run's curve is
// kept the same way: one point per batch, written when the batch is measured.
import type Database from 'better-sqlite3';

import { processAlive } from './processAlive.ts';
import type { EditStatus } from './repository.ts';

export type BatchRunStatus = 'running' | 'done' | 'failed' | 'cancelled';

/** What identifies a run for resuming (with the workspace), plus where the file was read from. */
export interface BatchRunSpec {
  method: string;
  requestsPath: string;
  requestsSha256: string;
  requestCount: number;
  batchSize: number;
  sequential: boolean;
  hparams: unknown;
}

export interface BatchRunRecord extends BatchRunSpec {
  id: number;
  workspaceId: number;
  status: BatchRunStatus;
  error: string | null;
  createdAt: string;
  finishedAt: string | null;
}

export interface BatchStatus {
  index: number;
  /** The completed edit of the batch, else its latest attempt, else null (never tried). */
  editId: number | null;
  status: EditStatus | 'pending';
  /** Attempts recorded for the batch (failed and cancelled ones included). */
  attempts: number;
}

/** After a batch: the requests edited so far, measured on the stack as it then stood. */
export interface CurvePoint {
  /** requests edited so far */
  edits: number;
  /** share of those requests whose prompt prefers the new target over the true one */
  efficacy: number;
  /** mean P(new) over them */
  pNew: number;
  /** the collapse watch's sentence-perplexity ratio against the base model (null without probes) */
  sentencePplRatio: number | null;
  /** largest ‖W + ΔW‖/‖W‖ over the edited layers */
  normGrowth: number | null;
}

export interface BatchRunPoint extends CurvePoint {
  batchIndex: number;
}

interface Row {
  id: number; workspace_id: number; method: string; requests_path: string; requests_sha256: string; request_count: number;
  batch_size: number; sequential: number; hparams_json: string; status: BatchRunStatus; error: string | null; created_at: string; finished_at: string | null;
}

function fromRow(r: Row): BatchRunRecord {
  return {
    id: r.id, workspaceId: r.workspace_id, method: r.method, requestsPath: r.requests_path, requestsSha256: r.requests_sha256,
    requestCount: r.request_count, batchSize: r.batch_size, sequential: r.sequential === 1, hparams: JSON.parse(r.hparams_json),
    status: r.status, error: r.error, createdAt: r.created_at, finishedAt: r.finished_at,
  };
}

/** JSON with object keys sorted, so equal settings written in another order still find their run. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_, v: unknown) => (v !== null && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    : v));
}

export function batchCount(run: Pick<BatchRunSpec, 'requestCount' | 'batchSize'>): number {
  return Math.ceil(run.requestCount / run.batchSize);
}

export function beginBatchRun(db: Database.Database, workspaceId: number, spec: BatchRunSpec): number {
  if (!Number.isInteger(spec.requestCount) || spec.requestCount < 1) throw new Error(`a batch run needs at least one request, got ${spec.requestCount}`);
  if (!Number.isInteger(spec.batchSize) || spec.batchSize < 1) throw new Error(`the batch size must be a positive integer, got ${spec.batchSize}`);
  return Number(db.prepare(`INSERT INTO batch_runs (workspace_id, method, requests_path, requests_sha256, request_count, batch_size, sequential, hparams_json, status, owner_pid)
                            VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?)`)
    .run(workspaceId, spec.method, spec.requestsPath, spec.requestsSha256, spec.requestCount, spec.batchSize, spec.sequential ? 1 : 0, canonicalJson(spec.hparams), process.pid).lastInsertRowid);
}

export function getBatchRun(db: Database.Database, id: number): BatchRunRecord {
  const r = db.prepare('SELECT * FROM batch_runs WHERE id = ?').get(id) as Row | undefined;
  if (!r) throw new Error(`batch run ${id} is not in the history`);
  return fromRow(r);
}

/** The latest unfinished run of this file with these settings in the workspace, or null. */
export function resumableBatchRun(db: Database.Database, workspaceId: number, spec: Omit<BatchRunSpec, 'requestsPath' | 'requestCount'>): BatchRunRecord | null {
  const r = db.prepare(`SELECT * FROM batch_runs WHERE workspace_id = ? AND requests_sha256 = ? AND method = ? AND batch_size = ? AND sequential = ?
                        AND hparams_json = ? AND status <> 'done' ORDER BY id DESC LIMIT 1`)
    .get(workspaceId, spec.requestsSha256, spec.method, spec.batchSize, spec.sequential ? 1 : 0, canonicalJson(spec.hparams)) as Row | undefined;
  return r ? fromRow(r) : null;
}

/** A failed or cancelled run taken up again (by the process that now works on it). */
export function resumeBatchRun(db: Database.Database, id: number): void {
  const changed = db.prepare("UPDATE batch_runs SET status = 'running', error = NULL, finished_at = NULL, owner_pid = ? WHERE id = ? AND status <> 'done'").run(process.pid, id).changes;
  if (changed !== 1) throw new Error(`batch run ${id} is finished or not in the history; nothing to resume`);
}

/** Batch indices of the run that have a completed edit, ascending: the batches a resume skips. */
export function doneBatchIndices(db: Database.Database, runId: number): number[] {
  return (db.prepare("SELECT batch_index FROM edits WHERE batch_run_id = ? AND status = 'done' ORDER BY batch_index").all(runId) as { batch_index: number }[])
    .map((r) => r.batch_index);
}

/** Marks the run done; refused while any of its batches lacks a completed edit. */
export function finishBatchRun(db: Database.Database, id: number): void {
  db.transaction(() => {
    const run = getBatchRun(db, id);
    const done = new Set(doneBatchIndices(db, id));
    const missing = Array.from({ length: batchCount(run) }, (_, i) => i).filter((i) => !done.has(i));
    if (missing.length > 0) throw new Error(`batch run ${id} cannot be marked done: batch${missing.length > 1 ? 'es' : ''} ${missing.join(', ')} ${missing.length > 1 ? 'have' : 'has'} no completed edit`);
    db.prepare("UPDATE batch_runs SET status = 'done', error = NULL, finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?").run(id);
  })();
}

export function failBatchRun(db: Database.Database, id: number, status: 'failed' | 'cancelled', error: string): void {
  db.prepare("UPDATE batch_runs SET status = ?, error = ?, finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ? AND status = 'running'").run(status, error, id);
}

/** Each batch's state: its completed edit if it has one, else its latest attempt, else pending. */
export function batchStatuses(db: Database.Database, run: BatchRunRecord): BatchStatus[] {
  const attempts = db.prepare('SELECT id, batch_index, status FROM edits WHERE batch_run_id = ? ORDER BY id').all(run.id) as { id: number; batch_index: number; status: EditStatus }[];
  return Array.from({ length: batchCount(run) }, (_, index) => {
    const mine = attempts.filter((a) => a.batch_index === index);
    const chosen = mine.find((a) => a.status === 'done') ?? mine.at(-1);
    return { index, editId: chosen?.id ?? null, status: chosen?.status ?? 'pending', attempts: mine.length };
  });
}

export function listBatchRuns(db: Database.Database, workspaceId: number): (BatchRunRecord & { batches: BatchStatus[] })[] {
  return (db.prepare('SELECT * FROM batch_runs WHERE workspace_id = ? ORDER BY id').all(workspaceId) as Row[])
    .map(fromRow).map((run) => ({ ...run, batches: batchStatuses(db, run) }));
}

/** Keeps a batch's point; a batch has one, so a second for the same batch is refused. */
export function recordCurvePoint(db: Database.Database, runId: number, point: BatchRunPoint): void {
  db.prepare('INSERT INTO batch_run_points (run_id, batch_index, edits, efficacy, p_new, sentence_ppl_ratio, norm_growth) VALUES (?, ?, ?, ?, ?, ?, ?)')
    .run(runId, point.batchIndex, point.edits, point.efficacy, point.pNew, point.sentencePplRatio, point.normGrowth);
}

/** The run's curve so far, in batch order (batches measured by earlier attempts included). */
export function curvePoints(db: Database.Database, runId: number): BatchRunPoint[] {
  return (db.prepare('SELECT * FROM batch_run_points WHERE run_id = ? ORDER BY batch_index').all(runId) as {
    batch_index: number; edits: number; efficacy: number; p_new: number; sentence_ppl_ratio: number | null; norm_growth: number | null;
  }[]).map((r) => ({ batchIndex: r.batch_index, edits: r.edits, efficacy: r.efficacy, pNew: r.p_new, sentencePplRatio: r.sentence_ppl_ratio, normGrowth: r.norm_growth }));
}

/** Runs left 'running' by a process that no longer exists become 'failed', saying how to continue. Returns their ids. */
export function reapInterruptedBatchRuns(db: Database.Database): number[] {
  const running = db.prepare("SELECT id, owner_pid FROM batch_runs WHERE status = 'running'").all() as { id: number; owner_pid: number | null }[];
  const dead = running.filter((r) => r.owner_pid === null || (r.owner_pid !== process.pid && !processAlive(r.owner_pid)));
  const mark = db.prepare(`UPDATE batch_runs SET status = 'failed', error = ?, finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ? AND status = 'running'`);
  db.transaction(() => {
    for (const r of dead) {
      const run = getBatchRun(db, r.id);
      const done = doneBatchIndices(db, r.id).length;
      mark.run(`interrupted: the process running it ended after ${done} of ${batchCount(run)} batches; run the same file with the same settings again to continue`, r.id);
    }
  })();
  return dead.map((r) => r.id);
}
