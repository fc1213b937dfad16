// `graft history`, `graft show`, `graft toggle`, `graft move` and `graft merge`: the recorded
// edits, one edit in full, and changing a workspace's stack (on/off, order, merged into one).
import { mergeEdits } from '../../core/export/mergeEdits.ts';
import { defaultDatabasePath, openDatabase } from '../../core/store/database.ts';
import { getEdit, getModel, listEdits, listWorkspaces, moveEdit, setEnabled, statisticsOf } from '../../core/store/repository.ts';
import { probeRunsOfEdit } from '../../core/store/probeRuns.ts';
import { integerOption, parseCommandArgs } from '../args.ts';
import { UsageError } from '../errors.ts';

export const historyUsage = 'graft history [--db F] [--workspace W] [--json]';
export const showUsage = 'graft show EDIT [--db F] [--json]';
export const toggleUsage = 'graft toggle EDIT on|off [--db F]';
export const moveUsage = 'graft move EDIT POSITION [--db F]';
export const mergeUsage = 'graft merge [--workspace W] [--rank R | --tolerance T] [--edits ID,ID,…] [--db F] [--json]';

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

// one request, a batch of them, or a merge of other edits
function requestSummary(request: unknown): string {
  if (Array.isArray(request)) return `${request.length} request${request.length === 1 ? '' : 's'}`;
  const r = (request ?? {}) as { prompt?: string; subject?: string; targetNew?: string; merged?: number[] };
  if (Array.isArray(r.merged)) return `merge of edits ${r.merged.join(', ')}`;
  return `${(r.prompt ?? '').replace('{}', r.subject ?? '')} →${r.targetNew ?? ''}`;
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
        lines.push(`  ${String(e.id).padStart(4)} ${e.enabled ? 'on ' : 'off'} ${e.status.padEnd(9)} ${e.method} L${e.layers.join(',')}  ` +
          `${requestSummary(e.request)}${e.verdict ? `  [${e.verdict}]` : ''}${e.error ? `  (${e.error})` : ''}`);
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

function workspaceNamed(db: ReturnType<typeof openDatabase>, name: string | undefined): { id: number; name: string } {
  const all = listWorkspaces(db);
  if (name !== undefined) {
    const found = all.find((w) => w.name === name);
    if (!found) throw new Error(`there is no workspace '${name}'`);
    return found;
  }
  if (all.length === 1) return all[0]!;
  throw new UsageError(`${all.length === 0 ? 'there are no workspaces yet' : `say which workspace with --workspace (${all.map((w) => w.name).join(', ')})`}\nusage: ${mergeUsage}`);
}

function toleranceOption(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const t = Number(value);
  if (value.trim() === '' || !(t >= 0 && t < 1)) throw new UsageError(`--tolerance is the relative Frobenius error allowed, in [0, 1), got '${value}'`);
  return t;
}

export async function runMerge(argv: string[]): Promise<void> {
  const { values, positionals } = parseCommandArgs(argv, {
    db: { type: 'string' }, workspace: { type: 'string' }, rank: { type: 'string' }, tolerance: { type: 'string' }, edits: { type: 'string' }, json: { type: 'boolean', default: false },
  }, mergeUsage);
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'\nusage: ${mergeUsage}`);
  if (values.rank !== undefined && values.tolerance !== undefined) throw new UsageError(`give --rank or --tolerance, not both\nusage: ${mergeUsage}`);
  const rank = values.rank === undefined ? undefined : integerOption(values.rank, '--rank');
  if (rank !== undefined && rank < 1) throw new UsageError(`--rank must be at least 1, got ${rank}`);
  const tolerance = toleranceOption(values.tolerance);
  const editIds = values.edits === undefined ? undefined : values.edits.split(',').map((x) => editId(x.trim(), mergeUsage));
  withDb(values.db, (db) => {
    const workspace = workspaceNamed(db, values.workspace);
    const result = mergeEdits(db, workspace.id, { ...(rank !== undefined ? { rank } : {}), ...(tolerance !== undefined ? { tolerance } : {}), ...(editIds ? { editIds } : {}) });
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ workspace: workspace.name, ...result })}\n`);
      return;
    }
    const merged = result.merged.join(', ');
    process.stdout.write([
      `edit ${result.editId} merges edit${result.merged.length > 1 ? 's' : ''} ${merged} of '${workspace.name}' (now off; to undo: graft toggle ${result.editId} off, then toggle ${merged} on)`,
      ...result.layers.map((l) => `  L${l.layer}: rank ${l.rankBefore} → ${l.rankAfter}, relative error ${l.relativeError.toExponential(3)}`),
    ].join('\n') + '\n');
  });
}
