// The history database: migrations (fresh, upgrade without loss, backup, newer version
// refused) and the repository (an edit is recorded with its exact factors, toggling, the
// warning when an edit others were computed on is disabled, overlays of the enabled stack).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

import Database from 'better-sqlite3';

import { tempDir } from '../testing/fixtures.ts';
import { openDatabase } from './database.ts';
import { rememberedSha256 } from './fileHashes.ts';
import { loadMigrations, migrate, schemaVersion } from './migrate.ts';
import {
  beginEdit, enabledOverlays, failEdit, finishEdit, getEdit, listEdits, moveEdit, setEnabled, upsertModel, workspaceFor,
} from './repository.ts';

const model = { path: '/models/m.gguf', sha256: 'a'.repeat(64), arch: 'llama', nLayer: 2, nEmbd: 4, nFf: 6, nVocab: 320, fileType: 'F32', sizeBytes: 1234 };

function recordEdit(db: Database.Database, workspaceId: number, seed: number) {
  const id = beginEdit(db, workspaceId, { method: 'rome', request: { prompt: '{} is', subject: 'x', targetNew: ' y' }, layers: [1], hparams: { vLr: 0.5 }, seed });
  const u = Float32Array.from({ length: 4 }, (_, i) => i + seed + 0.25);
  const v = Float32Array.from({ length: 6 }, (_, i) => -i / 7 + seed);
  finishEdit(db, id, { templates: ['{}', 'A. {}'], factors: [{ layer: 1, rank: 1, u, v }], timings: { value: 1.5 }, preflight: { denominator: 3 }, metrics: { efficacy: 1 }, adapterPath: '/a.gguf' });
  return { id, u, v };
}

