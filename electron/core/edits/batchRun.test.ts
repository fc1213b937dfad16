// Batch runs on a generated model: the recorded edits match what the methods compute (rank per
// layer, keys kept for AlphaEdit), a cancelled sequence resumes where it stopped without
// redoing a batch (its curve keeps the earlier attempt's point and adds the rest), AlphaEdit's later batches protect the earlier batches' keys, and the norm
// guard's cap holds. Invalid combinations are refused before anything is written.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import type Database from 'better-sqlite3';

import { layerFactors, enabledStack } from '../export/editStack.ts';
import { openGraphModel } from '../engine/graphModel.ts';
import { sha256OfFile } from '../models/modelInfo.ts';
import { loadNative, type GraftNative } from '../native/binding.ts';
import type { NativeGraphModel } from '../native/graphTypes.ts';
import { normGrowth } from '../probes/normGrowth.ts';
import { curvePoints, getBatchRun, listBatchRuns } from '../store/batchRuns.ts';
import { openDatabase } from '../store/database.ts';
import { preservedKeys } from '../store/editKeys.ts';
import { getEdit, listEdits, upsertModel, workspaceFor, type WorkspaceRecord } from '../store/repository.ts';
import { generatedModel, tempDir } from '../testing/fixtures.ts';
import { batchDefaults, type BatchHparams } from './batchEdit.ts';
import { batchPlan, runBatchFile } from './batchRun.ts';

let native: GraftNative;
before(async () => {
  native = await loadNative();
});

const subjects = ['the king', 'the city', 'the dog', 'the river', 'the house', 'the old man'];

