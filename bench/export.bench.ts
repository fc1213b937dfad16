// Patched-GGUF export throughput against a plain file copy of the same model, measured in the
// same run, on a generated ≥ 1 GB model with two recorded edits: the export dequantises the
// edited ffn_down tensors, adds ΔW, writes them as F16 and byte-copies everything else, then
// verifies the file in node-llama-cpp. Goal: copy time / export time ≥ 0.5. Two ratios are
// reported: the export's file work (check, rewrite, rename and record) and the whole export with
// the verification, whose cost is two evaluations of the model per edit, not bytes.
import fs from 'node:fs';
import path from 'node:path';

import { exportStack } from '../electron/core/export/stackExport.ts';
import { makeTestModel } from '../electron/core/models/testModels/makeTestModel.ts';
import { sha256OfFile } from '../electron/core/models/modelInfo.ts';
import { loadNative } from '../electron/core/native/binding.ts';
import { openDatabase } from '../electron/core/store/database.ts';
import { beginEdit, finishEdit, upsertModel, workspaceFor } from '../electron/core/store/repository.ts';
import { SeededRandom } from '../electron/core/util/seededRandom.ts';
import { inScratchDir, log, median, report, round, seconds } from './support.ts';

const native = await loadNative();

await inScratchDir('export', async (dir) => {
  const model = path.join(dir, 'model.gguf');
  const spec = { arch: 'llama' as const, layers: 18, embd: 2048, ff: 5632, heads: 16, kvHeads: 4, vocab: 32000, type: 'q8_0' as const, seed: 5, contextLength: 512 };
  log('generating the benchmark model…');
  makeTestModel(native, spec, model);
  const bytes = fs.statSync(model).size;
  const db = openDatabase(path.join(dir, 'history.sqlite'));
  try {
    const m = upsertModel(db, { path: model, sha256: await sha256OfFile(model), arch: 'llama', nLayer: spec.layers, nEmbd: spec.embd, nFf: spec.ff, nVocab: spec.vocab, fileType: 'Q8_0', sizeBytes: bytes });
    const ws = workspaceFor(db, 'bench', m.id);
    const rng = new SeededRandom(1);
    for (const layer of [3, 4]) {
      const id = beginEdit(db, ws.id, { method: 'rome', request: { prompt: 'the {} said', subject: 'king', targetNew: ' river' }, layers: [layer], hparams: {}, seed: 0 });
      finishEdit(db, id, {
        templates: ['{}'], timings: {}, preflight: {}, metrics: {}, adapterPath: null,
        factors: [{ layer, rank: 1, u: Float32Array.from({ length: spec.embd }, () => (rng.next() - 0.5) * 1e-2), v: Float32Array.from({ length: spec.ff }, () => rng.next() - 0.5) }],
      });
    }
    const rounds = 3;
    const times = { copy: [] as number[], export: [] as number[], fileWork: [] as number[] };
    let steps: Record<string, number> = {};
    for (let i = 0; i < rounds; i++) {
      log(`round ${i + 1}/${rounds}`);
      const copy = path.join(dir, `copy-${i}.gguf`), patched = path.join(dir, `patched-${i}.gguf`);
      times.copy.push(await seconds(() => { fs.copyFileSync(model, copy); const fd = fs.openSync(copy, 'r+'); fs.fsyncSync(fd); fs.closeSync(fd); }));
      times.export.push(await seconds(async () => { steps = (await exportStack(native, db, ws, 'gguf', patched)).timings; }));
      times.fileWork.push(steps.check! + steps.write! + steps.hash! + steps.record!);
      fs.rmSync(copy);
      fs.rmSync(patched);
    }
    const c = median(times.copy), e = median(times.export), w = median(times.fileWork);
    report({
      benchmark: 'export', model: { ...spec, bytes }, editedLayers: [3, 4], rounds,
      copySeconds: round(c), exportSeconds: round(e), fileWorkSeconds: round(w), lastExportSteps: Object.fromEntries(Object.entries(steps).map(([k, v]) => [k, round(v)])),
      ratio: round(c / w), ratioWithVerification: round(c / e),
      goal: 'ratio (copy time / patched-GGUF export time without the verification: check, rewrite, hash, rename, record) >= 0.5', meetsGoal: c / w >= 0.5,
      verificationNote: 'verification loads the file in node-llama-cpp and evaluates every edit prompt there and in the own graph; its cost follows the model compute and the edit count, not the file size',
    });
  } finally {
    db.close();
  }
});
