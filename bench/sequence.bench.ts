// Sequential editing on stories260K: N made-up facts (default 100) applied one batch after
// another (ROME one at a time; MEMIT, EMMET and AlphaEdit in batches, default 5), each batch on
// the model the earlier ones edited. After every batch: the efficacy of all edits so far, the
// sentence-perplexity ratio against the base model (the collapse watch's probe set) and the
// largest norm growth — the curve as JSON (the same points `graft edit --requests F --sequential
// --curve` prints and the app draws). The baseline is the base model (ratio 1, no edits).
// `--edits N`, `--batch-size B`, `--methods rome,memit,emmet,alphaedit`.
import fs from 'node:fs';
import path from 'node:path';

import { batchDefaults, type BatchMethod } from '../electron/core/edits/batchEdit.ts';
import { runBatchFile } from '../electron/core/edits/batchRun.ts';
import type { EditMethod } from '../electron/core/edits/recordedEdit.ts';
import { romeDefaults } from '../electron/core/edits/rome.ts';
import { openGraphModel } from '../electron/core/engine/graphModel.ts';
import { sha256OfFile } from '../electron/core/models/modelInfo.ts';
import { loadNative } from '../electron/core/native/binding.ts';
import { probeConfig } from '../electron/core/probes/probeConfig.ts';
import { openDatabase } from '../electron/core/store/database.ts';
import { upsertModel, workspaceFor } from '../electron/core/store/repository.ts';
import { storyFactsFile } from '../electron/core/testing/storyFacts.ts';
import { corpusFile, inScratchDir, log, report, round, threads } from './support.ts';

const arg = (name: string) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : undefined; };
const edits = Number(arg('--edits') ?? 100);
const batchSize = Number(arg('--batch-size') ?? 5);
const methods = (arg('--methods') ?? 'rome,memit,alphaedit').split(',') as EditMethod[];
const storiesDir = process.env.GRAFT_TEST_MODELS;
const stories = storiesDir && path.join(storiesDir, 'stories260K-F32.gguf');
if (!stories || !fs.existsSync(stories)) {
  console.error('the sequence benchmark needs stories260K-F32.gguf in $GRAFT_TEST_MODELS');
  process.exit(2);
}

const native = await loadNative();
await inScratchDir('sequence', async (dir) => {
  const graph = await openGraphModel(native, stories, { threads });
  try {
    const info = graph.info;
    const file = await storyFactsFile(graph, dir, edits);
    const config = await probeConfig({ kl: false }, info.contextLength);
    const curves: Record<string, unknown> = {};
    const sha256 = await sha256OfFile(stories);
    for (const method of methods) {
      log(`${method}: ${edits} edits…`);
      const db = openDatabase(path.join(dir, `${method}.sqlite`));
      const model = upsertModel(db, { path: stories, sha256, arch: info.arch, nLayer: info.nLayer, nEmbd: info.nEmbd, nFf: info.nFf, nVocab: info.nVocab, fileType: null, sizeBytes: fs.statSync(stories).size });
      const hparams = method === 'rome' ? romeDefaults(info.nLayer) : batchDefaults(method as BatchMethod, info.nLayer, info.nFf);
      const t = performance.now();
      const run = await runBatchFile(native, db, graph, {
        modelPath: stories, workspace: workspaceFor(db, method, model.id), method, requestsPath: file,
        batchSize: method === 'rome' ? 1 : batchSize, sequential: true, hparams, curve: true,
        corpus: corpusFile(dir), statisticsTokens: 8192, statisticsDir: path.join(dir, 'stats'),
        probes: { config, autoDisable: false },
      });
      db.close();
      curves[method] = {
        seconds: round((performance.now() - t) / 1000, 1), batchSize: method === 'rome' ? 1 : batchSize,
        points: run.curve.map((p) => ({ edits: p.edits, efficacy: round(p.efficacy), pNew: round(p.pNew), sentencePplRatio: p.sentencePplRatio === null ? null : round(p.sentencePplRatio), normGrowth: p.normGrowth === null ? null : round(p.normGrowth) })),
        summary: run.summary,
      };
    }
    report({ benchmark: 'sequence', model: 'stories260K-F32', threads, edits, curves });
  } finally {
    graph.dispose();
  }
});
