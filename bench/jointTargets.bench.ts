// MEMIT's target (z) optimisation for N requests in one graph against the same N one at a
// time, on stories260K with the batch defaults' prompts (bare prompt plus context templates,
// and the essence prompt). Each run takes a fixed number of Adam steps (no early stop) so both
// sides do the same work; the ratio together / apart says how many requests batchEdit should
// put in one graph. `--sizes 1,2,4,8,16`, `--steps N` (default 10).
import fs from 'node:fs';
import path from 'node:path';

import { batchDefaults } from '../electron/core/edits/batchEdit.ts';
import { readRequestFile } from '../electron/core/edits/requestFile.ts';
import { atLookups, contextTemplates, essencePrompt, optimizeValues, rewritingPrompts, type ValueItem } from '../electron/core/edits/rome.ts';
import { openGraphModel } from '../electron/core/engine/graphModel.ts';
import { loadNative } from '../electron/core/native/binding.ts';
import { storyFactsFile } from '../electron/core/testing/storyFacts.ts';
import { inScratchDir, log, report, round, seconds, threads } from './support.ts';

const arg = (name: string) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : undefined; };
const sizes = (arg('--sizes') ?? '1,2,4,8,16').split(',').map(Number);
const steps = Number(arg('--steps') ?? 10);
const storiesDir = process.env.GRAFT_TEST_MODELS;
const stories = storiesDir && path.join(storiesDir, 'stories260K-F32.gguf');
if (!stories || !fs.existsSync(stories)) {
  console.error('the joint-targets benchmark needs stories260K-F32.gguf in $GRAFT_TEST_MODELS');
  process.exit(2);
}

const native = await loadNative();
await inScratchDir('joint-targets', async (dir) => {
  const graph = await openGraphModel(native, stories, { threads });
  try {
    const hp = { ...batchDefaults('memit', graph.info.nLayer, graph.info.nFf), vSteps: steps, stopLoss: -Infinity };
    const layer = hp.layers[hp.layers.length - 1]!;
    const templates = await contextTemplates(graph, hp);
    const { requests } = readRequestFile(await storyFactsFile(graph, dir, Math.max(...sizes)));
    const items: ValueItem[] = [];
    for (const request of requests.slice(0, Math.max(...sizes))) {
      const prompts = rewritingPrompts(graph, request, templates);
      const run = await graph.run({ prompts: prompts.map((p) => p.tokens), captures: [{ layer, site: 'resid_in' }, { layer, site: 'resid_out' }] });
      const [inputs, outputs] = run.captures as [typeof run.captures[0], typeof run.captures[0]];
      items.push({ prompts, essence: essencePrompt(graph, request), start: { layerInput: inputs.values, value: Float64Array.from(atLookups(outputs.values, outputs.width, prompts)[0]!) } });
    }
    const at = { layer, site: 'resid_out' as const };
    const results = [];
    for (const n of sizes) {
      const chosen = items.slice(0, n);
      log(`${n} request(s): together, then apart…`);
      const together = await seconds(() => optimizeValues(graph, chosen, at, hp, []));
      const apart = await seconds(async () => { for (const item of chosen) await optimizeValues(graph, [item], at, hp, []); });
      const tokens = chosen.reduce((t, item) => t + item.prompts.reduce((s, p) => s + p.tokens.length, 0) + item.essence.tokens.length, 0);
      results.push({ requests: n, prompts: chosen.reduce((c, item) => c + item.prompts.length + 1, 0), tokens, togetherSeconds: round(together), apartSeconds: round(apart), togetherOverApart: round(together / apart, 2) });
    }
    report({ benchmark: 'jointTargets', model: 'stories260K-F32', threads, steps, layer, results });
  } finally {
    graph.dispose();
  }
});
