// Exports and the history on a full disk and into a read-only folder (real tmpfs mounts): a
// clear error, no file left behind, and everything saved before is still there.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { describeError } from '../util/ioErrors.ts';
import { loadNative, type GraftNative } from '../native/binding.ts';
import { openDatabase } from '../store/database.ts';
import { beginEdit, finishEdit, getEdit, listEdits, listExports, upsertModel, workspaceFor } from '../store/repository.ts';
import { recordedRomeEdits } from '../testing/editFixtures.ts';
import { generatedModel, tempDir } from '../testing/fixtures.ts';
import { fillDisk, mountSkip, withSmallDisk } from '../testing/smallDisks.ts';
import { exportStack, type ExportFormat } from './stackExport.ts';

let native: GraftNative;
before(async () => {
  native = await loadNative();
});

const formats: ExportFormat[] = ['lora', 'gguf', 'log', 'card'];
const outName = (f: ExportFormat) => `out.${f === 'log' ? 'jsonl' : f === 'card' ? 'md' : 'gguf'}`;

describe('disk errors', { skip: mountSkip }, () => {
  test('every export format on a full disk and into a read-only folder: a clear error, nothing left, history intact', async () => {
    const dir = tempDir();
    const { db, ws } = await recordedRomeEdits(native, dir, generatedModel(native, dir, { arch: 'llama', type: 'f32' }));
    const editsBefore = listEdits(db, ws.id);
    try {
      await withSmallDisk({ sizeKb: 512 }, async (disk) => {
        fillDisk(disk);
        for (const format of formats) {
          const error = await exportStack(native, db, ws, format, path.join(disk, outName(format))).then(() => null, (e: unknown) => e);
          assert.ok(error, `${format}: the export on a full disk succeeded`);
          assert.match(describeError(error), /no space left on the device; free some disk space/, `${format}: ${describeError(error)}`);
          assert.deepEqual(fs.readdirSync(disk), ['filler'], `${format} left a file on the full disk`);
        }
      });
      await withSmallDisk({ sizeKb: 512, readOnly: true }, async (disk) => {
        for (const format of formats) {
          await assert.rejects(exportStack(native, db, ws, format, path.join(disk, outName(format))), /is not writable; choose another --out/);
        }
      });
      assert.deepEqual(listExports(db, ws.id), [], 'a failed export is not recorded');
      assert.deepEqual(listEdits(db, ws.id), editsBefore);
    } finally {
      db.close();
    }
  });

  test('the history database on a full disk: recording fails clearly, every edit saved before survives', async () => {
    const dir = tempDir();
    const model = generatedModel(native, dir, { arch: 'llama', type: 'f32' });
    await withSmallDisk({ sizeKb: 1024 }, async (disk) => {
      const file = path.join(disk, 'history.sqlite');
      let db = openDatabase(file);
      const m = upsertModel(db, { path: model, sha256: 'a'.repeat(64), arch: 'llama', nLayer: 2, nEmbd: 64, nFf: 128, nVocab: 320, fileType: 'F32', sizeBytes: 1 });
      const ws = workspaceFor(db, 'w', m.id);
      const record = (i: number, nFf: number) => {
        const id = beginEdit(db, ws.id, { method: 'rome', request: { prompt: '{} is', subject: `S${i}`, targetNew: ' x' }, layers: [0], hparams: {}, seed: i });
        finishEdit(db, id, { templates: ['{}'], factors: [{ layer: 0, rank: 1, u: new Float32Array(64).fill(i), v: new Float32Array(nFf).fill(1) }], timings: {}, preflight: {}, metrics: {}, adapterPath: null });
        return id;
      };
      const saved = [record(1, 128), record(2, 128)];
      fillDisk(disk);
      let failure: unknown = null;
      try {
        // factors far larger than what is left: the transaction cannot commit
        for (let i = 3; i < 50 && failure === null; i++) record(i, 128);
      } catch (error) {
        failure = error;
      }
      assert.ok(failure, 'recording on a full disk did not fail');
      assert.match(describeError(failure), /disk holding the history database is full.*everything saved before is kept/);
      db.close();
      fs.rmSync(path.join(disk, 'filler'));
      db = openDatabase(file);
      try {
        assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
        for (const id of saved) assert.equal(getEdit(db, id).factors[0]!.u[0], id === saved[0] ? 1 : 2);
        assert.ok(listEdits(db, ws.id).every((e) => e.status === 'done' || e.status === 'running'));
      } finally {
        db.close();
      }
    });
  });
});
