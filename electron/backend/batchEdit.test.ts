// Batch edits through the app's API on a generated model: a MEMIT batch from a list is one
// recorded edit whose update has one rank per request, with per-request metrics in the job's
// result and in the history; combinations the batch planner refuses come back as its messages.
// The workspace's runs are listed with their stored curves, which grow batch by batch.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import type { BatchEditResult, BatchRunRow, EditDetail, EditRequestInput, Job } from '../api/contract.ts';
import { loadNative } from '../core/native/binding.ts';
import { openDatabase } from '../core/store/database.ts';
import { getEdit } from '../core/store/repository.ts';
import { generatedModel, tempDir } from '../core/testing/fixtures.ts';
import { createBackend, type Backend } from './index.ts';

const facts: EditRequestInput[] = [
  { prompt: 'the king of {} said', subject: 'the city', targetNew: 'river', targetTrue: 'sea', paraphrases: ['they said the king of {} said'] },
  { prompt: '{} lives in the', subject: 'the dog', targetNew: 'house', neighbours: ['the cat lives in the'] },
  { prompt: 'the colour of {} is', subject: 'the sky', targetNew: 'green', targetTrue: 'blue' },
];

describe('batch edits through the API', () => {
  const dir = tempDir();
  const dataDir = path.join(dir, 'data');
  let backend: Backend;

  async function finished(jobId: string): Promise<Job> {
    for (;;) {
      const job = (await backend.listJobs()).find((j) => j.id === jobId)!;
      if (job.state !== 'running') return job;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  before(async () => {
    backend = createBackend({ dataDir, threads: 1, gpu: 'off', mode: 'web', demoModelDir: null });
    const model = await backend.importModel(generatedModel(await loadNative(), dir, { arch: 'llama', type: 'f32' }));
    const load = await finished((await backend.loadModel(model.id, 0)).jobId);
    assert.equal(load.state, 'done', load.error ?? '');
  });
  after(async () => {
    await backend.close();
  });

  test('refused combinations say what to change, before any job starts', async () => {
    const options = { layers: [1], vSteps: 3 };
    await assert.rejects(backend.startBatchEdit({ method: 'rome', requests: facts.slice(0, 2), sequential: false, options: {} }),
      /holds 2 requests and ROME edits one fact at a time: add --sequential/);
    await assert.rejects(backend.startBatchEdit({ method: 'memit', requests: facts, batchSize: 2, sequential: false, options }),
      /batches of 2 out of 3 requests need --sequential/);
    await assert.rejects(backend.startBatchEdit({ method: 'memit', requests: [], sequential: false, options }), /the list holds no requests/);
    await assert.rejects(backend.startBatchEdit({ method: 'memit', requestsPath: path.join(dir, 'none.jsonl'), sequential: false, options }), /none\.jsonl: file not found/);
    fs.writeFileSync(path.join(dir, 'bad.json'), '[{"prompt": "{} is", "target_new": "x"}]');
    await assert.rejects(backend.startBatchEdit({ method: 'memit', requestsPath: path.join(dir, 'bad.json'), sequential: false, options }), /bad\.json: line 1, column \d+: .*"subject" is missing/);
    await assert.rejects(backend.startBatchEdit({ method: 'memit', requests: facts, sequential: false, options: { layer: 1 } }), /memit edits a range of layers: give layers/);
    await assert.rejects(backend.startBatchEdit({ method: 'rome', requests: [facts[0]!], sequential: false, options: { l2: 2 } }), /L2 belongs to memit, emmet and alphaedit/);
    await assert.rejects(backend.startBatchEdit({ method: 'memit', requests: facts, sequential: false, options: { layers: [5] } }), /layer 5 is out of range/);
    await assert.rejects(backend.startBatchEdit({ method: 'memit', requests: facts, sequential: false, options: { ...options, normCap: 0.5 } }), /norm cap .* must be above 1/);
    assert.deepEqual((await backend.listJobs()).filter((j) => j.kind === 'edit'), []);
  });

  test('a MEMIT batch of three is one edit of rank 3 with per-request metrics', async () => {
    const { jobId } = await backend.startBatchEdit({
      method: 'memit', requests: facts, sequential: false, curve: true, options: { layers: [1], vSteps: 3, statisticsTokens: 256, probes: true, autoDisable: false },
    });
    const job = await finished(jobId);
    assert.equal(job.state, 'done', job.error ?? '');
    const result = job.result as BatchEditResult;
    assert.equal(result.method, 'memit');
    assert.equal(result.batches.length, 1);
    assert.deepEqual(result.batches[0]!.requestIndices, [0, 1, 2]);
    assert.deepEqual(result.results.map((r) => r.request.subject), ['the city', 'the dog', 'the sky']);
    for (const r of result.results) {
      assert.ok(r.after.pNew > 0 && r.after.pNew <= 1 && r.before.pNew > 0, JSON.stringify(r));
      assert.ok(r.after.efficacyAccuracy !== null);
    }
    assert.equal(result.results[1]!.after.efficacy, null, 'no true target: no probability comparison');
    assert.ok(result.results[0]!.after.paraphrase !== null);
    assert.equal(result.summary.requests, 3);
    assert.equal(result.curve.length, 1);
    assert.equal(result.curve[0]!.edits, 3);
    assert.ok(result.curve[0]!.sentencePplRatio !== null && result.curve[0]!.sentencePplRatio > 0);
    // the z optimisation of every request, as one curve
    assert.ok(job.steps.length >= 3 && job.steps.length <= 9, `${job.steps.length} steps`);
    assert.deepEqual(job.steps.map((s) => s.index), job.steps.map((_, i) => i));

    const editId = result.batches[0]!.editId;
    const db = openDatabase(path.join(dataDir, 'graft.sqlite'));
    try {
      assert.deepEqual(getEdit(db, editId).factors.map((f) => [f.layer, f.rank]), [[1, 3]]);
    } finally {
      db.close();
    }
    const rows = await backend.listEdits();
    assert.equal(rows.length, 1);
    assert.deepEqual([rows[0]!.method, rows[0]!.requestCount, rows[0]!.request.subject, rows[0]!.status], ['memit', 3, 'the city', 'done']);
    const detail: EditDetail = await backend.getEdit(editId);
    assert.equal(detail.requests.length, 3);
    assert.deepEqual(detail.results.map((r) => r.after.pNew), result.results.map((r) => r.after.pNew));
    assert.equal(detail.summary?.requests, 3);
    await assert.rejects(backend.startHardCases(editId), /is a memit edit; the hard cases are built from a ROME edit/);
  });

  test('the workspace\'s runs are listed with their curves, each point there as soon as its batch is measured', async () => {
    const seen: Promise<BatchRunRow[]>[] = [];
    // the listing as it stands at every historyChanged (the store is read before the call returns)
    const unsubscribe = backend.subscribe((event, ..._data) => { if (event === 'historyChanged') seen.push(backend.listBatchRuns()); });
    const { jobId } = await backend.startBatchEdit({
      method: 'memit', requests: facts, batchSize: 2, sequential: true, curve: true, options: { layers: [1], vSteps: 2, statisticsTokens: 256, probes: true, autoDisable: false },
    });
    const job = await finished(jobId);
    unsubscribe();
    assert.equal(job.state, 'done', job.error ?? '');
    const result = job.result as BatchEditResult;

    const runs = await backend.listBatchRuns();
    assert.deepEqual(runs.map((r) => [r.method, r.requestCount, r.batchSize, r.sequential, r.status, r.batches, r.batchesDone]),
      [['memit', 3, 3, false, 'done', 1, 1], ['memit', 3, 2, true, 'done', 2, 2]], 'the single batch of the earlier test, then this sequence');
    const run = runs[1]!;
    assert.equal(run.id, result.runId);
    assert.match(run.fileName, /^[0-9a-f]{16}\.json$/, 'a list from the editor is kept as a file named by its content');
    assert.ok(run.finishedAt && run.createdAt && run.error === null);
    assert.deepEqual(run.curve.map((p) => [p.batchIndex, p.edits]), [[0, 2], [1, 3]]);
    assert.deepEqual(run.curve.map(({ batchIndex: _, ...p }) => p), result.curve, 'the job\'s curve is the stored one');
    for (const p of run.curve) assert.ok(p.sentencePplRatio !== null && p.sentencePplRatio > 0 && p.normGrowth !== null, JSON.stringify(p));
    const growing = (await Promise.all(seen)).map((list) => list.find((r) => r.id === run.id)?.curve.length ?? 0);
    assert.ok(growing.includes(1), `a listing after the first batch already has its point (points seen: ${growing})`);
    assert.equal(growing.at(-1), 2);
  });

  test('one request by a batch method through the single-edit call; ROME edits still read as one request', async () => {
    const memit = await finished((await backend.startEdit(facts[2]!, { method: 'emmet', layers: [0], vSteps: 2, statisticsTokens: 256, probes: false })).jobId);
    assert.equal(memit.state, 'done', memit.error ?? '');
    const emmet = memit.result as EditDetail;
    assert.deepEqual([emmet.method, emmet.requestCount, emmet.results.length], ['emmet', 1, 1]);
    const rome = await finished((await backend.startEdit(facts[0]!, { layer: 0, vSteps: 2, mom2Adjustment: false, probes: false })).jobId);
    assert.equal(rome.state, 'done', rome.error ?? '');
    const detail = rome.result as EditDetail;
    assert.deepEqual([detail.method, detail.requestCount, detail.results.length, detail.summary?.requests], ['rome', 1, 1, 1]);
    assert.equal(detail.efficacy, detail.results[0]!.after.efficacy);
  });
});
