// MEMIT's batch against single ROME edits on stories260K: the time of one batch of N facts
// (default 100) in units of one ROME edit measured in the same run (the mean of five). The
// second moments are computed before timing, for every layer either method touches. Goal: a
// batch of 100 costs ≤ 10 ROME edits. `--size N` changes the batch, `--methods memit,alphaedit,emmet`.
import fs from 'node:fs';
import path from 'node:path';

import { alphaEditProjectors } from '../electron/core/edits/alphaEditProjector.ts';
import { batchDefaults, batchEdit, type BatchMethod } from '../electron/core/edits/batchEdit.ts';
import { readRequestFile } from '../electron/core/edits/requestFile.ts';
import { romeDefaults } from '../electron/core/edits/rome.ts';
import { romeEdit } from '../electron/core/edits/romeEdit.ts';
import { openGraphModel } from '../electron/core/engine/graphModel.ts';
import { loadNative } from '../electron/core/native/binding.ts';
import { computeSecondMoments } from '../electron/core/stats/secondMoments.ts';
import { storyFactsFile } from '../electron/core/testing/storyFacts.ts';
import { corpusFile, inScratchDir, log, report, round, threads } from './support.ts';

const arg = (name: string) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : undefined; };
const size = Number(arg('--size') ?? 100);
const methods = (arg('--methods') ?? 'memit').split(',') as BatchMethod[];
const storiesDir = process.env.GRAFT_TEST_MODELS;
const stories = storiesDir && path.join(storiesDir, 'stories260K-F32.gguf');
if (!stories || !fs.existsSync(stories)) {
  console.error('the batch benchmark needs stories260K-F32.gguf in $GRAFT_TEST_MODELS (a real model: random weights make the facts meaningless)');
  process.exit(2);
}

const native = await loadNative();
await inScratchDir('batch', async (dir) => {
  const graph = await openGraphModel(native, stories, { threads });
  try {
    const corpus = corpusFile(dir);
    const statisticsDir = path.join(dir, 'stats');
    fs.mkdirSync(statisticsDir);
    const info = graph.info;
    const rome = romeDefaults(info.nLayer);
    const layers = [...new Set([rome.layer, ...methods.flatMap((m) => batchDefaults(m, info.nLayer, info.nFf).layers)])].sort((a, b) => a - b);
    log(`second moments of layers ${layers.join(', ')} (not timed)…`);
    await computeSecondMoments(native, { model: stories, corpus, layers, outDir: statisticsDir, tokenCount: 8192, contextSize: 512, threads });
    const { requests } = readRequestFile(await storyFactsFile(graph, dir, Math.max(size, 5)));
    const source = { modelPath: stories, corpus, statisticsTokens: 8192, statisticsDir, out: dir };
    log('five single ROME edits…');
    const romeSeconds: number[] = [];
    for (const request of requests.slice(0, 5)) {
      const t = performance.now();
      await romeEdit(native, graph, { ...source, request, hparams: rome });
      romeSeconds.push((performance.now() - t) / 1000);
    }
    const perRome = romeSeconds.reduce((a, b) => a + b, 0) / romeSeconds.length;
    const results = [];
    for (const method of methods) {
      log(`${method}: one batch of ${size}…`);
      const t = performance.now();
      const r = await batchEdit(native, graph, {
        ...source, requests: requests.slice(0, size), hparams: batchDefaults(method, info.nLayer, info.nFf),
        projector: alphaEditProjectors(native, { cacheDir: path.join(dir, 'null-spaces') }),
      });
      const batchSeconds = (performance.now() - t) / 1000;
      results.push({
        method, size, layers: r.hparams.layers, batchSeconds: round(batchSeconds), secondsPerFact: round(batchSeconds / size),
        phases: Object.fromEntries(Object.entries(r.timings).map(([k, v]) => [k, round(v)])),
        batchInRomeEdits: round(batchSeconds / perRome, 1),
        goal: `batchInRomeEdits <= ${size / 10}`, meetsGoal: batchSeconds / perRome <= size / 10,
      });
    }
    report({ benchmark: 'batch', model: 'stories260K-F32', threads, romeEditSeconds: romeSeconds.map((s) => round(s)), results });
  } finally {
    graph.dispose();
  }
});
