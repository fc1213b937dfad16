// Exports of a workspace's stack: the LoRA adapter and the patched GGUF give the same
// next-token probabilities in node-llama-cpp, both are verified before they appear, the log
// and card hold every edit, and bad outputs are refused without leaving files behind.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { openGraphModel } from '../engine/graphModel.ts';
import { sha256OfFile } from '../models/modelInfo.ts';
import { nextTokenDistribution, withModel } from '../models/nodeLlamaProbe.ts';
import { loadNative, type GraftNative } from '../native/binding.ts';
import { getEdit, getModel, listExports, setEnabled } from '../store/repository.ts';
import { overlaysFromLora } from '../engine/loraOverlays.ts';
import { recordedRomeEdits } from '../testing/editFixtures.ts';
import { generatedModel, realModel, tempDir } from '../testing/fixtures.ts';
import { stackAdapter } from './stackAdapterCache.ts';
import { exportStack } from './stackExport.ts';

let native: GraftNative;
before(async () => {
  native = await loadNative();
});

const workspaceWithEdits = (dir: string, source: string) => recordedRomeEdits(native, dir, source);

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

  test('re-quantising the edited tensors to 4 bits is measured and warned about; the file is still verified against its own weights', async () => {
    const dir = tempDir();
    const { db, ws } = await workspaceWithEdits(dir, generatedModel(native, dir, { arch: 'llama', type: 'f16', layers: 3 }));
    try {
      await assert.rejects(exportStack(native, db, ws, 'lora', path.join(dir, 'x.gguf'), { requantize: 'q4_0' }), /patched GGUF only/);
      const r = await exportStack(native, db, ws, 'gguf', path.join(dir, 'q4.gguf'), { requantize: 'q4_0' });
      const loss = r.requantization!;
      console.log(JSON.stringify(loss));
      assert.equal(r.verification?.against, 'own graph on the exported file');
      assert.ok(r.verification?.verified);
      assert.equal(loss.tensors.length, 1);
      // 4-bit steps are far coarser than a rank-one update: a visible share of ΔW is lost
      assert.ok(loss.tensors[0]!.relativeError > 0.05, `relative error ${loss.tensors[0]!.relativeError}`);
      assert.ok(loss.tensors[0]!.retained < 0.999);
      assert.match(loss.warning, /q4_0 kept \d+\.\d% of ΔW/);
      const edited = native.inspect(r.path).tensors.find((t) => t.name === 'blk.1.ffn_down.weight');
      assert.equal(edited?.type, 'q4_0');
      assert.equal(native.inspect(r.path).kv.find((k) => k.key === 'graft.edited_tensor_type')?.value, 'q4_0');
      assert.deepEqual(listExports(db, ws.id)[0]!.verification, { ...r.verification, requantization: loss });
    } finally {
      db.close();
    }
  });

  test('the combined adapter is rebuilt only when the enabled set changes, and an earlier set reuses its file', async () => {
    const dir = tempDir();
    const { db, ws } = await workspaceWithEdits(dir, generatedModel(native, dir, { arch: 'llama', type: 'f32' }));
    const cache = path.join(dir, 'adapters');
    try {
      const both = stackAdapter(native, db, ws, cache);
      assert.equal(both.rebuilt, true);
      assert.equal(both.editIds.length, 2);
      const again = stackAdapter(native, db, ws, cache);
      assert.deepEqual([again.rebuilt, again.path], [false, both.path]);
      setEnabled(db, both.editIds[1]!, false);
      const first = stackAdapter(native, db, ws, cache);
      assert.equal(first.rebuilt, true);
      assert.notEqual(first.path, both.path);
      assert.deepEqual(first.editIds, [both.editIds[0]]);
      setEnabled(db, both.editIds[1]!, true);
      assert.deepEqual(stackAdapter(native, db, ws, cache), { ...both, rebuilt: false });
      setEnabled(db, both.editIds[0]!, false);
      setEnabled(db, both.editIds[1]!, false);
      assert.deepEqual(stackAdapter(native, db, ws, cache), { path: null, contentHash: null, editIds: [], rebuilt: false });
      // the cached file is the stack: llama.cpp reads back exactly the first edit's factors
      const graph = await openGraphModel(native, getModel(db, ws.modelId).path);
      const [overlay] = overlaysFromLora(native, first.path!, graph.info);
      graph.dispose();
      const f = getEdit(db, both.editIds[0]!).factors[0]!;
      assert.equal(overlay!.layer, f.layer);
      // u vᵀ is what must survive (the adapter may split the scale between its two factors)
      let worst = 0;
      for (let e = 0; e < f.u.length; e += 7) for (let i = 0; i < f.v.length; i += 5) {
        worst = Math.max(worst, Math.abs(overlay!.u[e]! * overlay!.v[i]! * (overlay!.scale ?? 1) - f.u[e]! * f.v[i]!));
      }
      assert.ok(worst < 1e-6, `the cached adapter's ΔW differs by ${worst}`);
      assert.deepEqual(fs.readdirSync(cache).sort(), [path.basename(both.path!), path.basename(first.path!)].sort());
    } finally {
      db.close();
    }
  });
});
