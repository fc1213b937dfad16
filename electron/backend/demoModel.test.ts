// The shipped demo model through the app's backend: imported once per data folder, loaded at
// start while it is the only model, followed when the app moves, never brought back once
// removed, and never a reason for a start to fail. Uses the committed demo-model/ files (copied
// to a temporary folder), so nothing is trained here.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

import type { Job } from '../api/contract.ts';
import { demoEditSettings, demoModelFiles, shippedDemoModelDir, type DemoModelReport } from '../core/demo/demoModel.ts';
import type { GroundTruth } from '../core/demo/factWorld.ts';
import { loadNative } from '../core/native/binding.ts';
import { openDatabase } from '../core/store/database.ts';
import { generatedModel, tempDir } from '../core/testing/fixtures.ts';
import { demoExampleCount } from './demo.ts';
import { createBackend, type Backend } from './index.ts';

const shipped = shippedDemoModelDir();
const skip = ['f32', 'groundTruth'].every((k) => fs.existsSync(path.join(shipped, demoModelFiles[k as 'f32' | 'groundTruth'])))
  ? false : `the demo model is not in ${shipped}; \`graft demo-model --out ${shipped}\` builds a stand-in`;

/** A copy of the shipped demo model, as a packaged app's resources folder would hold it. */
function demoDir(): string {
  const dir = path.join(tempDir(), 'demo-model');
  fs.mkdirSync(dir);
  for (const f of [demoModelFiles.f32, demoModelFiles.groundTruth, demoModelFiles.report]) fs.copyFileSync(path.join(shipped, f), path.join(dir, f));
  return dir;
}

const start = (dataDir: string, demoModelDir: string | null) => createBackend({ dataDir, threads: 1, gpu: 'off', mode: 'web', demoModelDir });

async function loadsDone(backend: Backend): Promise<Job[]> {
  for (;;) {
    const loads = (await backend.listJobs()).filter((j) => j.kind === 'load');
    if (loads.every((j) => j.state !== 'running')) return loads;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('the shipped demo model', { skip }, () => {
  test('a fresh data folder opens with the demo model imported and loaded, with true facts to rewrite', async () => {
    const demo = demoDir();
    const backend = start(path.join(tempDir(), 'data'), demo);
    try {
      const models = await backend.listModels();
      assert.deepEqual(models.map((m) => [m.path, m.demo, m.available, m.editable]), [[path.join(demo, demoModelFiles.f32), true, true, true]]);
      const loads = await loadsDone(backend);
      assert.deepEqual(loads.map((j) => j.state), ['done'], loads[0]?.error ?? '');
      assert.equal((await backend.loadedModel())?.modelId, models[0]!.id);

      const { settings, examples } = await backend.demoExamples();
      assert.equal(examples.length, demoExampleCount);
      const report = JSON.parse(fs.readFileSync(path.join(demo, demoModelFiles.report), 'utf8')) as DemoModelReport;
      assert.deepEqual(settings, demoEditSettings(report), 'the edit layer causal tracing found when the model was built');
      assert.equal(settings!.layer, report.editLayer.layer);
      const truth = JSON.parse(fs.readFileSync(path.join(demo, demoModelFiles.groundTruth), 'utf8')) as GroundTruth;
      for (const e of examples) {
        assert.match(e.prompt, /\{\}/);
        // the true target is the world's fact about the subject; the new one is another object
        assert.ok(truth.facts.some((f) => f.subject === e.subject && ` ${f.object}` === e.targetTrue), `${e.subject}: ${e.targetTrue}`);
        assert.notEqual(e.targetNew, e.targetTrue);
        assert.ok(e.paraphrases!.length > 0 && e.neighbours!.length > 0);
        assert.ok(e.neighbours!.every((n) => !n.includes(e.subject)), 'neighbours are about other subjects');
      }
      assert.equal(new Set(examples.map((e) => e.subject)).size, examples.length);
      assert.ok((await backend.recentLogs()).some((l) => /the demo model graft-demo-facts\.f32\.gguf is imported/.test(l.text)));
    } finally {
      await backend.close();
    }
  });

  test('imported once: a restart keeps one row, and the demo is loaded only while it is the only model', async () => {
    const demo = demoDir();
    const dir = tempDir();
    const dataDir = path.join(dir, 'data');
    const first = start(dataDir, demo);
    const [row] = await first.listModels();
    await loadsDone(first);
    const own = await first.importModel(generatedModel(await loadNative(), dir, { arch: 'llama', type: 'f32' }));
    assert.equal(own.demo, false);
    await first.close();

    const second = start(dataDir, demo);
    try {
      assert.deepEqual((await second.listModels()).map((m) => [m.id, m.demo]), [[row!.id, true], [own.id, false]]);
      assert.deepEqual(await loadsDone(second), [], 'the researcher has a model of their own: nothing is loaded for them');
      assert.equal(await second.loadedModel(), null);
      assert.deepEqual(await second.demoExamples(), { settings: null, examples: [] }, 'no demo facts without the demo model loaded');
      await second.loadModel(own.id, 0);
      await loadsDone(second);
      assert.deepEqual(await second.demoExamples(), { settings: null, examples: [] }, 'nor for another model');
    } finally {
      await second.close();
    }
  });

  test('the demo model follows the app to a new folder, and a removed one stays removed', async () => {
    const dataDir = path.join(tempDir(), 'data');
    const first = start(dataDir, demoDir());
    const [before] = await first.listModels();
    await first.close();

    // an update or an AppImage's mount point puts the same file somewhere else
    const moved = demoDir();
    const second = start(dataDir, moved);
    const after = await second.listModels();
    assert.deepEqual(after.map((m) => [m.id, m.path, m.available, m.demo]), [[before!.id, path.join(moved, demoModelFiles.f32), true, true]]);
    await loadsDone(second);
    await second.close();

    // Graft has no "remove model" yet; the row is removed the way such a command would
    const db = openDatabase(path.join(dataDir, 'graft.sqlite'));
    db.prepare('DELETE FROM workspaces WHERE model_id = ?').run(before!.id);
    db.prepare('DELETE FROM models WHERE id = ?').run(before!.id);
    db.close();
    const third = start(dataDir, moved);
    try {
      assert.deepEqual(await third.listModels(), []);
      assert.deepEqual(await loadsDone(third), []);
    } finally {
      await third.close();
    }
  });

  test('a missing demo model is one clear log line, not a failed start', async () => {
    const empty = tempDir();
    const backend = start(path.join(tempDir(), 'data'), empty);
    try {
      assert.deepEqual(await backend.listModels(), []);
      assert.equal(await backend.loadedModel(), null);
      assert.deepEqual(await backend.demoExamples(), { settings: null, examples: [] });
      const lines = (await backend.recentLogs()).filter((l) => /demo model/.test(l.text));
      assert.deepEqual(lines.map((l) => [l.level, l.text]), [['warn', `the demo model is not at ${path.join(empty, demoModelFiles.f32)}, so none is offered; \`graft demo-model --out ${empty}\` builds it`]]);
    } finally {
      await backend.close();
    }
  });
});
