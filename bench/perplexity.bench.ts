// Perplexity throughput (scored-chunk tokens/s) of Graft's native scoring against
// node-llama-cpp evaluating the same chunks (same nCtx, BOS-overwritten first token, F32 KV
// cache, no flash attention, threads from GRAFT_THREADS) and reading the probability of each
// scored token from its next-token probabilities, the only way node-llama-cpp offers.
// Alternated rounds, medians. Also reported: ours with four chunks packed side by side per
// decode (a 4·nCtx context, as llama.cpp's tool does with n_batch > n_ctx; off by default
// because it measured slower on the CPU), and node-llama-cpp's bare evaluation of the
// chunks (no probabilities), a lower bound on its time that no scoring through it can beat.
// Goal: ratio (node-llama-cpp scoring time / ours) ≥ 1.0.
import fs from 'node:fs';
import path from 'node:path';

import type { ControlledEvaluateInputItem, LlamaModel, Token } from 'node-llama-cpp';

import { openLlamaSession } from '../electron/core/engine/llamaSession.ts';
import { getSharedLlama } from '../electron/core/models/llama.ts';
import { makeTestModel } from '../electron/core/models/testModels/makeTestModel.ts';
import { loadNative, type NativeLlamaSession } from '../electron/core/native/binding.ts';
import { tokenPerplexity } from '../electron/core/probes/perplexity.ts';
import { inScratchDir, log, median, report, round, seconds, threads } from './support.ts';

const rounds = 3;
const nCtx = 128;
const native = await loadNative();

function corpusText(): string {
  const data = process.env.GRAFT_TEST_DATA && path.join(process.env.GRAFT_TEST_DATA, 'tinyshakespeare.txt');
  if (data && fs.existsSync(data)) return fs.readFileSync(data, 'utf8').slice(0, 200_000);
  const words = ['the', 'king', 'of', 'city', 'said', 'river', 'and', 'a', 'dog', 'ran', 'to', 'house', 'old', 'man', 'sea'];
  return Array.from({ length: 40000 }, (_, i) => words[(i * 7919) % words.length]).join(' ');
}

async function nodeLlamaScoring(model: LlamaModel, chunks: Int32Array[], withProbabilities: boolean) {
  const context = await model.createContext({
    contextSize: nCtx, batchSize: nCtx, threads, flashAttention: false,
    experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32',
  });
  const sequence = context.getSequence();
  const first = nCtx / 2;
  const run = async () => {
    let sum = 0;
    let count = 0;
    for (const chunk of chunks) {
      await sequence.clearHistory();
      const items = Array.from(chunk, (t, i): ControlledEvaluateInputItem => (withProbabilities && i >= first && i < nCtx - 1
        ? [t as Token, { generateNext: { probabilities: true } }] : t as Token));
      const results = await sequence.controlledEvaluate(items);
      if (!withProbabilities) continue;
      for (let j = first + 1; j < nCtx; j++) {
        sum -= Math.log(results[j - 1]!.next!.probabilities!.get(chunk[j]! as Token)!);
        count++;
      }
    }
    return Math.exp(sum / count);
  };
  return { run, dispose: () => context.dispose() };
}

