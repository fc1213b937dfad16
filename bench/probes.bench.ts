// The default post-edit probes (sentence perplexity on the shipped probe set and KL to the base
// on the shipped prompts, through llama.cpp with the stack as an adapter) against the time of
// the ROME edit they judge, in the same run: on stories260K (when $GRAFT_TEST_MODELS has it) and
// on a generated Q4_K llama model (--big: the 1.1B TinyLlama shape). The edit runs with its
// second moments cached, as every edit after the first does; the probes' steady state has the
// base model's results cached, as every probe run after the first does (the first is reported
// too). Goal: probes ≤ 1× the edit.
import fs from 'node:fs';
import path from 'node:path';

import { parseEditRequest } from '../electron/core/edits/request.ts';
import { romeDefaults } from '../electron/core/edits/rome.ts';
import { romeEdit } from '../electron/core/edits/romeEdit.ts';
import { openGraphModel } from '../electron/core/engine/graphModel.ts';
import { makeTestModel } from '../electron/core/models/testModels/makeTestModel.ts';
import { sha256OfFile } from '../electron/core/models/modelInfo.ts';
import { loadNative } from '../electron/core/native/binding.ts';
import { watchWorkspace } from '../electron/core/probes/collapseWatch.ts';
import { probeConfig } from '../electron/core/probes/probeConfig.ts';
import { computeSecondMoments } from '../electron/core/stats/secondMoments.ts';
import { openDatabase } from '../electron/core/store/database.ts';
import { beginEdit, finishEdit, upsertModel, workspaceFor } from '../electron/core/store/repository.ts';
import { corpusFile, inScratchDir, log, report, round, threads } from './support.ts';

const native = await loadNative();
const big = process.argv.includes('--big');

async function measure(name: string, model: string, dir: string, layer: number, prompt: string, subject: string, target: string) {
  const graph = await openGraphModel(native, model, { threads });
  const db = openDatabase(path.join(dir, `${path.basename(model)}.sqlite`));
  try {
    const corpus = corpusFile(dir);
    const statsDir = path.join(dir, 'stats');
    fs.mkdirSync(statsDir, { recursive: true });
    const statsTokens = 4096;
    log(`${name}: second moments (not timed)…`);
    await computeSecondMoments(native, { model, corpus, layers: [layer], outDir: statsDir, tokenCount: statsTokens, contextSize: Math.min(512, graph.info.contextLength), threads });
    const info = graph.info;
    const m = upsertModel(db, { path: model, sha256: await sha256OfFile(model), arch: info.arch, nLayer: info.nLayer, nEmbd: info.nEmbd, nFf: info.nFf, nVocab: info.nVocab, fileType: null, sizeBytes: fs.statSync(model).size });
    const ws = workspaceFor(db, 'bench', m.id);
    const request = parseEditRequest({ prompt, subject, target_new: target });
    const hparams = { ...romeDefaults(info.nLayer), layer };
    log(`${name}: edit…`);
    const t0 = performance.now();
    const r = await romeEdit(native, graph, { modelPath: model, request, hparams, corpus, statisticsTokens: statsTokens, statisticsDir: statsDir, out: dir });
    const editSeconds = (performance.now() - t0) / 1000;
    const id = beginEdit(db, ws.id, { method: 'rome', request, layers: [layer], hparams, seed: 0 });
    finishEdit(db, id, { templates: r.templates, factors: [{ layer, rank: 1, u: r.u, v: r.v }], timings: r.timings, preflight: r.preflight, metrics: null, adapterPath: r.adapter });
    const config = await probeConfig({}, info.contextLength);
    const time = async () => { const t = performance.now(); const w = await watchWorkspace(native, db, ws, config, { editId: id, threads, autoDisable: false }); return { seconds: (performance.now() - t) / 1000, w }; };
    log(`${name}: probes, first run (the base model's results computed)…`);
    const first = await time();
    log(`${name}: probes, steady state…`);
    const steady = await time();
    return {
      model: name, sentences: config.probeSet.sentences.length, klPrompts: config.klPrompts!.prompts.length,
      editSeconds: round(editSeconds), probeSeconds: round(steady.seconds), firstProbeSeconds: round(first.seconds),
      baselineReused: steady.w.baselineReused, verdict: steady.w.verdict,
      ratio: round(steady.seconds / editSeconds), firstRatio: round(first.seconds / editSeconds),
      goal: 'ratio (probe time / edit time, base results cached) <= 1', meetsGoal: steady.seconds / editSeconds <= 1,
    };
  } finally {
    db.close();
    graph.dispose();
  }
}

await inScratchDir('probes', async (dir) => {
  const results = [];
  const stories = process.env.GRAFT_TEST_MODELS && path.join(process.env.GRAFT_TEST_MODELS, 'stories260K-F32.gguf');
  if (stories && fs.existsSync(stories)) results.push(await measure('stories260K-F32', stories, dir, 1, '{} went to the', 'Lily', 'moon'));
  else log('GRAFT_TEST_MODELS is unset or lacks stories260K-F32.gguf: skipping it');
  const spec = big
    ? { arch: 'llama' as const, layers: 22, embd: 2048, ff: 5632, heads: 32, kvHeads: 4, vocab: 32000, type: 'q4_k' as const, seed: 11, contextLength: 2048 }
    : { arch: 'llama' as const, layers: 8, embd: 1024, ff: 2816, heads: 16, kvHeads: 4, vocab: 32000, type: 'q4_k' as const, seed: 11, contextLength: 2048 };
  const model = path.join(dir, 'generated-q4k.gguf');
  log(`generating the ${spec.layers} × ${spec.embd}/${spec.ff} Q4_K model…`);
  makeTestModel(native, spec, model);
  results.push(await measure(`generated llama Q4_K (${spec.layers} × ${spec.embd}/${spec.ff}, vocab ${spec.vocab})`, model, dir, 3, 'the king of {} said', 'the city', 'river'));
  report({ benchmark: 'probes', threads, results, meetsGoal: results.every((r) => r.meetsGoal) });
});
