// `graft history`, `graft show` and `graft toggle`: the recorded edits, one edit in full, and
// switching an edit on or off in its workspace's stack.
import { defaultDatabasePath, openDatabase } from '../../core/store/database.ts';
import { getEdit, getModel, listEdits, listWorkspaces, moveEdit, setEnabled, statisticsOf } from '../../core/store/repository.ts';
import { probeRunsOfEdit } from '../../core/store/probeRuns.ts';
import { integerOption, parseCommandArgs } from '../args.ts';
import { UsageError } from '../errors.ts';

export const historyUsage = 'graft history [--db F] [--workspace W] [--json]';
export const showUsage = 'graft show EDIT [--db F] [--json]';
export const toggleUsage = 'graft toggle EDIT on|off [--db F]';
export const moveUsage = 'graft move EDIT POSITION [--db F]';

function withDb<T>(file: string | undefined, fn: (db: ReturnType<typeof openDatabase>) => T): T {
  const db = openDatabase(file ?? defaultDatabasePath());
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

function editId(value: string | undefined, usage: string): number {
  if (value === undefined) throw new UsageError(`give the edit's id\nusage: ${usage}`);
  const id = integerOption(value, 'EDIT');
  if (id <= 0) throw new UsageError(`EDIT must be a positive edit id, got ${id}`);
  return id;
}

export async function runHistory(argv: string[]): Promise<void> {
  const { values, positionals } = parseCommandArgs(argv, { db: { type: 'string' }, workspace: { type: 'string' }, json: { type: 'boolean', default: false } }, historyUsage);
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'\nusage: ${historyUsage}`);
  withDb(values.db, (db) => {
    const workspaces = listWorkspaces(db).filter((w) => values.workspace === undefined || w.name === values.workspace);
    if (values.workspace !== undefined && workspaces.length === 0) throw new Error(`there is no workspace '${values.workspace}'`);
    const out = workspaces.map((w) => ({
      workspace: w.name, model: getModel(db, w.modelId),
      edits: listEdits(db, w.id).map((e) => ({
        id: e.id, position: e.position, method: e.method, status: e.status, enabled: e.enabled, layers: e.layers,
        request: e.request, createdAt: e.createdAt, error: e.error, adapter: e.adapterPath,
        verdict: probeRunsOfEdit(db, e.id).at(-1)?.verdict ?? null,
      })),
    }));
    if (values.json) {
      process.stdout.write(`${JSON.stringify(out)}\n`);
      return;
    }
    const lines: string[] = [];
    for (const w of out) {
      lines.push(`workspace '${w.workspace}' on ${w.model.path} (sha256 ${w.model.sha256.slice(0, 12)}…)`);
      for (const e of w.edits) {
        const r = e.request as { prompt?: string; subject?: string; targetNew?: string };
        lines.push(`  ${String(e.id).padStart(4)} ${e.enabled ? 'on ' : 'off'} ${e.status.padEnd(9)} ${e.method} L${e.layers.join(',')}  ` +
          `${(r.prompt ?? '').replace('{}', r.subject ?? '')} →${r.targetNew ?? ''}${e.verdict ? `  [${e.verdict}]` : ''}${e.error ? `  (${e.error})` : ''}`);
      }
    }
    process.stdout.write(`${lines.length ? lines.join('\n') : 'no edits recorded yet'}\n`);
  });
}

export async function runShow(argv: string[]): Promise<void> {
  const { values, positionals } = parseCommandArgs(argv, { db: { type: 'string' }, json: { type: 'boolean', default: false } }, showUsage);
  const id = editId(positionals[0], showUsage);
  withDb(values.db, (db) => {
    const e = getEdit(db, id);
    const out = { ...e, statistics: statisticsOf(db, id), probeRuns: probeRunsOfEdit(db, id), factors: e.factors.map((f) => ({ layer: f.layer, rank: f.rank, u: Array.from(f.u), v: Array.from(f.v) })) };
    process.stdout.write(values.json ? `${JSON.stringify(out)}\n` : `${JSON.stringify(out, (k, v) => (k === 'u' || k === 'v' ? `[${(v as number[]).length} values]` : v), 2)}\n`);
  });
}

export async function runToggle(argv: string[]): Promise<void> {
  const { values, positionals } = parseCommandArgs(argv, { db: { type: 'string' } }, toggleUsage);
  const id = editId(positionals[0], toggleUsage);
  const state = positionals[1];
  if (state !== 'on' && state !== 'off') throw new UsageError(`say on or off, got '${state ?? ''}'\nusage: ${toggleUsage}`);
  withDb(values.db, (db) => {
    const { warning } = setEnabled(db, id, state === 'on');
    process.stdout.write(`edit ${id} is ${state}\n`);
    if (warning) process.stderr.write(`warning: ${warning}\n`);
  });
}

export async function runMove(argv: string[]): Promise<void> {
  const { values, positionals } = parseCommandArgs(argv, { db: { type: 'string' } }, moveUsage);
  const id = editId(positionals[0], moveUsage);
  if (positionals[1] === undefined) throw new UsageError(`give the new position (1 = first)\nusage: ${moveUsage}`);
  const position = integerOption(positionals[1], 'POSITION');
  withDb(values.db, (db) => {
    const { order, warning } = moveEdit(db, id, position);
    process.stdout.write(`stack: ${order.join(', ')}\n`);
    if (warning) process.stderr.write(`warning: ${warning}\n`);
  });
}