async function measure(label: string, modelPath: string, spec: object | null, tokensText: (s: NativeLlamaSession) => Int32Array, maxChunks: number) {
  log(`${label}: ${modelPath}`);
  const single = await openLlamaSession(native, modelPath, { contextSize: nCtx, threads });
  const packed = await openLlamaSession(native, modelPath, { contextSize: 4 * nCtx, threads });
  const llama = await getSharedLlama();
  const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
  try {
    const tokens = tokensText(single);
    const chunks = Math.min(maxChunks, Math.floor(tokens.length / nCtx));
    const chunkTokens = Array.from({ length: chunks }, (_, c) => {
      const chunk = tokens.slice(c * nCtx, (c + 1) * nCtx);
      if (single.addsBos) chunk[0] = single.bosToken!;
      return chunk;
    });
    const scoring = await nodeLlamaScoring(model, chunkTokens, true);
    const bare = await nodeLlamaScoring(model, chunkTokens, false);
    let oursPpl = 0;
    let theirPpl = 0;
    const ours = async () => { oursPpl = (await tokenPerplexity(single, tokens, { nCtx, maxChunks: chunks })).ppl; };
    const oursPacked = () => tokenPerplexity(packed, tokens, { nCtx, maxChunks: chunks, maxSequencesPerDecode: 4 });
    const theirs = async () => { theirPpl = await scoring.run(); };
    await ours(); await oursPacked(); await theirs(); await bare.run();
    const t = { ours: [] as number[], packed: [] as number[], theirs: [] as number[], bare: [] as number[] };
    for (let i = 0; i < rounds; i++) {
      log(`  round ${i + 1}/${rounds}`);
      t.theirs.push(await seconds(theirs));
      t.ours.push(await seconds(ours));
      t.bare.push(await seconds(bare.run));
      t.packed.push(await seconds(oursPacked));
    }
    await scoring.dispose();
    await bare.dispose();
    const evaluated = chunks * nCtx;
    const scored = chunks * (nCtx - 1 - nCtx / 2);
    const [o, pk, th, b] = [median(t.ours), median(t.packed), median(t.theirs), median(t.bare)];
    return {
      model: { file: path.basename(modelPath), bytes: fs.statSync(modelPath).size, ...(spec ?? {}) },
      nCtx, chunks, tokensEvaluated: evaluated, tokensScored: scored,
      ppl: { ours: round(oursPpl, 6), nodeLlamaCpp: round(theirPpl, 6), relativeDifference: Number((Math.abs(oursPpl / theirPpl - 1)).toExponential(2)) },
      seconds: { ours: round(o, 4), oursFourChunksPerDecode: round(pk, 4), nodeLlamaCppScoring: round(th, 4), nodeLlamaCppBareEvaluation: round(b, 4) },
      tokensPerSecond: {
        ours: round(evaluated / o, 1), oursFourChunksPerDecode: round(evaluated / pk, 1),
        nodeLlamaCppScoring: round(evaluated / th, 1), nodeLlamaCppBareEvaluation: round(evaluated / b, 1),
      },
      ratio: round(th / o),
      ratioFourChunksPerDecode: round(th / pk),
      ratioToBareEvaluation: round(b / o),
    };
  } finally {
    packed.dispose();
    single.dispose();
    await model.dispose();
  }
}

await inScratchDir('perplexity', async (dir) => {
  const text = corpusText();
  const results = [];
  const stories = process.env.GRAFT_TEST_MODELS && path.join(process.env.GRAFT_TEST_MODELS, 'stories260K-F32.gguf');
  if (stories && fs.existsSync(stories)) {
    results.push(await measure('stories260K', stories, null, (s) => s.tokenize(text, true), 32));
  } else {
    const small = path.join(dir, 'small.gguf');
    const spec = { arch: 'llama' as const, layers: 2, embd: 64, ff: 128, heads: 4, kvHeads: 2, vocab: 320, type: 'f32' as const, seed: 7, contextLength: 512 };
    makeTestModel(native, spec, small);
    results.push(await measure('generated small', small, spec, (s) => s.tokenize(text, true), 32));
  }
  const big = path.join(dir, 'big.gguf');
  const spec = { arch: 'llama' as const, layers: 8, embd: 512, ff: 1408, heads: 8, kvHeads: 4, vocab: 16000, type: 'q8_0' as const, seed: 2, contextLength: 512 };
  log('generating the larger benchmark model…');
  makeTestModel(native, spec, big);
  // Its tokenizer is a toy; spread ids over the vocabulary like real text would.
  results.push(await measure('generated q8_0', big, spec, () => Int32Array.from({ length: 8 * nCtx }, (_, i) => 300 + ((i * 7919) % 15000)), 8));
  report({
    benchmark: 'perplexity',
    threads, rounds,
    results,
    goal: 'ratio (node-llama-cpp scoring time / ours) >= 1.0 on every model',
    meetsGoal: results.every((r) => r.ratio >= 1),
  });
});
