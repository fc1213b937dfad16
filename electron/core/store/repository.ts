// Graft's history (store/ is the only place with SQL): typed reads and writes, one transaction per
// logical change, so an edit is either recorded with all its factors or not at all.
import type Database from 'better-sqlite3';

import type { GraphOverlay } from '../native/graphTypes.ts';
import { processAlive } from './processAlive.ts';

export interface ModelRecord {
  id: number;
  path: string;
  sha256: string;
  arch: string;
  nLayer: number;
  nEmbd: number;
  nFf: number;
  nVocab: number;
  fileType: string | null;
  sizeBytes: number;
}

export interface WorkspaceRecord {
  id: number;
  name: string;
  modelId: number;
}

export type EditStatus = 'running' | 'done' | 'failed' | 'cancelled';

export interface EditFactors {
  layer: number;
  rank: number;
  /** rank × n_embd, vector by vector. */
  u: Float32Array;
  /** rank × n_ff, vector by vector. */
  v: Float32Array;
}

export interface EditRecord {
  id: number;
  workspaceId: number;
  position: number;
  method: string;
  request: unknown;
  layers: number[];
  hparams: unknown;
  templates: string[];
  seed: number;
  status: EditStatus;
  enabled: boolean;
  /** Ids of the edits that were enabled (applied) when this one was computed. */
  computedOn: number[];
  timings: unknown;
  preflight: unknown;
  metrics: unknown;
  error: string | null;
  adapterPath: string | null;
  createdAt: string;
  /** The batch run this edit is one batch of, or null for a single edit. */
  batchRunId: number | null;
  batchIndex: number | null;
  /** Indices into the run's request file of the requests this edit holds. */
  requestIndices: number[] | null;
}

interface EditRow {
  id: number; workspace_id: number; position: number; method: string; request_json: string; layers_json: string; hparams_json: string;
  templates_json: string; seed: number; status: EditStatus; enabled: number; computed_on: string; timings_json: string | null;
  preflight_json: string | null; metrics_json: string | null; error: string | null; adapter_path: string | null; created_at: string;
  batch_run_id: number | null; batch_index: number | null; request_indices_json: string | null;
}

const parse = (s: string | null): unknown => (s === null ? null : JSON.parse(s));

function toEdit(r: EditRow): EditRecord {
  return {
    id: r.id, workspaceId: r.workspace_id, position: r.position, method: r.method, request: parse(r.request_json),
    layers: JSON.parse(r.layers_json) as number[], hparams: parse(r.hparams_json), templates: JSON.parse(r.templates_json) as string[],
    seed: r.seed, status: r.status, enabled: r.enabled === 1, computedOn: JSON.parse(r.computed_on) as number[],
    timings: parse(r.timings_json), preflight: parse(r.preflight_json), metrics: parse(r.metrics_json), error: r.error,
    adapterPath: r.adapter_path, createdAt: r.created_at,
    batchRunId: r.batch_run_id, batchIndex: r.batch_index, requestIndices: parse(r.request_indices_json) as number[] | null,
  };
}

const blob = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const floats = (b: Buffer) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));

/** The model by content (sha256); its path is updated when the same file moved. */
export function upsertModel(db: Database.Database, m: Omit<ModelRecord, 'id'>): ModelRecord {
  db.prepare(`INSERT INTO models (path, sha256, arch, n_layer, n_embd, n_ff, n_vocab, file_type, size_bytes)
              VALUES (@path, @sha256, @arch, @nLayer, @nEmbd, @nFf, @nVocab, @fileType, @sizeBytes)
              ON CONFLICT (sha256) DO UPDATE SET path = excluded.path`).run(m);
  const row = db.prepare('SELECT id FROM models WHERE sha256 = ?').get(m.sha256) as { id: number };
  return { ...m, id: row.id };
}