function requestsFile(dir: string, count: number): string {
  const file = path.join(dir, `requests-${count}.jsonl`);
  const lines = subjects.slice(0, count).map((s, i) => JSON.stringify({ prompt: 'I saw {} near the', subject: s, target_new: ['sea', 'hill', 'tree', 'road', 'barn', 'gate'][i], target_true: 'wall' }));
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

async function setup(dir: string): Promise<{ model: string; db: Database.Database; ws: WorkspaceRecord; graph: NativeGraphModel }> {
  const model = generatedModel(native, dir, { arch: 'llama', type: 'f32', layers: 3 });
  const graph = await openGraphModel(native, model);
  const db = openDatabase(path.join(dir, 'history.sqlite'));
  const info = graph.info;
  const m = upsertModel(db, { path: model, sha256: await sha256OfFile(model), arch: info.arch, nLayer: info.nLayer, nEmbd: info.nEmbd, nFf: info.nFf, nVocab: info.nVocab, fileType: null, sizeBytes: fs.statSync(model).size });
  return { model, db, ws: workspaceFor(db, 'w', m.id), graph };
}

const quick = (hp: BatchHparams): BatchHparams => ({ ...hp, vSteps: 4, contextTemplates: [[2, 4]] });

describe('batch runs', () => {
  test('refuses combinations that cannot work, saying what to change', () => {
    assert.throws(() => batchPlan('rome', 3, undefined, false), /add --sequential/);
    assert.throws(() => batchPlan('rome', 3, 2, true), /one fact at a time/);
    assert.throws(() => batchPlan('memit', 10, 3, false), /need --sequential/);
    assert.throws(() => batchPlan('memit', 10, 0, true), /whole number ≥ 1/);
    assert.equal(batchPlan('memit', 10, undefined, false), 10);
    assert.equal(batchPlan('alphaedit', 10, 4, true), 4);
    assert.equal(batchPlan('rome', 3, undefined, true), 1);
  });

  test('a cancelled MEMIT sequence resumes without redoing a batch; its curve is whole; one adapter holds the run', { timeout: 600_000 }, async () => {
    const dir = tempDir();
    const { model, db, ws, graph } = await setup(dir);
    try {
      const file = requestsFile(dir, 5);
      const hparams = quick({ ...batchDefaults('memit', 3, graph.info.nFf), layers: [0, 1] });
      const controller = new AbortController();
      const common = { modelPath: model, workspace: ws, method: 'memit' as const, requestsPath: file, batchSize: 2, sequential: true, hparams, curve: true, statisticsTokens: 512, statisticsDir: dir, probes: null };
      await assert.rejects(runBatchFile(native, db, graph, { ...common, signal: controller.signal, onBatch: (b) => { if (b.index === 0) controller.abort(); } }), /cancel/);
      const [first] = listBatchRuns(db, ws.id);
      assert.equal(first!.status, 'cancelled');
      assert.deepEqual(first!.batches.map((b) => b.status), ['done', 'cancelled', 'pending']);
      const doneEdit = first!.batches[0]!.editId!;
      // the finished batch's point was stored before the cancel
      const before = curvePoints(db, first!.id);
      assert.deepEqual(before.map((p) => [p.batchIndex, p.edits]), [[0, 2]]);

      const out = path.join(dir, 'run.gguf');
      const run = await runBatchFile(native, db, graph, { ...common, out });
      assert.equal(run.resumed, true);
      assert.equal(run.runId, first!.id);
      assert.deepEqual(run.batches.map((b) => [b.resumed, b.requestIndices]), [[true, [0, 1]], [false, [2, 3]], [false, [4]]]);
      assert.equal(run.batches[0]!.editId, doneEdit, 'the batch done before the cancel is not redone');
      // the whole curve, each batch once: the earlier attempt's point as it was measured, then the new ones
      assert.deepEqual(run.curve.map((p) => [p.batchIndex, p.edits]), [[0, 2], [1, 4], [2, 5]]);
      assert.deepEqual(run.curve[0], before[0]);
      assert.deepEqual(curvePoints(db, run.runId), run.curve);
      for (const p of run.curve) {
        assert.ok(p.efficacy >= 0 && p.efficacy <= 1 && p.pNew > 0 && p.pNew <= 1, JSON.stringify(p));
        assert.equal(p.sentencePplRatio, null, 'no probes, no perplexity ratio');
        assert.ok(p.normGrowth !== null && p.normGrowth > 1, JSON.stringify(p));
      }
      assert.equal(getBatchRun(db, run.runId).status, 'done');
      const edits = listEdits(db, ws.id).filter((e) => e.status === 'done');
      assert.equal(edits.length, 3);
      // every batch is one edit with one factor pair per layer of rank = its size, computed on the earlier ones
      edits.forEach((e, i) => {
        const full = getEdit(db, e.id);
        assert.deepEqual(full.factors.map((f) => [f.layer, f.rank]), [[0, i < 2 ? 2 : 1], [1, i < 2 ? 2 : 1]]);
        assert.deepEqual(full.computedOn, edits.slice(0, i).map((x) => x.id));
      });
      // the run's adapter holds all of it: ranks add per layer
      const tensors = native.inspect(out).tensors.filter((t) => t.name.endsWith('.lora_a'));
      assert.deepEqual(tensors.map((t) => [t.name, t.shape[1]]), [['blk.0.ffn_down.weight.lora_a', 5], ['blk.1.ffn_down.weight.lora_a', 5]]);
      // the keys each batch was made for are kept, in stack order, for AlphaEdit to protect
      assert.equal(preservedKeys(db, ws.id, 1).length, 5);
      assert.equal(run.summary.requests, 5);
      // a third attempt finds the run done and starts a new one
      const again = await runBatchFile(native, db, graph, { ...common, batchSize: 5, sequential: false });
      assert.notEqual(again.runId, run.runId);
      assert.deepEqual(again.curve.map((p) => [p.batchIndex, p.edits]), [[0, 5]], 'a new run has its own curve');
      assert.equal(curvePoints(db, run.runId).length, 3);
    } finally {
      graph.dispose();
      db.close();
    }
  });

  test('a batch saved but never measured (its process died in between) is measured when the run resumes, as it would have been', { timeout: 600_000 }, async () => {
    const dir = tempDir();
    const { model, db, ws, graph } = await setup(dir);
    try {
      const common = {
        modelPath: model, workspace: ws, method: 'memit' as const, requestsPath: requestsFile(dir, 4), batchSize: 2, sequential: true, curve: true,
        hparams: quick({ ...batchDefaults('memit', 3, graph.info.nFf), layers: [0, 1] }), statisticsTokens: 512, statisticsDir: dir, probes: null,
      };
      const controller = new AbortController();
      await assert.rejects(runBatchFile(native, db, graph, { ...common, signal: controller.signal, onBatch: (b) => { if (b.index === 0) controller.abort(); } }), /cancel/);
      const [run] = listBatchRuns(db, ws.id);
      const measured = curvePoints(db, run!.id);
      assert.equal(measured.length, 1);
      db.prepare('DELETE FROM batch_run_points WHERE run_id = ?').run(run!.id);
      const resumed = await runBatchFile(native, db, graph, common);
      assert.deepEqual(resumed.curve.map((p) => [p.batchIndex, p.edits]), [[0, 2], [1, 4]]);
      assert.deepEqual(resumed.curve[0], measured[0], 'the same stack gives the same point');
    } finally {
      graph.dispose();
      db.close();
    }
  });

  test('AlphaEdit leaves the outputs at earlier edits\' keys where they were', { timeout: 600_000 }, async () => {
    const dir = tempDir();
    const { model, db, ws, graph } = await setup(dir);
    try {
      const file = requestsFile(dir, 4);
      const hparams = quick({ ...batchDefaults('alphaedit', 3, graph.info.nFf), layers: [1], nullspaceThreshold: 1e9 });
      await runBatchFile(native, db, graph, { modelPath: model, workspace: ws, method: 'alphaedit', requestsPath: file, batchSize: 2, sequential: true, hparams, statisticsTokens: 512, statisticsDir: dir, probes: null });
      const [e1, e2] = listEdits(db, ws.id).map((e) => getEdit(db, e.id));
      const keys = preservedKeys(db, ws.id, 1).slice(0, 2);  // the first batch's keys, on the model it edited
      const f = e2!.factors[0]!;
      const nEmbd = f.u.length / f.rank, nFf = f.v.length / f.rank;
      // ΔW₂ k for the first batch's keys, against ΔW₂'s size on its own keys
      const apply = (k: Float32Array) => {
        const out = new Float64Array(nEmbd);
        for (let j = 0; j < f.rank; j++) {
          let d = 0;
          for (let i = 0; i < nFf; i++) d += f.v[j * nFf + i]! * k[i]!;
          for (let e = 0; e < nEmbd; e++) out[e]! += f.u[j * nEmbd + e]! * d;
        }
        return Math.hypot(...out);
      };
      const own = preservedKeys(db, ws.id, 1).slice(2).map(apply);
      const earlier = keys.map(apply);
      // with the whole space as the null space, only the ℓ-regularised Kₚ term protects the earlier keys
      assert.ok(Math.max(...earlier) < 0.2 * Math.min(...own), `‖ΔW₂ kₚ‖ ${earlier} against ‖ΔW₂ k‖ ${own}`);
      assert.equal(e1!.factors[0]!.rank, 2);
      assert.equal((e2!.preflight as { layers: { preservedKeys: number }[] }).layers[0]!.preservedKeys, 2);
    } finally {
      graph.dispose();
      db.close();
    }
  });

  test('the norm guard caps ‖W + ΔW‖/‖W‖ of a batch that would exceed it', { timeout: 600_000 }, async () => {
    const dir = tempDir();
    const { model, db, ws, graph } = await setup(dir);
    try {
      const file = requestsFile(dir, 3);
      const hparams = quick({ ...batchDefaults('memit', 3, graph.info.nFf), layers: [1], mom2UpdateWeight: 1e-3 });
      const run = await runBatchFile(native, db, graph, { modelPath: model, workspace: ws, method: 'memit', requestsPath: file, sequential: false, hparams, statisticsTokens: 512, statisticsDir: dir, probes: null, normCap: 1.01 });
      const edit = getEdit(db, run.batches[0]!.editId);
      const guard = (edit.preflight as { normGuard: { scale: number; growthAfter: number; cappedGrowth: number }[] }).normGuard[0]!;
      assert.ok(guard.growthAfter > 1.01, `the uncapped update must exceed the cap for this test (growth ${guard.growthAfter})`);
      assert.ok(guard.scale < 1 && guard.scale > 0);
      const [measured] = normGrowth(native, model, layerFactors(enabledStack(db, ws)));
      assert.ok(Math.abs(measured!.growth - 1.01) < 1e-4, `recorded stack grows ${measured!.growth}`);
      assert.ok(fs.existsSync(edit.adapterPath!) && /capped/.test(edit.adapterPath!));
      // a stack already over a tighter cap refuses the next batch, says what to do, and keeps what was saved
      const adapters = fs.readdirSync(path.dirname(edit.adapterPath!)).sort();
      await assert.rejects(
        runBatchFile(native, db, graph, { modelPath: model, workspace: ws, method: 'memit', requestsPath: requestsFile(dir, 2), sequential: false, hparams, statisticsTokens: 512, statisticsDir: dir, probes: null, normCap: 1.005 }),
        /already grows the norm by 1\.01.*disable or merge edits first, or raise the cap/);
      assert.deepEqual(fs.readdirSync(path.dirname(edit.adapterPath!)).sort(), adapters, 'the refused update leaves no adapter');
      assert.equal(getEdit(db, run.batches[0]!.editId).status, 'done');
      assert.equal(listEdits(db, ws.id).at(-1)!.status, 'failed');
    } finally {
      graph.dispose();
      db.close();
    }
  });
});
