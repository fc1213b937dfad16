// Merging edits in the history: the enabled stack's ΔW after the merge differs from before by
// exactly the reported error (measured on the dense ΔW), the merge is one done edit at the end
// computed on the merged ones, and toggling restores the original stack bit for bit.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';

import type Database from 'better-sqlite3';

import { openDatabase } from '../store/database.ts';
import { beginEdit, finishEdit, getEdit, listEdits, setEnabled, upsertModel, workspaceFor, type WorkspaceRecord } from '../store/repository.ts';
import { tempDir } from '../testing/fixtures.ts';
import { SeededRandom } from '../util/seededRandom.ts';
import { enabledStack, layerFactors } from './editStack.ts';
import { mergeEdits } from './mergeEdits.ts';

const nEmbd = 8, nFf = 12;
const model = { path: '/models/m.gguf', sha256: 'c'.repeat(64), arch: 'llama', nLayer: 4, nEmbd, nFf, nVocab: 320, fileType: 'F32', sizeBytes: 1 };

function randomEdit(db: Database.Database, workspaceId: number, rng: SeededRandom, layers: number[], rank: number): number {
  const id = beginEdit(db, workspaceId, { method: 'memit', request: [], layers, hparams: {}, seed: 0 });
  const values = (n: number) => Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
  finishEdit(db, id, { templates: [], factors: layers.map((layer) => ({ layer, rank, u: values(rank * nEmbd), v: values(rank * nFf) })), timings: null, preflight: null, metrics: null, adapterPath: null });
  return id;
}

/** The enabled stack's ΔW per layer, formed densely in double. */
function stackDelta(db: Database.Database, ws: WorkspaceRecord): Map<number, Float64Array> {
  return new Map(layerFactors(enabledStack(db, ws)).map(({ layer, u, v }) => {
    const w = new Float64Array(nEmbd * nFf);
    u.forEach((uj, j) => { for (let e = 0; e < nEmbd; e++) for (let i = 0; i < nFf; i++) w[e * nFf + i]! += uj[e]! * v[j]![i]!; });
    return [layer, w];
  }));
}

const norm = (a: Float64Array) => Math.sqrt(a.reduce((s, x) => s + x * x, 0));
const distance = (a: Float64Array, b: Float64Array) => Math.sqrt(a.reduce((s, x, i) => s + (x - b[i]!) ** 2, 0));

function setup() {
  const db = openDatabase(path.join(tempDir(), 'graft.sqlite'));
  return { db, ws: workspaceFor(db, 'w', upsertModel(db, model).id), rng: new SeededRandom(3) };
}

describe('merging edits in the history', () => {
  test('the merged stack keeps ΔW within the reported error, and toggling undoes the merge exactly', () => {
    const { db, ws, rng } = setup();
    try {
      const a = randomEdit(db, ws.id, rng, [1, 2], 2);
      const b = randomEdit(db, ws.id, rng, [1], 3);
      const off = randomEdit(db, ws.id, rng, [1], 1);
      setEnabled(db, off, false);
      const c = randomEdit(db, ws.id, rng, [2], 2);
      const before = stackDelta(db, ws);
      const result = mergeEdits(db, ws.id, { rank: 3 });
      assert.deepEqual(result.merged, [a, b, c]);
      assert.deepEqual(result.layers.map((l) => [l.layer, l.rankBefore, l.rankAfter]), [[1, 5, 3], [2, 4, 3]]);
      const after = stackDelta(db, ws);
      for (const { layer, relativeError } of result.layers) {
        assert.ok(relativeError > 0.01, 'the truncation loses something, so the check has teeth');
        const measured = distance(before.get(layer)!, after.get(layer)!) / norm(before.get(layer)!);
        assert.ok(Math.abs(measured - relativeError) < 1e-5, `layer ${layer}: measured ${measured}, reported ${relativeError}`);
      }
      const edits = listEdits(db, ws.id);
      const merge = getEdit(db, result.editId);
      assert.equal(edits.at(-1)!.id, merge.id, 'the merge is placed at the end of the stack');
      assert.deepEqual([merge.method, merge.status, merge.enabled], ['merge', 'done', true]);
      assert.deepEqual(merge.computedOn, [a, b, c]);
      assert.deepEqual(merge.request, { merged: [a, b, c] });
      assert.deepEqual(merge.factors.map((f) => [f.layer, f.rank]), [[1, 3], [2, 3]]);
      assert.deepEqual((merge.metrics as { layers: { relativeError: number }[] }).layers.map((l) => l.relativeError), result.layers.map((l) => l.relativeError));
      assert.deepEqual(edits.filter((e) => e.enabled).map((e) => e.id), [merge.id], 'the merged edits are off, the one that was off stays off');

      setEnabled(db, merge.id, false);
      for (const id of [a, b, c]) setEnabled(db, id, true);
      const restored = stackDelta(db, ws);
      for (const [layer, w] of before) assert.deepEqual(Array.from(restored.get(layer)!), Array.from(w), `layer ${layer} restored exactly`);
    } finally {
      db.close();
    }
  });

  test('a lossless merge keeps ΔW to float32 rounding; chosen edits and refusals', () => {
    const { db, ws, rng } = setup();
    try {
      const a = randomEdit(db, ws.id, rng, [1], 2);
      const b = randomEdit(db, ws.id, rng, [1], 2);
      const c = randomEdit(db, ws.id, rng, [1], 2);
      assert.throws(() => mergeEdits(db, ws.id, { rank: 1, tolerance: 0.1 }), /either a rank or a tolerance/);
      assert.throws(() => mergeEdits(db, ws.id, { editIds: [999] }), /edit 999 is not in the history/);
      const before = stackDelta(db, ws).get(1)!;
      const result = mergeEdits(db, ws.id, { editIds: [c, a] });
      assert.deepEqual(result.merged, [a, c], 'in stack order');
      assert.ok(result.layers[0]!.relativeError < 1e-12);
      assert.deepEqual(listEdits(db, ws.id).filter((e) => e.enabled).map((e) => e.id), [b, result.editId]);
      assert.ok(distance(before, stackDelta(db, ws).get(1)!) < 1e-6 * norm(before));
      assert.throws(() => mergeEdits(db, ws.id, { editIds: [a] }), new RegExp(`edit ${a} is switched off`));
      const empty = workspaceFor(db, 'empty', ws.modelId);
      assert.throws(() => mergeEdits(db, empty.id), /nothing to merge/);
      assert.throws(() => mergeEdits(db, empty.id, { editIds: [b] }), /belongs to another workspace/);
      assert.equal(listEdits(db, ws.id).length, 4, 'a refused merge records nothing');
    } finally {
      db.close();
    }
  });
});