function toModel(r: Record<string, unknown>): ModelRecord {
  return {
    id: r.id as number, path: r.path as string, sha256: r.sha256 as string, arch: r.arch as string, nLayer: r.n_layer as number,
    nEmbd: r.n_embd as number, nFf: r.n_ff as number, nVocab: r.n_vocab as number, fileType: r.file_type as string | null, sizeBytes: r.size_bytes as number,
  };
}

export function getModel(db: Database.Database, id: number): ModelRecord {
  const r = db.prepare('SELECT * FROM models WHERE id = ?').get(id) as Record<string, unknown> | undefined;
  if (!r) throw new Error(`model ${id} is not in the history`);
  return toModel(r);
}

/** Every model ever imported or edited, oldest first. */
export function listModels(db: Database.Database): ModelRecord[] {
  return (db.prepare('SELECT * FROM models ORDER BY id').all() as Record<string, unknown>[]).map(toModel);
}

/** The signature a file had when its sha256 was remembered, or null if it never was. */
export function rememberedSignature(db: Database.Database, file: string): { signature: string; sha256: string } | null {
  return (db.prepare('SELECT signature, sha256 FROM file_hashes WHERE path = ?').get(file) as { signature: string; sha256: string } | undefined) ?? null;
}

/** The named workspace, created on first use; a name belongs to one base model. */
export function workspaceFor(db: Database.Database, name: string, modelId: number): WorkspaceRecord {
  if (name.trim() === '') throw new Error('the workspace name is empty');
  return db.transaction(() => {
    const found = db.prepare('SELECT id, name, model_id FROM workspaces WHERE name = ?').get(name) as { id: number; name: string; model_id: number } | undefined;
    if (found) {
      if (found.model_id !== modelId) {
        const other = getModel(db, found.model_id);
        throw new Error(`workspace '${name}' belongs to another model (${other.path}, sha256 ${other.sha256.slice(0, 12)}…); choose another --workspace`);
      }
      return { id: found.id, name: found.name, modelId };
    }
    const id = Number(db.prepare('INSERT INTO workspaces (name, model_id) VALUES (?, ?)').run(name, modelId).lastInsertRowid);
    return { id, name, modelId };
  })();
}

export function listWorkspaces(db: Database.Database): (WorkspaceRecord & { edits: number })[] {
  return (db.prepare(`SELECT w.id, w.name, w.model_id, (SELECT count(*) FROM edits e WHERE e.workspace_id = w.id) AS edits
                      FROM workspaces w ORDER BY w.id`).all() as { id: number; name: string; model_id: number; edits: number }[])
    .map((r) => ({ id: r.id, name: r.name, modelId: r.model_id, edits: r.edits }));
}

export interface NewEdit {
  method: string;
  request: unknown;
  layers: number[];
  hparams: unknown;
  seed: number;
  /** One batch of a batch run: the run, the batch's number and its requests' indices in the file. */
  batch?: { runId: number; index: number; requestIndices: number[] };
  /** The edits it is computed on, when not the enabled stack (a merge names the edits it replaces). */
  computedOn?: number[];
}

/** Records an edit about to be computed, on top of the workspace's enabled stack. */
export function beginEdit(db: Database.Database, workspaceId: number, e: NewEdit): number {
  return db.transaction(() => {
    const { next } = db.prepare('SELECT coalesce(max(position), 0) + 1 AS next FROM edits WHERE workspace_id = ?').get(workspaceId) as { next: number };
    const computedOn = e.computedOn
      ?? (db.prepare("SELECT id FROM edits WHERE workspace_id = ? AND enabled = 1 AND status = 'done' ORDER BY position").all(workspaceId) as { id: number }[]).map((r) => r.id);
    return Number(db.prepare(`INSERT INTO edits (workspace_id, position, method, request_json, layers_json, hparams_json, seed, status, computed_on, owner_pid,
                                                 batch_run_id, batch_index, request_indices_json)
                              VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)`)
      .run(workspaceId, next, e.method, JSON.stringify(e.request), JSON.stringify(e.layers), JSON.stringify(e.hparams), e.seed, JSON.stringify(computedOn), process.pid,
        e.batch?.runId ?? null, e.batch?.index ?? null, e.batch ? JSON.stringify(e.batch.requestIndices) : null).lastInsertRowid);
  })();
}

