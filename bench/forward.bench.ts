// Forward speed of Graft's own graph against llama.cpp (its default CPU kernels, F32 KV
// cache) on a generated ~110M-parameter Q8_0 llama model: the same tokens, log-probabilities
// of every position from both, alternated rounds. Goal: ratio (llama.cpp time / own graph
// time) ≥ 0.8.
import fs from 'node:fs';
import path from 'node:path';

import { openGraphModel } from '../electron/core/engine/graphModel.ts';
import { openLlamaSession } from '../electron/core/engine/llamaSession.ts';
import { makeTestModel } from '../electron/core/models/testModels/makeTestModel.ts';
import { loadNative } from '../electron/core/native/binding.ts';
import { inScratchDir, log, median, report, round, seconds, threads } from './support.ts';

const rounds = 3;
const nTokens = 128;
const native = await loadNative();

await inScratchDir('forward', async (dir) => {
  const model = path.join(dir, 'model.gguf');
  const spec = { arch: 'llama' as const, layers: 12, embd: 768, ff: 2048, heads: 12, kvHeads: 4, vocab: 16000, type: 'q8_0' as const, seed: 2, contextLength: 512 };
  log('generating the benchmark model…');
  makeTestModel(native, spec, model);
  const graph = await openGraphModel(native, model, { threads });
  const session = await openLlamaSession(native, model, { contextSize: 512, threads });
  try {
    const tokens = Int32Array.from({ length: nTokens }, (_, i) => (i === 0 ? 1 : 300 + ((i * 7919) % 15000)));
    const ownGraph = () => graph.run({ prompts: [tokens], allLogits: true });
    const llama = () => session.evaluate(tokens);
    await ownGraph();
    await llama();
    const times = { graph: [] as number[], llama: [] as number[] };
    for (let i = 0; i < rounds; i++) {
      log(`round ${i + 1}/${rounds}`);
      times.llama.push(await seconds(llama));
      times.graph.push(await seconds(ownGraph));
    }
    const g = median(times.graph), l = median(times.llama);
    const params = spec.layers * (2 * spec.embd * spec.embd + 2 * spec.embd * (spec.embd / spec.heads) * spec.kvHeads + 3 * spec.embd * spec.ff) + 2 * spec.vocab * spec.embd;
    report({
      benchmark: 'forward',
      model: { ...spec, parameters: params, bytes: fs.statSync(model).size },
      tokens: nTokens, threads, rounds,
      graphSeconds: round(g), llamaSeconds: round(l),
      graphTokensPerSecond: round(nTokens / g, 1), llamaTokensPerSecond: round(nTokens / l, 1),
      ratio: round(l / g),
      goal: 'ratio (llama.cpp time / own graph time) >= 0.8',
      meetsGoal: l / g >= 0.8,
    });
  } finally {
    graph.dispose();
    session.dispose();
  }
});
