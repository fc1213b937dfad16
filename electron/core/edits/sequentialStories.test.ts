// Sequential editing on a real pretrained model: the same 100 facts applied in batches of five,
// each batch computed on the model the earlier ones edited, by plain MEMIT and by AlphaEdit.
// AlphaEdit's null-space projection and its accumulated keys of earlier edits should keep both
// the model (sentence perplexity against the base) and the earlier edits (efficacy of every edit
// so far) markedly better. Both curves' end points are printed.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

import { openGraphModel } from '../engine/graphModel.ts';
import { sha256OfFile } from '../models/modelInfo.ts';
import { loadNative } from '../native/binding.ts';
import { probeConfig } from '../probes/probeConfig.ts';
import { openDatabase } from '../store/database.ts';
import { upsertModel, workspaceFor } from '../store/repository.ts';
import { generatedModel, realModel, tempDir } from '../testing/fixtures.ts';
import { batchDefaults, type BatchMethod } from './batchEdit.ts';
import { runBatchFile, type BatchRunResult } from './batchRun.ts';
import { storyFactsFile } from '../testing/storyFacts.ts';

const stories = realModel('stories260K-F32.gguf');
const data = process.env.GRAFT_TEST_DATA;
const corpus = data ? path.join(data, 'tinyshakespeare.txt') : undefined;
describe('sequential editing on stories260K', () => {
  const skip = stories.skip || (corpus && fs.existsSync(corpus) ? false : 'GRAFT_TEST_DATA is unset; it holds the corpus for the second moments');
  test('100 edits in batches of 5: AlphaEdit keeps perplexity and earlier edits better than MEMIT', { skip, timeout: 40 * 60_000 }, async () => {
    const native = await loadNative();
    const dir = tempDir();
    const modelPath = process.env.WIDE ? generatedModel(native, dir, { arch: 'llama', type: 'f32', layers: 4, embd: 64, ff: 512, vocab: 320, heads: 4, kvHeads: 2, seed: 5 }) : stories.path!;
    const graph = await openGraphModel(native, modelPath);
    try {
      const file = await storyFactsFile(graph, dir, Number(process.env.EDITS ?? 100));
      const config = await probeConfig({ kl: false }, graph.info.contextLength);
      const runs = {} as Record<BatchMethod, BatchRunResult>;
      for (const method of ['memit', 'alphaedit'] as const) {
        const db = openDatabase(path.join(dir, `${method}.sqlite`));
        const info = graph.info;
        const model = upsertModel(db, { path: modelPath, sha256: await sha256OfFile(modelPath), arch: info.arch, nLayer: info.nLayer, nEmbd: info.nEmbd, nFf: info.nFf, nVocab: info.nVocab, fileType: null, sizeBytes: fs.statSync(modelPath).size });
        const workspace = workspaceFor(db, method, model.id);
        const hparams = { ...batchDefaults(method, info.nLayer, info.nFf), contextTemplates: [[5, 10]] as [number, number][], vSteps: Number(process.env.VSTEPS ?? 25) };
        const t = performance.now();
        runs[method] = await runBatchFile(native, db, graph, {
          modelPath: modelPath, workspace, method, requestsPath: file, batchSize: 5, sequential: true, hparams, curve: true,
          ...(process.env.SAMPLED ? {} : { corpus: corpus! }), statisticsTokens: 8192, statisticsDir: path.join(dir, 'stats'),
          probes: { config, autoDisable: false },
        });
        console.log(`${method}: ${((performance.now() - t) / 1000).toFixed(0)} s`);
        db.close();
      }
      const table = (['memit', 'alphaedit'] as const).map((m) => {
        const c = runs[m].curve;
        return `${m.padEnd(9)} ` + [c[0]!, c[Math.floor(c.length / 2)]!, c.at(-1)!].map((p) => `after ${p.edits}: efficacy ${p.efficacy.toFixed(2)} ppl ratio ${p.sentencePplRatio?.toFixed(3)} norm ${p.normGrowth?.toFixed(3)}`).join(' | ');
      }).join('\n');
      console.log(table);
      const [memit, alpha] = [runs.memit.curve.at(-1)!, runs.alphaedit.curve.at(-1)!];
      assert.ok(alpha.efficacy >= memit.efficacy + 0.1, `earlier edits kept: AlphaEdit ${alpha.efficacy}, MEMIT ${memit.efficacy}\n${table}`);
      assert.ok(alpha.sentencePplRatio! - 1 < 0.5 * (memit.sentencePplRatio! - 1), `perplexity kept: AlphaEdit ${alpha.sentencePplRatio}, MEMIT ${memit.sentencePplRatio}\n${table}`);
    } finally {
      graph.dispose();
    }
  });
});
