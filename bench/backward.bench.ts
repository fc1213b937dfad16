// Cost of gradients in Graft's own graph: forward+backward against forward alone, through
// the 8 layers of a generated Q4_K llama model, with the request shape of ROME's v*
// optimisation (prompts of different lengths, a delta at layer 0's MLP output on each
// prompt's subject token, NLL of target tokens plus a KL row). Also measured with ggml's own
// out_prod in backward, which dequantises every weight row once per token, to show what
// Graft's row-once replacement buys. Goal: ratio (forward+backward / forward) ≤ 4.
import fs from 'node:fs';
import path from 'node:path';

import { openGraphModel } from '../electron/core/engine/graphModel.ts';
import { makeTestModel } from '../electron/core/models/testModels/makeTestModel.ts';
import { loadNative } from '../electron/core/native/binding.ts';
import type { GraphRequest, NativeGraphModel } from '../electron/core/native/graphTypes.ts';
import { inScratchDir, log, median, report, round, seconds, threads } from './support.ts';

const rounds = 3;
const native = await loadNative();

function vStarRequest(g: NativeGraphModel): GraphRequest {
  const prompts: Int32Array[] = [];
  const targets: GraphRequest['targets'] = [];
  const rows: { prompt: number; pos: number }[] = [];
  for (let p = 0; p < 8; p++) {
    const length = 10 + (p % 4) * 2;  // 10…16 tokens
    prompts.push(Int32Array.from({ length }, (_, i) => (i === 0 ? 1 : 300 + ((p * 131 + i * 7919) % 7000))));
    rows.push({ prompt: p, pos: length - 4 });
    for (let t = 0; t < 3; t++) targets.push({ prompt: p, pos: length - 4 + t, token: 500 + t, weight: 1 / 24 });
  }
  const reference = new Float32Array(g.info.nVocab).fill(-Math.log(g.info.nVocab));
  return {
    prompts,
    deltas: [{ layer: 0, site: 'mlp_out', rows, values: new Float32Array(g.info.nEmbd).fill(0.01) }],
    targets,
    references: [{ prompt: 0, pos: 3, logprobs: reference, weight: 0.0625 }],
  };
}

await inScratchDir('backward', async (dir) => {
  const model = path.join(dir, 'model.gguf');
  const spec = { arch: 'llama' as const, layers: 8, embd: 1024, ff: 2816, heads: 16, kvHeads: 4, vocab: 8192, type: 'q4_k' as const, seed: 3, contextLength: 512 };
  log('generating the benchmark model…');
  makeTestModel(native, spec, model);
  const ours = await openGraphModel(native, model, { threads });
  const ggml = await openGraphModel(native, model, { threads, rowOnceOutProd: false });
  try {
    const request = vStarRequest(ours);
    const forward = () => ours.run(request);
    const backward = () => ours.run(request, { backward: true });
    const ggmlBackward = () => ggml.run(request, { backward: true });
    await forward();
    await backward();
    const times = { forward: [] as number[], backward: [] as number[], ggml: [] as number[] };
    for (let i = 0; i < rounds; i++) {
      log(`round ${i + 1}/${rounds}`);
      times.forward.push(await seconds(forward));
      times.backward.push(await seconds(backward));
      if (i === 0) times.ggml.push(await seconds(ggmlBackward));  // slow; one round is enough
    }
    const f = median(times.forward), b = median(times.backward), gg = median(times.ggml);
    report({
      benchmark: 'backward',
      model: { ...spec, bytes: fs.statSync(model).size },
      prompts: request.prompts.length, tokens: request.prompts.reduce((n, p) => n + p.length, 0), threads, rounds,
      forwardSeconds: round(f), forwardBackwardSeconds: round(b), forwardBackwardWithGgmlOutProdSeconds: round(gg),
      ratio: round(b / f),
      ratioWithGgmlOutProd: round(gg / f),
      goal: 'ratio (forward+backward / forward) <= 4',
      meetsGoal: b / f <= 4,
    });
  } finally {
    ours.dispose();
    ggml.dispose();
  }
});
