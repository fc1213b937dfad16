// Probe runs in the history: what the collapse watch measured on which enabled-edit set, the
// verdict with its numbers and thresholds, and the base model's baseline per configuration.
import type Database from 'better-sqlite3';

export type Verdict = 'ok' | 'degraded' | 'collapsed';

export interface ProbeRunRecord {
  id: number;
  modelId: number;
  workspaceId: number | null;
  editId: number | null;
  editSet: number[];
  configSha256: string;
  config: unknown;
  results: unknown;
  verdict: Verdict | null;
  judgement: unknown;
  autoDisabled: boolean;
  seconds: number | null;
  createdAt: string;
}

interface Row {
  id: number; model_id: number; workspace_id: number | null; edit_id: number | null; edit_set: string; config_sha256: string; config_json: string;
  results_json: string; verdict: Verdict | null; verdict_json: string | null; auto_disabled: number; seconds: number | null; created_at: string;
}

function fromRow(r: Row): ProbeRunRecord {
  return {
    id: r.id, modelId: r.model_id, workspaceId: r.workspace_id, editId: r.edit_id, editSet: JSON.parse(r.edit_set) as number[],
    configSha256: r.config_sha256, config: JSON.parse(r.config_json), results: JSON.parse(r.results_json), verdict: r.verdict,
    judgement: r.verdict_json === null ? null : JSON.parse(r.verdict_json), autoDisabled: r.auto_disabled === 1, seconds: r.seconds, createdAt: r.created_at,
  };
}

export function recordProbeRun(db: Database.Database, run: Omit<ProbeRunRecord, 'id' | 'createdAt' | 'autoDisabled'>): number {
  return Number(db.prepare(`INSERT INTO probe_runs (model_id, workspace_id, edit_id, edit_set, config_sha256, config_json, results_json, verdict, verdict_json, seconds)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
    run.modelId, run.workspaceId, run.editId, JSON.stringify(run.editSet), run.configSha256, JSON.stringify(run.config), JSON.stringify(run.results),
    run.verdict, run.judgement === null ? null : JSON.stringify(run.judgement), run.seconds,
  ).lastInsertRowid);
}

/** The base model's run for this configuration, if one was measured. */
export function baselineRun(db: Database.Database, modelId: number, configSha256: string): ProbeRunRecord | null {
  const r = db.prepare("SELECT * FROM probe_runs WHERE model_id = ? AND config_sha256 = ? AND edit_set = '[]' ORDER BY id LIMIT 1").get(modelId, configSha256) as Row | undefined;
  return r ? fromRow(r) : null;
}

export function probeRunsOfEdit(db: Database.Database, editId: number): ProbeRunRecord[] {
  return (db.prepare('SELECT * FROM probe_runs WHERE edit_id = ? ORDER BY id').all(editId) as Row[]).map(fromRow);
}

export function probeRunsOfWorkspace(db: Database.Database, workspaceId: number): ProbeRunRecord[] {
  return (db.prepare('SELECT * FROM probe_runs WHERE workspace_id = ? ORDER BY id').all(workspaceId) as Row[]).map(fromRow);
}

/** A collapsed edit switched off by the watch, in the same transaction that says so. */
export function markAutoDisabled(db: Database.Database, runId: number, editId: number): void {
  db.transaction(() => {
    db.prepare('UPDATE edits SET enabled = 0 WHERE id = ?').run(editId);
    db.prepare('UPDATE probe_runs SET auto_disabled = 1 WHERE id = ?').run(runId);
  })();
}
