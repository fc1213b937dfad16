// Exports of a workspace's stack: the LoRA adapter and the patched GGUF give the same
// next-token probabilities in node-llama-cpp, both are verified before they appear, the log
// and card hold every edit, and bad outputs are refused without leaving files behind.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { parseEditRequest } from '../edits/request.ts';
import { romeDefaults } from '../edits/rome.ts';
import { romeEdit } from '../edits/romeEdit.ts';
import { openGraphModel } from '../engine/graphModel.ts';
import { sha256OfFile } from '../models/modelInfo.ts';
import { nextTokenDistribution, withModel } from '../models/nodeLlamaProbe.ts';
import { loadNative, type GraftNative } from '../native/binding.ts';
import { openDatabase } from '../store/database.ts';
import { beginEdit, enabledOverlays, finishEdit, listExports, upsertModel, workspaceFor } from '../store/repository.ts';
import { generatedModel, realModel, tempDir } from '../testing/fixtures.ts';
import { exportStack } from './stackExport.ts';

let native: GraftNative;
before(async () => {
  native = await loadNative();
});

/** Two recorded ROME edits, the second computed on the first, on a copy of the model. */
async function workspaceWithEdits(dir: string, source: string) {
  const model = path.join(dir, 'base.gguf');
  fs.copyFileSync(source, model);
  const db = openDatabase(path.join(dir, 'history.sqlite'));
  const graph = await openGraphModel(native, model);
  const info = graph.info;
  const m = upsertModel(db, { path: model, sha256: await sha256OfFile(model), arch: info.arch, nLayer: info.nLayer, nEmbd: info.nEmbd, nFf: info.nFf, nVocab: info.nVocab, fileType: null, sizeBytes: fs.statSync(model).size });
  const ws = workspaceFor(db, 'w', m.id);
  try {
    for (const [subject, target] of [['Lily', 'moon'], ['Tom', 'sea']] as const) {
      const request = parseEditRequest({ prompt: '{} went to the', subject, target_new: target });
      const hparams = { ...romeDefaults(info.nLayer), layer: 1, vSteps: 10, contextTemplates: [[3, 5]] as [number, number][], mom2Adjustment: false };
      const id = beginEdit(db, ws.id, { method: 'rome', request, layers: [1], hparams, seed: 0 });
      const r = await romeEdit(native, graph, { modelPath: model, request, hparams, out: dir, overlays: enabledOverlays(db, ws.id) });
      finishEdit(db, id, { templates: r.templates, factors: [{ layer: r.layer, rank: 1, u: r.u, v: r.v }], timings: r.timings, preflight: r.preflight, metrics: null, adapterPath: r.adapter });
    }
  } finally {
    graph.dispose();
  }
  return { db, ws, model };
}

describe('exports', () => {
  const stories = realModel('stories260K-F16.gguf');
  test('LoRA and patched F16 GGUF are verified and agree in node-llama-cpp; log and card hold every edit; the base is untouched', async () => {
    const dir = tempDir();
    const source = stories.path ?? generatedModel(native, dir, { arch: 'llama', type: 'f16', layers: 3 });
    const { db, ws, model } = await workspaceWithEdits(dir, source);
    try {
      const hash = await sha256OfFile(model);
      const lora = await exportStack(native, db, ws, 'lora', path.join(dir, 'stack.gguf'));
      const gguf = await exportStack(native, db, ws, 'gguf', path.join(dir, 'patched.gguf'));
      assert.ok(lora.verification?.verified && gguf.verification?.verified);
      assert.deepEqual(lora.edits, gguf.edits);
      assert.equal(lora.edits.length, 2);
      assert.equal(await sha256OfFile(model), hash, 'the base model is never modified');
      const meta = native.inspect(gguf.path).kv;
      assert.equal(meta.find((k) => k.key === 'graft.base_sha256')?.value, hash);
      assert.equal(meta.find((k) => k.key === 'graft.edit_ids')?.value, lora.edits.join(','));
      for (const text of ['Lily went to the', 'Tom went to the', 'One day, Ben saw a']) {
        const viaLora = await withModel(model, (m) => nextTokenDistribution(m, text, true, lora.path));
        const viaPatch = await withModel(gguf.path, (m) => nextTokenDistribution(m, text, true));
        let worst = 0;
        for (const [t, p] of viaLora) worst = Math.max(worst, Math.abs(p - (viaPatch.get(t) ?? 0)));
        assert.ok(worst <= 2e-3, `${text}: LoRA vs patched GGUF differ by ${worst}`);
      }
      const log = await exportStack(native, db, ws, 'log', path.join(dir, 'edits.jsonl'));
      const lines = fs.readFileSync(log.path, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      assert.deepEqual(lines.map((l) => l.id), lora.edits);
      assert.equal(lines[1].computedOn[0], lines[0].id);
      assert.equal(lines[0].factors[0].u.length, lines[0].factors[0].rank * (await openGraphModel(native, model).then((g) => { const n = g.info.nEmbd; g.dispose(); return n; })));
      const card = await exportStack(native, db, ws, 'card', path.join(dir, 'card.md'));
      const text = fs.readFileSync(card.path, 'utf8');
      for (const id of lora.edits) assert.match(text, new RegExp(`Edit ${id}`));
      const recorded = listExports(db, ws.id);
      assert.deepEqual(recorded.map((e) => [e.kind, e.path, e.sha256, e.verification?.verified ?? null]),
        [lora, gguf, log, card].map((e) => [e.format, e.path, e.sha256, e.verification?.verified ?? null]));
      assert.ok(recorded.every((e) => e.editIds.join() === lora.edits.join()));
      assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('.graft-')), [], 'no temporary files are left');
    } finally {
      db.close();
    }
  });

  test('bad outputs and a changed model are refused; nothing is written', async () => {
    const dir = tempDir();
    const { db, ws, model } = await workspaceWithEdits(dir, generatedModel(native, dir, { arch: 'llama', type: 'f32' }));
    try {
      await assert.rejects(exportStack(native, db, ws, 'gguf', model), /the output path is the base model itself/);
      fs.writeFileSync(path.join(dir, 'taken.gguf'), 'x');
      await assert.rejects(exportStack(native, db, ws, 'lora', path.join(dir, 'taken.gguf')), /exists; choose another --out/);
      await assert.rejects(exportStack(native, db, ws, 'lora', path.join(dir, 'missing', 'a.gguf')), /the folder .*missing does not exist/);
      const before = fs.readdirSync(dir).sort();
      const fd = fs.openSync(model, 'r+');
      fs.writeSync(fd, Buffer.from([0]), 0, 1, fs.statSync(model).size - 1);
      fs.closeSync(fd);
      await assert.rejects(exportStack(native, db, ws, 'gguf', path.join(dir, 'p.gguf')), /changed since the edits were recorded/);
      assert.deepEqual(fs.readdirSync(dir).sort(), before);
    } finally {
      db.close();
    }
  });
});
