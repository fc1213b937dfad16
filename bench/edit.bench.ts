// ROME edit latency per phase against the time of one forward pass of Graft's own graph over
// the same prompts (the 21 prefixed rewriting prompts), on stories260K (when
// $GRAFT_TEST_MODELS has it) and on a generated 1.1B-parameter Q4_K llama model (TinyLlama
// shape). The second moments are computed before timing (the "cached statistics" case); their
// Cholesky factor is part of the timed statistics phase. Goal: an edit costs ≤ 150 forward
// passes. Also: causal tracing time against the (layers × tokens × samples × 3) forward passes
// a one-state-at-a-time implementation would run.
import fs from 'node:fs';
import path from 'node:path';

import { causalTrace } from '../electron/core/edits/causalTrace.ts';
import { parseEditRequest } from '../electron/core/edits/request.ts';
import { contextTemplates, romeDefaults, rewritingPrompts } from '../electron/core/edits/rome.ts';
import { romeEdit } from '../electron/core/edits/romeEdit.ts';
import { openGraphModel } from '../electron/core/engine/graphModel.ts';
import { makeTestModel } from '../electron/core/models/testModels/makeTestModel.ts';
import { loadNative } from '../electron/core/native/binding.ts';
import { computeSecondMoments } from '../electron/core/stats/secondMoments.ts';
import { corpusFile, inScratchDir, log, median, report, round, seconds, threads } from './support.ts';

const native = await loadNative();
const big = !process.argv.includes('--small-only');

async function measure(name: string, model: string, dir: string, layer: number, prompt: string, subject: string, target: string, statsTokens: number) {
  const graph = await openGraphModel(native, model, { threads });
  try {
    const corpus = corpusFile(dir);
    const statsDir = path.join(dir, 'stats');
    fs.mkdirSync(statsDir, { recursive: true });
    log(`${name}: second moments of layer ${layer} (not timed)…`);
    await computeSecondMoments(native, { model, corpus, layers: [layer], outDir: statsDir, tokenCount: statsTokens, contextSize: Math.min(512, graph.info.contextLength), threads });
    const request = parseEditRequest({ prompt, subject, target_new: target });
    const hparams = { ...romeDefaults(graph.info.nLayer), layer };
    const prompts = rewritingPrompts(graph, request, await contextTemplates(graph, hparams));
    const forward = () => graph.run({ prompts: prompts.map((p) => p.tokens), logitRows: prompts.map((p, i) => ({ prompt: i, pos: p.tokens.length - 1 })) });
    await forward();
    const forwardSeconds = median([await seconds(forward), await seconds(forward), await seconds(forward)]);
    log(`${name}: edit…`);
    const t0 = performance.now();
    const r = await romeEdit(native, graph, { modelPath: model, request, hparams, corpus, statisticsTokens: statsTokens, statisticsDir: statsDir, out: dir });
    const editSeconds = (performance.now() - t0) / 1000;
    log(`${name}: causal trace…`);
    const samples = 3;
    const embeddings = native.readTensor(model, 'token_embd.weight').values;
    const traceStart = performance.now();
    const trace = await causalTrace(graph, embeddings, { prompt, subject, samples });
    const traceSeconds = (performance.now() - traceStart) / 1000;
    const single = async () => { const t = graph.tokenize(prompt.replace('{}', subject), true); await graph.run({ prompts: [t], logitRows: [{ prompt: 0, pos: t.length - 1 }] }); };
    await single();
    const singleSeconds = median([await seconds(single), await seconds(single), await seconds(single)]);
    const passes = graph.info.nLayer * trace.tokens.length * samples * 3;
    return {
      model: name, layer, prompts: prompts.length, tokens: prompts.reduce((n, p) => n + p.tokens.length, 0),
      forwardSeconds: round(forwardSeconds, 4),
      phases: Object.fromEntries(Object.entries(r.timings).map(([k, v]) => [k, round(v)])),
      vStarSteps: r.optimisation.steps.length,
      editSeconds: round(editSeconds),
      editInForwardPasses: round(editSeconds / forwardSeconds, 1),
      goal: 'editInForwardPasses <= 150',
      meetsGoal: editSeconds / forwardSeconds <= 150,
      trace: { samples, tokens: trace.tokens.length, seconds: round(traceSeconds), singleForwardSeconds: round(singleSeconds, 4), oneAtATimePasses: passes, ratio: round(traceSeconds / (passes * singleSeconds)) },
    };
  } finally {
    graph.dispose();
  }
}

await inScratchDir('edit', async (dir) => {
  const results = [];
  const storiesDir = process.env.GRAFT_TEST_MODELS;
  const stories = storiesDir && path.join(storiesDir, 'stories260K-F32.gguf');
  if (stories && fs.existsSync(stories)) {
    results.push(await measure('stories260K-F32', stories, dir, 1, '{} went to the', 'Lily', 'moon', 8192));
  } else {
    log('GRAFT_TEST_MODELS is unset or lacks stories260K-F32.gguf: skipping it');
  }
  if (big) {
    const model = path.join(dir, 'tinyllama-shape-q4k.gguf');
    const spec = { arch: 'llama' as const, layers: 22, embd: 2048, ff: 5632, heads: 32, kvHeads: 4, vocab: 32000, type: 'q4_k' as const, seed: 11, contextLength: 2048 };
    log('generating the 1.1B-parameter Q4_K model…');
    makeTestModel(native, spec, model);
    results.push(await measure('generated llama 1.1B Q4_K (22 × 2048/5632, vocab 32000)', model, dir, 3, 'the king of {} said', 'the city', 'river', 8192));
  }
  report({ benchmark: 'edit', threads, results });
});