describe('history database', () => {
  test('a new database gets the latest schema in WAL mode with foreign keys', () => {
    const file = path.join(tempDir(), 'graft.sqlite');
    const db = openDatabase(file);
    try {
      assert.equal(schemaVersion(db), loadMigrations().length);
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(db.pragma('foreign_keys', { simple: true }), 1);
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
      assert.throws(() => db.prepare('INSERT INTO workspaces (name, model_id) VALUES (?, ?)').run('w', 999), /FOREIGN KEY/);
    } finally {
      db.close();
    }
  });

  test('a database at migration 1 upgrades to the latest without loss, after a backup; a newer one is refused', () => {
    const dir = tempDir();
    const file = path.join(dir, 'graft.sqlite');
    const migrations = loadMigrations();
    // a further migration stands in for the future, so the upgrade path is exercised today
    const future = [...migrations, { version: migrations.length + 1, name: 'future', sql: 'ALTER TABLE edits ADD COLUMN future_note TEXT;' }];
    const old = new Database(file);
    migrate(old, file, { target: 1, migrations: future });
    // written as Graft at schema 1 wrote it (today's repository expects today's columns)
    const m = upsertModel(old, model);
    const ws = workspaceFor(old, 'w', m.id);
    const u = Float32Array.from({ length: 4 }, (_, i) => i + 1.25), v = Float32Array.from({ length: 6 }, (_, i) => -i / 7 + 1);
    const id = Number(old.prepare(`INSERT INTO edits (workspace_id, position, method, request_json, layers_json, hparams_json, templates_json, seed, status)
      VALUES (?, 1, 'rome', '{}', '[1]', '{}', '["{}","A. {}"]', 1, 'done')`).run(ws.id).lastInsertRowid);
    old.prepare('INSERT INTO edit_factors (edit_id, layer, rank, n_embd, n_ff, u, v) VALUES (?, 1, 1, 4, 6, ?, ?)').run(id, Buffer.from(u.buffer), Buffer.from(v.buffer));
    old.close();
    const db = new Database(file);
    try {
      assert.deepEqual(migrate(db, file, { migrations: future }), [...future.keys()].slice(1).map((i) => i + 1));
      assert.ok(fs.existsSync(`${file}.backup-v1`), 'a copy of the old database is kept');
      const e = getEdit(db, id);
      assert.deepEqual(Array.from(e.factors[0]!.u), Array.from(u));
      assert.deepEqual(Array.from(e.factors[0]!.v), Array.from(v));
      assert.deepEqual(e.templates, ['{}', 'A. {}']);
    } finally {
      db.close();
    }
    const newer = new Database(file);
    newer.pragma(`user_version = ${future.length + 5}`);
    newer.close();
    assert.throws(() => openDatabase(file), /written by a newer Graft \(schema \d+; this one knows up to \d+\)/);
  });

  test('edits keep their exact factors, toggle, warn about dependants, and give the stack as overlays', () => {
    const db = openDatabase(path.join(tempDir(), 'graft.sqlite'));
    try {
      const m = upsertModel(db, model);
      assert.equal(upsertModel(db, { ...model, path: '/moved/m.gguf' }).id, m.id, 'the same file under another path is the same model');
      const ws = workspaceFor(db, 'facts', m.id);
      assert.equal(workspaceFor(db, 'facts', m.id).id, ws.id);
      const other = upsertModel(db, { ...model, sha256: 'b'.repeat(64) });
      assert.throws(() => workspaceFor(db, 'facts', other.id), /workspace 'facts' belongs to another model/);
      const first = recordEdit(db, ws.id, 1);
      const second = recordEdit(db, ws.id, 2);
      const failed = beginEdit(db, ws.id, { method: 'rome', request: {}, layers: [0], hparams: {}, seed: 3 });
      failEdit(db, failed, 'cancelled', 'cancelled by the user');
      const edits = listEdits(db, ws.id);
      assert.deepEqual(edits.map((e) => [e.id, e.position, e.status, e.enabled]), [[first.id, 1, 'done', true], [second.id, 2, 'done', true], [failed, 3, 'cancelled', false]]);
      assert.deepEqual(edits[1]!.computedOn, [first.id], 'the second edit was computed on the first');
      assert.deepEqual(enabledOverlays(db, ws.id).map((o) => Array.from(o.u)), [Array.from(first.u), Array.from(second.u)]);
      assert.match(setEnabled(db, first.id, false).warning ?? '', new RegExp(`edit ${second.id} was computed with edit ${first.id} applied`));
      assert.deepEqual(enabledOverlays(db, ws.id).map((o) => Array.from(o.v)), [Array.from(second.v)]);
      assert.equal(setEnabled(db, first.id, true).warning, null);
      assert.throws(() => setEnabled(db, failed, true), /edit \d+ is cancelled/);
      assert.throws(() => finishEdit(db, first.id, { templates: [], factors: [], timings: null, preflight: null, metrics: null, adapterPath: null }), /UNIQUE|is not running/);
      assert.equal(getEdit(db, first.id).factors.length, 1, 'a refused second result leaves the first intact');
      assert.throws(() => getEdit(db, 999), /edit 999 is not in the history/);
    } finally {
      db.close();
    }
  });

  test('a file hash is remembered while the file is unchanged and recomputed after any write', async () => {
    const dir = tempDir();
    const db = openDatabase(path.join(dir, 'graft.sqlite'));
    const file = path.join(dir, 'model.gguf');
    fs.writeFileSync(file, 'one');
    try {
      const first = await rememberedSha256(db, file);
      assert.deepEqual(first, { sha256: createHash('sha256').update('one').digest('hex'), hashed: true });
      assert.deepEqual(await rememberedSha256(db, file), { ...first, hashed: false });
      // same size, mtime set back: ctime still moves, so the change is seen
      const { atime, mtime } = fs.statSync(file);
      fs.writeFileSync(file, 'two');
      fs.utimesSync(file, atime, mtime);
      assert.deepEqual(await rememberedSha256(db, file), { sha256: createHash('sha256').update('two').digest('hex'), hashed: true });
      fs.renameSync(file, `${file}.old`);
      fs.writeFileSync(file, 'two');
      assert.equal((await rememberedSha256(db, file)).hashed, true, 'a replaced file (new inode) is hashed again');
    } finally {
      db.close();
    }
  });

  test('an edit left running by a process that died is marked interrupted when the history is next opened', () => {
    const file = path.join(tempDir(), 'graft.sqlite');
    let db = openDatabase(file);
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    const ws = workspaceFor(db, 'w', upsertModel(db, model).id);
    const orphan = beginEdit(db, ws.id, { method: 'rome', request: {}, layers: [1], hparams: {}, seed: 0 });
    const mine = beginEdit(db, ws.id, { method: 'rome', request: {}, layers: [1], hparams: {}, seed: 1 });
    db.prepare('UPDATE edits SET owner_pid = ? WHERE id = ?').run(Number(dead), orphan);
    db.close();
    db = openDatabase(file);
    try {
      const byId = new Map(listEdits(db, ws.id).map((e) => [e.id, e]));
      assert.equal(byId.get(orphan)!.status, 'failed');
      assert.match(byId.get(orphan)!.error!, /^interrupted: /);
      assert.equal(byId.get(mine)!.status, 'running', 'an edit of a live process (this one) is left alone');
    } finally {
      db.close();
    }
  });

  test('reordering the stack renumbers positions and warns when an edit moves before one it was computed on', () => {
    const db = openDatabase(path.join(tempDir(), 'graft.sqlite'));
    try {
      const ws = workspaceFor(db, 'w', upsertModel(db, model).id);
      const [a, b, c] = [1, 2, 3].map((seed) => recordEdit(db, ws.id, seed).id) as [number, number, number];
      assert.deepEqual(moveEdit(db, a, 2), { order: [b, a, c], warning: `edit ${b} (computed on ${a}) now comes before an edit it was computed on` });
      assert.deepEqual(listEdits(db, ws.id).map((e) => [e.id, e.position]), [[b, 1], [a, 2], [c, 3]]);
      assert.deepEqual(moveEdit(db, a, 1), { order: [a, b, c], warning: null });
      assert.throws(() => moveEdit(db, a, 4), /position 4 is outside the stack \(1 to 3\)/);
      assert.throws(() => moveEdit(db, 99, 1), /edit 99 is not in the history/);
    } finally {
      db.close();
    }
  });
});
