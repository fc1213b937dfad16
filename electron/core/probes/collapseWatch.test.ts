// The collapse watch end to end: a deliberately destructive edit (a huge ΔW on an early layer)
// is judged collapsed and switched off, ordinary ROME edits are not; the base's probe results
// are computed once per configuration and reused; every run is stored with its verdict,
// numbers and thresholds.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import { probeTable, verdictLines } from '../../cli/commands/probe.ts';
import { loadNative, type GraftNative } from '../native/binding.ts';
import { probeRunsOfEdit, probeRunsOfWorkspace } from '../store/probeRuns.ts';
import { beginEdit, finishEdit, getEdit, getModel, listEdits } from '../store/repository.ts';
import { recordedRomeEdits } from '../testing/editFixtures.ts';
import { generatedModel, realModel, tempDir } from '../testing/fixtures.ts';
import { SeededRandom } from '../util/seededRandom.ts';
import { watchWorkspace } from './collapseWatch.ts';
import { probeConfig } from './probeConfig.ts';
import { defaultThresholds } from './verdict.ts';

let native: GraftNative;
before(async () => {
  native = await loadNative();
});

describe('collapse watch', () => {
  const stories = realModel('stories260K-F32.gguf');
  test('a destructive edit is flagged collapsed and switched off; ordinary edits are not; the baseline is computed once', async () => {
    const dir = tempDir();
    const source = stories.path ?? generatedModel(native, dir, { arch: 'llama', type: 'f32', layers: 3 });
    const { db, ws } = await recordedRomeEdits(native, dir, source);
    try {
      const model = getModel(db, ws.modelId);
      const config = await probeConfig({}, 256);
      const normal = await watchWorkspace(native, db, ws, config, { editId: listEdits(db, ws.id).at(-1)!.id });
      console.log(`ordinary ROME edits:\n${probeTable(normal.results, normal.baseline)}\n${verdictLines(normal.judgement)}`);
      assert.equal(normal.baselineReused, false);
      assert.notEqual(normal.verdict, 'collapsed');
      assert.equal(normal.autoDisabled, false);
      assert.ok(normal.results.kl!.meanKl > 0, 'two edits change the next-token distributions somewhere');

      // ΔW = s·u vᵀ on layer 0, far larger than W itself
      const rng = new SeededRandom(3);
      const u = Float32Array.from({ length: model.nEmbd }, () => rng.next() - 0.5);
      const v = Float32Array.from({ length: model.nFf }, () => (rng.next() - 0.5) * 50);
      const id = beginEdit(db, ws.id, { method: 'rome', request: { prompt: '{} went to the', subject: 'Lily', targetNew: ' moon' }, layers: [0], hparams: {}, seed: 0 });
      finishEdit(db, id, { templates: ['{}'], factors: [{ layer: 0, rank: 1, u, v }], timings: {}, preflight: {}, metrics: {}, adapterPath: null });
      const broken = await watchWorkspace(native, db, ws, config, { editId: id });
      console.log(`destructive edit:\n${probeTable(broken.results, broken.baseline)}\n${verdictLines(broken.judgement)}`);
      assert.equal(broken.baselineReused, true, 'the base model is probed once per configuration');
      assert.equal(broken.verdict, 'collapsed');
      // a random-weight stand-in scores every sentence near-uniformly, so only a real model's perplexity must show it
      if (stories.path) assert.ok(broken.judgement.reasons.some((r) => r.signal === 'sentencePplRatio' && r.level === 'collapsed'), 'perplexity itself shows the collapse');
      assert.ok(broken.autoDisabled);
      assert.equal(getEdit(db, id).enabled, false, 'a collapsed edit is switched off');
      assert.deepEqual(broken.editSet, [...normal.editSet, id]);

      const [stored] = probeRunsOfEdit(db, id);
      assert.equal(stored!.verdict, 'collapsed');
      assert.equal(stored!.autoDisabled, true);
      assert.deepEqual((stored!.judgement as { thresholds: unknown }).thresholds, defaultThresholds);
      const runs = probeRunsOfWorkspace(db, ws.id);
      assert.equal(runs.length, 2);
      // after the auto-disable the stack is the ordinary edits again: the same numbers as before
      const after = await watchWorkspace(native, db, ws, config);
      assert.deepEqual(after.editSet, normal.editSet);
      assert.ok(Math.abs(after.results.sentence.meanPpl - normal.results.sentence.meanPpl) < 1e-9);

      // turned off by the researcher: the collapsed edit stays on, and the verdict says so
      const again = beginEdit(db, ws.id, { method: 'rome', request: { prompt: '{} went to the', subject: 'Tom', targetNew: ' moon' }, layers: [0], hparams: {}, seed: 1 });
      finishEdit(db, again, { templates: ['{}'], factors: [{ layer: 0, rank: 1, u, v }], timings: {}, preflight: {}, metrics: {}, adapterPath: null });
      const kept = await watchWorkspace(native, db, ws, config, { editId: again, autoDisable: false });
      assert.equal(kept.verdict, 'collapsed');
      assert.equal(getEdit(db, again).enabled, true);
    } finally {
      db.close();
    }
  });
});