/** Stores the result and its factors in one transaction: afterwards the edit is complete. */
export function finishEdit(db: Database.Database, id: number, r: {
  templates: string[]; factors: EditFactors[]; timings: unknown; preflight: unknown; metrics: unknown; adapterPath: string | null;
}): void {
  db.transaction(() => {
    const insert = db.prepare('INSERT INTO edit_factors (edit_id, layer, rank, n_embd, n_ff, u, v) VALUES (?, ?, ?, ?, ?, ?, ?)');
    for (const f of r.factors) insert.run(id, f.layer, f.rank, f.u.length / f.rank, f.v.length / f.rank, blob(f.u), blob(f.v));
    const changed = db.prepare(`UPDATE edits SET status = 'done', templates_json = ?, timings_json = ?, preflight_json = ?, metrics_json = ?, adapter_path = ?
                                WHERE id = ? AND status = 'running'`)
      .run(JSON.stringify(r.templates), JSON.stringify(r.timings), JSON.stringify(r.preflight), JSON.stringify(r.metrics), r.adapterPath, id).changes;
    if (changed !== 1) throw new Error(`edit ${id} is not running; its result was not recorded`);
  })();
}

export function failEdit(db: Database.Database, id: number, status: 'failed' | 'cancelled', error: string): void {
  db.prepare("UPDATE edits SET status = ?, error = ?, enabled = 0 WHERE id = ? AND status = 'running'").run(status, error, id);
}

/** Edits left 'running' by a process that no longer exists become 'failed', saying why. Returns their ids. */
export function reapInterruptedEdits(db: Database.Database): number[] {
  const running = db.prepare("SELECT id, owner_pid FROM edits WHERE status = 'running'").all() as { id: number; owner_pid: number | null }[];
  const dead = running.filter((r) => r.owner_pid === null || (r.owner_pid !== process.pid && !processAlive(r.owner_pid)));
  const mark = db.prepare("UPDATE edits SET status = 'failed', enabled = 0, error = ? WHERE id = ? AND status = 'running'");
  db.transaction(() => {
    for (const r of dead) mark.run('interrupted: the process computing this edit ended before it finished (nothing of it was saved); run the edit again', r.id);
  })();
  return dead.map((r) => r.id);
}

export function listEdits(db: Database.Database, workspaceId?: number): EditRecord[] {
  const rows = (workspaceId === undefined
    ? db.prepare('SELECT * FROM edits ORDER BY workspace_id, position').all()
    : db.prepare('SELECT * FROM edits WHERE workspace_id = ? ORDER BY position').all(workspaceId)) as EditRow[];
  return rows.map(toEdit);
}

export function getEdit(db: Database.Database, id: number): EditRecord & { factors: EditFactors[] } {
  const row = db.prepare('SELECT * FROM edits WHERE id = ?').get(id) as EditRow | undefined;
  if (!row) throw new Error(`edit ${id} is not in the history`);
  const factors = (db.prepare('SELECT layer, rank, u, v FROM edit_factors WHERE edit_id = ? ORDER BY layer').all(id) as { layer: number; rank: number; u: Buffer; v: Buffer }[])
    .map((f) => ({ layer: f.layer, rank: f.rank, u: floats(f.u), v: floats(f.v) }));
  return { ...toEdit(row), factors };
}

/**
 * Enables or disables an edit. Disabling one that later enabled edits were computed on is
 * allowed (they keep their factors) but returns a warning naming them.
 */
