// Batch runs and edit keys in the history: a run is found again by its file and settings, a
// resume skips exactly the batches with a completed edit, a batch cannot be completed twice, and
// the keys AlphaEdit protects follow the enabled stack in order. A run's curve keeps one point per
// batch across attempts and goes with the run.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';

import type Database from 'better-sqlite3';

import { tempDir } from '../testing/fixtures.ts';
import {
  batchStatuses, beginBatchRun, canonicalJson, curvePoints, doneBatchIndices, failBatchRun, finishBatchRun, getBatchRun, listBatchRuns, recordCurvePoint,
  resumableBatchRun, resumeBatchRun,
} from './batchRuns.ts';
import { openDatabase } from './database.ts';
import { preservedKeys, recordEditKeys } from './editKeys.ts';
import { beginEdit, failEdit, finishEdit, getEdit, moveEdit, setEnabled, upsertModel, workspaceFor } from './repository.ts';

const model = { path: '/models/m.gguf', sha256: 'a'.repeat(64), arch: 'llama', nLayer: 2, nEmbd: 4, nFf: 6, nVocab: 320, fileType: 'F32', sizeBytes: 1234 };
const spec = { method: 'memit', requestsPath: '/r/facts.jsonl', requestsSha256: 'f'.repeat(64), requestCount: 5, batchSize: 2, sequential: true, hparams: { layers: [1], lambda: 1e4 } };

function setup() {
  const db = openDatabase(path.join(tempDir(), 'graft.sqlite'));
  const ws = workspaceFor(db, 'w', upsertModel(db, model).id);
  return { db, ws };
}

function doneEdit(db: Database.Database, workspaceId: number, batch?: { runId: number; index: number; requestIndices: number[] }): number {
  const id = beginEdit(db, workspaceId, { method: 'memit', request: [], layers: [1], hparams: {}, seed: 0, ...(batch ? { batch } : {}) });
  finishEdit(db, id, { templates: [], factors: [{ layer: 1, rank: 1, u: new Float32Array(4).fill(1), v: new Float32Array(6).fill(1) }], timings: null, preflight: null, metrics: null, adapterPath: null });
  return id;
}

