// Next-token probabilities as node-llama-cpp (llama.cpp) computes them: the independent
// reference Graft checks its own computations and every export against.
import type { ControlledEvaluateInputItem, Llama, LlamaModel, Token } from 'node-llama-cpp';

import { getSharedLlama } from '../models/llama.ts';

export async function withModel<T>(modelPath: string, fn: (model: LlamaModel, llama: Llama) => Promise<T>): Promise<T> {
  const llama = await getSharedLlama();
  const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
  try {
    return await fn(model, llama);
  } finally {
    await model.dispose();
  }
}

/**
 * Full next-token distribution after `text` (BOS added as the model's vocabulary says).
 * `exact` uses an F32 KV cache without flash attention: the default F16 cache alone moves
 * probabilities by ~1e-2.
 */
export async function nextTokenDistribution(model: LlamaModel, text: string, exact = false, lora?: string): Promise<Map<number, number>> {
  return (await nextTokenDistributions(model, [text], exact, lora))[0]!;
}

/** One distribution per text, all through one context (creating a context costs more than a short prompt). */
export async function nextTokenDistributions(model: LlamaModel, texts: string[], exact = false, lora?: string): Promise<Map<number, number>[]> {
  const context = await model.createContext({
    contextSize: 256, threads: 1, batchSize: 256,
    ...(lora ? { lora: { adapters: [{ filePath: lora }] } } : {}),
    ...(exact ? { flashAttention: false, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' } as const : {}),
  });
  try {
    const bos = model.tokens.bos;
    const sequence = context.getSequence();
    const out: Map<number, number>[] = [];
    for (const text of texts) {
      const tokens = [...(model.tokens.shouldPrependBosToken && bos !== null ? [bos] : []), ...model.tokenize(text)];
      await sequence.clearHistory();
      const results = await sequence.controlledEvaluate(
        tokens.map((t, i) => (i === tokens.length - 1 ? [t, { generateNext: { probabilities: true } }] : t)),
      );
      const probabilities = results[tokens.length - 1]?.next?.probabilities;
      if (!probabilities) throw new Error('node-llama-cpp returned no probabilities');
      out.push(new Map([...probabilities].map(([token, p]) => [token as number, p])));
    }
    return out;
  } finally {
    await context.dispose();
  }
}

export async function greedyCompletion(model: LlamaModel, text: string, maxTokens: number): Promise<string> {
  const { LlamaCompletion } = await import('node-llama-cpp');
  const context = await model.createContext({ contextSize: 256, threads: 1 });
  try {
    const completion = new LlamaCompletion({ contextSequence: context.getSequence() });
    return await completion.generateCompletion(text, { maxTokens, temperature: 0 });
  } finally {
    await context.dispose();
  }
}

/**
 * -log p(tokens[j] | tokens[0..j-1]) for j in [scoreFrom, tokens.length) of each sequence,
 * each evaluated from an empty context (F32 cache, no flash attention), from
 * node-llama-cpp's next-token probabilities: the reference for Graft's native scoring.
 */
export async function tokenNlls(model: LlamaModel, sequences: { tokens: ArrayLike<number>; scoreFrom: number }[], contextSize: number): Promise<number[][]> {
  const context = await model.createContext({
    contextSize, batchSize: contextSize, threads: 1, flashAttention: false,
    experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32',
  });
  try {
    const sequence = context.getSequence();
    const out: number[][] = [];
    for (const { tokens, scoreFrom } of sequences) {
      await sequence.clearHistory();
      const items = Array.from(tokens, (t, i): ControlledEvaluateInputItem => (i >= scoreFrom - 1 && i < tokens.length - 1
        ? [t as Token, { generateNext: { probabilities: true } }]
        : t as Token));
      const results = await sequence.controlledEvaluate(items);
      const nlls: number[] = [];
      for (let j = scoreFrom; j < tokens.length; j++) {
        const p = results[j - 1]?.next?.probabilities?.get(tokens[j]! as Token);
        if (p === undefined) throw new Error(`node-llama-cpp returned no probability for token ${j}`);
        nlls.push(-Math.log(p));
      }
      out.push(nlls);
    }
    return out;
  } finally {
    await context.dispose();
  }
}