export function setEnabled(db: Database.Database, id: number, enabled: boolean): { warning: string | null } {
  return db.transaction(() => {
    const edit = getEdit(db, id);
    if (edit.status !== 'done') throw new Error(`edit ${id} is ${edit.status}; only completed edits can be switched on or off`);
    db.prepare('UPDATE edits SET enabled = ? WHERE id = ?').run(enabled ? 1 : 0, id);
    if (enabled) return { warning: null };
    const dependants = listEdits(db, edit.workspaceId).filter((e) => e.enabled && e.computedOn.includes(id)).map((e) => e.id);
    return {
      warning: dependants.length === 0 ? null
        : `edit${dependants.length > 1 ? 's' : ''} ${dependants.join(', ')} ${dependants.length > 1 ? 'were' : 'was'} computed with edit ${id} applied; without it they may not do what they measured`,
    };
  })();
}

/** The workspace's effective edits, as overlays for the own graph. */
/**
 * Moves an edit to `position` (1-based) in its workspace's stack. ΔW is a sum, so the effective
 * model does not change, but an edit now placed before one it was computed on gets a warning:
 * the stack no longer reads in the order the edits were made.
 */
export function moveEdit(db: Database.Database, id: number, position: number): { order: number[]; warning: string | null } {
  return db.transaction(() => {
    const edit = getEdit(db, id);
    const order = listEdits(db, edit.workspaceId).map((e) => e.id).filter((e) => e !== id);
    if (!Number.isInteger(position) || position < 1 || position > order.length + 1) {
      throw new Error(`position ${position} is outside the stack (1 to ${order.length + 1})`);
    }
    order.splice(position - 1, 0, id);
    // two passes: positions are unique per workspace
    const set = db.prepare('UPDATE edits SET position = ? WHERE id = ?');
    order.forEach((e, i) => set.run(-(i + 1), e));
    order.forEach((e, i) => set.run(i + 1, e));
    const at = new Map(order.map((e, i) => [e, i]));
    const inverted = listEdits(db, edit.workspaceId).flatMap((e) => e.computedOn.filter((d) => (at.get(d) ?? -1) > at.get(e.id)!).map((d) => `${e.id} (computed on ${d})`));
    return { order, warning: inverted.length ? `edit ${inverted.join(', ')} now comes before an edit it was computed on` : null };
  })();
}

export function enabledOverlays(db: Database.Database, workspaceId: number): GraphOverlay[] {
  return listEdits(db, workspaceId)
    .filter((e) => e.enabled && e.status === 'done')
    .flatMap((e) => getEdit(db, e.id).factors.map((f) => ({ layer: f.layer, rank: f.rank, u: f.u, v: f.v })));
}

/** Links an edit to the second-moment file it used (recorded once per key). */
export function recordStatistics(db: Database.Database, editId: number, modelId: number, s: { file: string; layer: number; corpusSha256: string; tokenCount: number; contextSize: number }): void {
  db.transaction(() => {
    db.prepare(`INSERT INTO statistics_files (model_id, layer, corpus_sha256, token_count, context_size, path) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (model_id, layer, corpus_sha256, token_count, context_size) DO UPDATE SET path = excluded.path`)
      .run(modelId, s.layer, s.corpusSha256, s.tokenCount, s.contextSize, s.file);
    const { id } = db.prepare('SELECT id FROM statistics_files WHERE model_id = ? AND layer = ? AND corpus_sha256 = ? AND token_count = ? AND context_size = ?')
      .get(modelId, s.layer, s.corpusSha256, s.tokenCount, s.contextSize) as { id: number };
    db.prepare('INSERT OR IGNORE INTO edit_statistics (edit_id, statistics_id) VALUES (?, ?)').run(editId, id);
  })();
}

export function statisticsOf(db: Database.Database, editId: number): { path: string; layer: number; corpusSha256: string; tokenCount: number; contextSize: number }[] {
  return (db.prepare(`SELECT s.path, s.layer, s.corpus_sha256, s.token_count, s.context_size FROM statistics_files s
                      JOIN edit_statistics e ON e.statistics_id = s.id WHERE e.edit_id = ? ORDER BY s.layer`).all(editId) as
    { path: string; layer: number; corpus_sha256: string; token_count: number; context_size: number }[])
    .map((r) => ({ path: r.path, layer: r.layer, corpusSha256: r.corpus_sha256, tokenCount: r.token_count, contextSize: r.context_size }));
}