describe('batch runs', () => {
  test('an unfinished run is found by file and settings (key order aside) and resumed past its completed batches', () => {
    const { db, ws } = setup();
    try {
      const run = beginBatchRun(db, ws.id, spec);
      assert.deepEqual(getBatchRun(db, run).hparams, spec.hparams);
      const first = doneEdit(db, ws.id, { runId: run, index: 0, requestIndices: [0, 1] });
      const crashed = beginEdit(db, ws.id, { method: 'memit', request: [], layers: [1], hparams: {}, seed: 0, batch: { runId: run, index: 1, requestIndices: [2, 3] } });
      failEdit(db, crashed, 'failed', 'out of memory');
      failBatchRun(db, run, 'failed', 'out of memory');
      assert.deepEqual(getEdit(db, first).requestIndices, [0, 1]);
      assert.equal(getEdit(db, first).batchRunId, run);
      assert.equal(getEdit(db, crashed).batchIndex, 1);

      const found = resumableBatchRun(db, ws.id, { ...spec, hparams: { lambda: 1e4, layers: [1] } });
      assert.equal(found?.id, run);
      assert.equal(found?.status, 'failed');
      for (const other of [{ batchSize: 3 }, { sequential: false }, { method: 'emmet' }, { hparams: { layers: [1], lambda: 1e3 } }, { requestsSha256: 'e'.repeat(64) }]) {
        assert.equal(resumableBatchRun(db, ws.id, { ...spec, ...other }), null, `a run with ${JSON.stringify(other)} is another run`);
      }
      assert.deepEqual(doneBatchIndices(db, run), [0]);
      assert.deepEqual(batchStatuses(db, getBatchRun(db, run)).map((b) => [b.index, b.status, b.attempts]), [[0, 'done', 1], [1, 'failed', 1], [2, 'pending', 0]]);
      assert.throws(() => finishBatchRun(db, run), /batches 1, 2 have no completed edit/);

      resumeBatchRun(db, run);
      assert.equal(getBatchRun(db, run).status, 'running');
      assert.equal(getBatchRun(db, run).error, null);
      const second = doneEdit(db, ws.id, { runId: run, index: 1, requestIndices: [2, 3] });
      assert.throws(() => doneEdit(db, ws.id, { runId: run, index: 1, requestIndices: [2, 3] }), /UNIQUE/, 'a batch is completed once');
      doneEdit(db, ws.id, { runId: run, index: 2, requestIndices: [4] });
      finishBatchRun(db, run);
      assert.equal(getBatchRun(db, run).status, 'done');
      assert.ok(getBatchRun(db, run).finishedAt);
      assert.equal(resumableBatchRun(db, ws.id, spec), null, 'a finished run is not resumed');
      assert.throws(() => resumeBatchRun(db, run), /is finished/);

      const [listed] = listBatchRuns(db, ws.id);
      // batch 1: the failed attempt, the completed one, and the refused duplicate left running
      assert.deepEqual(listed!.batches.map((b) => [b.status, b.attempts]), [['done', 1], ['done', 3], ['done', 1]]);
      assert.equal(listed!.batches[1]!.editId, second, 'the completed attempt, not the failed one, stands for the batch');
    } finally {
      db.close();
    }
  });

  test('a run left running by a process that died is marked interrupted when the history is next opened, and can be resumed', () => {
    const file = path.join(tempDir(), 'graft.sqlite');
    let db = openDatabase(file);
    const dead = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
    const ws = workspaceFor(db, 'w', upsertModel(db, model).id);
    const orphan = beginBatchRun(db, ws.id, spec);
    doneEdit(db, ws.id, { runId: orphan, index: 0, requestIndices: [0, 1] });
    const mine = beginBatchRun(db, ws.id, { ...spec, method: 'emmet' });
    db.prepare('UPDATE batch_runs SET owner_pid = ? WHERE id = ?').run(dead, orphan);
    db.close();
    db = openDatabase(file);
    try {
      assert.equal(getBatchRun(db, orphan).status, 'failed');
      assert.equal(getBatchRun(db, orphan).error, 'interrupted: the process running it ended after 1 of 3 batches; run the same file with the same settings again to continue');
      assert.equal(getBatchRun(db, mine).status, 'running', 'a run of a live process (this one) is left alone');
      assert.equal(resumableBatchRun(db, ws.id, spec)?.id, orphan);
      resumeBatchRun(db, orphan);
      db.close();
      db = openDatabase(file);
      assert.equal(getBatchRun(db, orphan).status, 'running', 'the resuming process owns the run now');
    } finally {
      db.close();
    }
  });

  test('curve points are kept per batch across a resume, once each, in batch order, and go with the run', () => {
    const { db, ws } = setup();
    try {
      const run = beginBatchRun(db, ws.id, spec);
      const other = beginBatchRun(db, ws.id, { ...spec, method: 'emmet' });
      assert.deepEqual(curvePoints(db, run), [], 'a new run has no curve');
      recordCurvePoint(db, run, { batchIndex: 0, edits: 2, efficacy: 1, pNew: 0.75, sentencePplRatio: 1.05, normGrowth: 1.01 });
      failBatchRun(db, run, 'cancelled', 'cancelled');
      // the resumed attempt adds the batches after the cancel, finishing out of order
      resumeBatchRun(db, run);
      recordCurvePoint(db, run, { batchIndex: 2, edits: 5, efficacy: 0.6, pNew: 0.4, sentencePplRatio: null, normGrowth: null });
      recordCurvePoint(db, run, { batchIndex: 1, edits: 4, efficacy: 0.75, pNew: 0.5, sentencePplRatio: 1.2, normGrowth: 1.1 });
      assert.throws(() => recordCurvePoint(db, run, { batchIndex: 1, edits: 4, efficacy: 0, pNew: 0, sentencePplRatio: null, normGrowth: null }), /UNIQUE|PRIMARY KEY/,
        'a batch has one point');
      recordCurvePoint(db, other, { batchIndex: 0, edits: 2, efficacy: 0.5, pNew: 0.3, sentencePplRatio: null, normGrowth: null });
      assert.deepEqual(curvePoints(db, run), [
        { batchIndex: 0, edits: 2, efficacy: 1, pNew: 0.75, sentencePplRatio: 1.05, normGrowth: 1.01 },
        { batchIndex: 1, edits: 4, efficacy: 0.75, pNew: 0.5, sentencePplRatio: 1.2, normGrowth: 1.1 },
        { batchIndex: 2, edits: 5, efficacy: 0.6, pNew: 0.4, sentencePplRatio: null, normGrowth: null },
      ]);
      assert.throws(() => recordCurvePoint(db, 999, { batchIndex: 0, edits: 1, efficacy: 1, pNew: 1, sentencePplRatio: null, normGrowth: null }), /FOREIGN KEY/);
      db.prepare('DELETE FROM batch_runs WHERE id = ?').run(run);
      assert.deepEqual(curvePoints(db, run), [], 'the points go with their run');
      assert.equal((db.prepare('SELECT count(*) AS n FROM batch_run_points').get() as { n: number }).n, 1, 'the other run keeps its point');
    } finally {
      db.close();
    }
  });

  test('settings are compared as canonical JSON and invalid runs are refused', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: 2 }], c: null } }), '{"a":{"c":null,"d":[2,{"y":2,"z":1}]},"b":1}');
    const { db, ws } = setup();
    try {
      assert.throws(() => beginBatchRun(db, ws.id, { ...spec, batchSize: 0 }), /batch size must be a positive integer/);
      assert.throws(() => beginBatchRun(db, ws.id, { ...spec, requestCount: 0 }), /at least one request/);
    } finally {
      db.close();
    }
  });
});

