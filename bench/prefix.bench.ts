// The v* optimisation with and without a reused prefix: ROME's 21 rewriting prompts (context
// prefix, prompt, target), a delta at the subject's last token, 25 Adam steps without early
// stop, the graph starting at the edited layer as romeEdit runs it. With reusePrefix each step
// computes only the tokens from the subject's last token on; the baseline computes all of them.
// Alternated rounds, medians; on the shipped demo model and on stories260K when
// $GRAFT_TEST_MODELS has it. `--rounds N` (default 3).
import fs from 'node:fs';
import path from 'node:path';

import { demoWorld, shippedDemoModelDir } from '../electron/core/demo/demoModel.ts';
import { rewriteRequests } from '../electron/core/demo/factWorld.ts';
import { contextTemplates, romeDefaults, rewritingPrompts } from '../electron/core/edits/rome.ts';
import { openGraphModel } from '../electron/core/engine/graphModel.ts';
import { loadNative } from '../electron/core/native/binding.ts';
import type { GraphRequest } from '../electron/core/native/graphTypes.ts';
import { log, median, report, round, seconds, threads } from './support.ts';

const arg = (name: string) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : undefined; };
const rounds = Number(arg('--rounds') ?? 3);
const steps = 25;
const native = await loadNative();
const { world } = demoWorld();
const { request } = rewriteRequests(world, 1, 1)[0]!;

const models: { name: string; file: string }[] = [{ name: 'graft-demo-facts F32', file: path.join(shippedDemoModelDir(), 'graft-demo-facts.f32.gguf') }];
const stories = process.env.GRAFT_TEST_MODELS && path.join(process.env.GRAFT_TEST_MODELS, 'stories260K-F32.gguf');
if (stories && fs.existsSync(stories)) models.push({ name: 'stories260K F32', file: stories });

const results = [];
for (const m of models) {
  const graph = await openGraphModel(native, m.file, { threads });
  try {
    const hp = romeDefaults(graph.info.nLayer);
    const prompts = rewritingPrompts(graph, request, await contextTemplates(graph, hp));
    const tokens = prompts.map((p) => p.tokens);
    const entering = await graph.run({ prompts: tokens, captures: [{ layer: hp.layer, site: 'resid_in' }] });
    const n = prompts.reduce((c, p) => c + p.targets.length, 0);
    const base: GraphRequest = {
      prompts: tokens, fromLayer: hp.layer, inputStates: entering.captures[0]!.values,
      deltas: [{ layer: hp.layer, site: 'mlp_out', values: new Float32Array(graph.info.nEmbd), rows: prompts.map((p, i) => ({ prompt: i, pos: p.lookup })) }],
      targets: prompts.flatMap((p, i) => p.targets.map((t) => ({ prompt: i, pos: t.pos, token: t.token, weight: 1 / n }))),
    };
    const adam = { steps, lr: hp.vLr, stopLoss: -1 };
    const full: number[] = [], reused: number[] = [];
    let computed = 0;
    log(`${m.name}: ${rounds} rounds of ${steps} steps, with and without the reused prefix…`);
    for (let r = 0; r < rounds; r++) {
      full.push(await seconds(() => graph.optimize(base, adam)));
      reused.push(await seconds(async () => { computed = (await graph.optimize({ ...base, reusePrefix: true }, adam)).result.computedTokens; }));
    }
    const total = tokens.reduce((c, t) => c + t.length, 0);
    results.push({
      model: m.name, prompts: prompts.length, tokens: total, computedTokens: computed, fromLayer: hp.layer, steps,
      fullSeconds: round(median(full)), reusedSeconds: round(median(reused)), speedup: round(median(full) / median(reused), 2),
    });
  } finally {
    graph.dispose();
  }
}
report({ benchmark: 'prefix', threads, rounds, results });