export interface ExportRecord {
  id: number;
  workspaceId: number;
  kind: 'lora' | 'gguf' | 'log' | 'card';
  path: string;
  sha256: string;
  verification: { verified: boolean } | null;
  editIds: number[];
  createdAt: string;
}

/** An export and the edits it contains, in one transaction. */
export function recordExport(db: Database.Database, e: Omit<ExportRecord, 'id' | 'createdAt'>): number {
  return db.transaction(() => {
    const id = Number(db.prepare('INSERT INTO exports (workspace_id, kind, path, sha256, verified, verification_json) VALUES (?, ?, ?, ?, ?, ?)')
      .run(e.workspaceId, e.kind, e.path, e.sha256, e.verification ? (e.verification.verified ? 1 : 0) : null, e.verification ? JSON.stringify(e.verification) : null).lastInsertRowid);
    const link = db.prepare('INSERT INTO export_edits (export_id, edit_id) VALUES (?, ?)');
    for (const editId of e.editIds) link.run(id, editId);
    return id;
  })();
}

export function listExports(db: Database.Database, workspaceId: number): ExportRecord[] {
  const rows = db.prepare('SELECT * FROM exports WHERE workspace_id = ? ORDER BY id').all(workspaceId) as
    { id: number; workspace_id: number; kind: ExportRecord['kind']; path: string; sha256: string; verification_json: string | null; created_at: string }[];
  const editsOf = db.prepare('SELECT edit_id FROM export_edits WHERE export_id = ? ORDER BY edit_id');
  return rows.map((r) => ({
    id: r.id, workspaceId: r.workspace_id, kind: r.kind, path: r.path, sha256: r.sha256,
    verification: r.verification_json === null ? null : JSON.parse(r.verification_json) as { verified: boolean },
    editIds: (editsOf.all(r.id) as { edit_id: number }[]).map((x) => x.edit_id),
    createdAt: r.created_at,
  }));
}

export function rememberedHash(db: Database.Database, file: string, signature: string): string | null {
  const row = db.prepare('SELECT sha256 FROM file_hashes WHERE path = ? AND signature = ?').get(file, signature) as { sha256: string } | undefined;
  return row?.sha256 ?? null;
}

export function rememberHash(db: Database.Database, file: string, signature: string, sha256: string): void {
  db.prepare(`INSERT INTO file_hashes (path, signature, sha256) VALUES (?, ?, ?)
    ON CONFLICT (path) DO UPDATE SET signature = excluded.signature, sha256 = excluded.sha256, hashed_at = excluded.hashed_at`).run(file, signature, sha256);
}

/** A value kept about this data folder (app_state), or null when it was never set. */
export function appState<T>(db: Database.Database, key: string): T | null {
  const row = db.prepare('SELECT value_json FROM app_state WHERE key = ?').get(key) as { value_json: string } | undefined;
  return row ? JSON.parse(row.value_json) as T : null;
}

export function setAppState(db: Database.Database, key: string, value: unknown): void {
  db.prepare(`INSERT INTO app_state (key, value_json) VALUES (?, ?)
    ON CONFLICT (key) DO UPDATE SET value_json = excluded.value_json, updated_at = excluded.updated_at`).run(key, JSON.stringify(value));
}

/** The shipped demo model as it was offered to this data folder: its sha256 identifies its row. */
export interface OfferedDemoModel {
  sha256: string;
  path: string;
}

export function offeredDemoModel(db: Database.Database): OfferedDemoModel | null {
  return appState<OfferedDemoModel>(db, 'demoModel.offered');
}

export function rememberDemoModelOffered(db: Database.Database, offered: OfferedDemoModel): void {
  setAppState(db, 'demoModel.offered', offered);
}