describe('edit keys', () => {
  test('preserved keys are those of enabled, completed edits at the layer, in stack order', () => {
    const { db, ws } = setup();
    try {
      const key = (x: number) => Float32Array.from({ length: 6 }, (_, i) => x + i / 8);
      const a = doneEdit(db, ws.id), b = doneEdit(db, ws.id), c = doneEdit(db, ws.id);
      recordEditKeys(db, a, 1, [key(1), key(2)]);
      recordEditKeys(db, b, 1, [key(3)]);
      recordEditKeys(db, b, 0, [key(9)]);
      recordEditKeys(db, c, 1, [key(4)]);
      const running = beginEdit(db, ws.id, { method: 'memit', request: [], layers: [1], hparams: {}, seed: 0 });
      recordEditKeys(db, running, 1, [key(5)]);
      const firsts = () => preservedKeys(db, ws.id, 1).map((k) => k[0]);
      assert.deepEqual(firsts(), [1, 2, 3, 4]);
      assert.deepEqual(Array.from(preservedKeys(db, ws.id, 1)[0]!), Array.from(key(1)), 'the exact values come back');
      assert.deepEqual(preservedKeys(db, ws.id, 0).map((k) => k[0]), [9]);
      setEnabled(db, b, false);
      assert.deepEqual(firsts(), [1, 2, 4]);
      moveEdit(db, c, 1);
      assert.deepEqual(firsts(), [4, 1, 2]);
      assert.throws(() => recordEditKeys(db, a, 0, [key(1), new Float32Array(5)]), /key 1 has 5 values, key 0 has 6/);
      assert.throws(() => recordEditKeys(db, a, 0, []), /no keys/);
      assert.throws(() => recordEditKeys(db, a, 1, [key(1)]), /UNIQUE|PRIMARY KEY/);
    } finally {
      db.close();
    }
  });
});
