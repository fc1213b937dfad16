// A workspace with two recorded ROME edits (the second computed on the first), for the tests
// of everything that reads history: exports, the combined adapter, probes.
import fs from 'node:fs';
import path from 'node:path';

import type Database from 'better-sqlite3';

import { parseEditRequest } from '../edits/request.ts';
import { romeDefaults } from '../edits/rome.ts';
import { romeEdit } from '../edits/romeEdit.ts';
import { openGraphModel } from '../engine/graphModel.ts';
import { sha256OfFile } from '../models/modelInfo.ts';
import type { GraftNative } from '../native/binding.ts';
import { openDatabase } from '../store/database.ts';
import { beginEdit, enabledOverlays, finishEdit, upsertModel, workspaceFor, type WorkspaceRecord } from '../store/repository.ts';

/** The model is copied into `dir` first, so tests may change or break the copy. */
export async function recordedRomeEdits(native: GraftNative, dir: string, source: string): Promise<{ db: Database.Database; ws: WorkspaceRecord; model: string }> {
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
