// The Compare screen: one prompt through the base model and through the base with the
// workspace's enabled edits (the cached stack adapter), token by token, both sides in turn so
// the two columns grow together. Each token arrives as a compareToken event with its
// probability and the top-k alternatives.
//
// Sampling is Graft's own, so both sides are seeded identically: seed 0 is greedy (the most
// probable token); any other seed draws from the top-k tokens renormalised (temperature 1),
// each side with its own SeededRandom(seed), so the two sides consume the same random stream
// and differ only where the edits changed the distributions.
import type { LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp';

import type { CompareToken } from '../api/contract.ts';
import { stackAdapter } from '../core/export/stackAdapterCache.ts';
import { SeededRandom } from '../core/util/seededRandom.ts';
import { requireLoaded, stillLoaded, type BackendContext } from './context.ts';
import { CancelledError } from './jobs.ts';

export interface CompareOptions {
  seed: number;
  maxTokens: number;
  topK: number;
}

interface Side {
  name: CompareToken['side'];
  sequence: LlamaContextSequence;
  rng: SeededRandom | null;
  tokens: Token[];
  /** the last evaluation's next-token distribution, sorted by probability (node-llama-cpp sorts it) */
  next: Map<Token, number>;
  done: boolean;
}

function pick(side: Side, topK: number): Token {
  const top = [...side.next.entries()].slice(0, topK);
  if (!side.rng) return top[0]![0];
  const total = top.reduce((s, [, p]) => s + p, 0);
  let r = side.rng.next() * total;
  for (const [token, p] of top) {
    r -= p;
    if (r <= 0) return token;
  }
  return top.at(-1)![0];
}

async function evaluate(side: Side, tokens: Token[]): Promise<void> {
  const results = await side.sequence.controlledEvaluate(tokens.map((t, i) => (i === tokens.length - 1 ? [t, { generateNext: { probabilities: true } }] : t)));
  const probabilities = results[tokens.length - 1]?.next?.probabilities;
  if (!probabilities) throw new Error('node-llama-cpp returned no probabilities');
  side.next = probabilities;
}

export function startCompare(ctx: BackendContext, prompt: string, options: CompareOptions): { jobId: string } {
  const loaded = requireLoaded(ctx, 'compare outputs');
  if (typeof prompt !== 'string' || prompt.trim() === '') throw new Error('the prompt is empty');
  const { seed, maxTokens, topK } = options;
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`the seed must be a whole number of at least 0 (0 = greedy), got ${seed}`);
  if (!Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > 4096) throw new Error(`max tokens must be from 1 to 4096, got ${maxTokens}`);
  if (!Number.isInteger(topK) || topK < 1 || topK > 100) throw new Error(`top-k must be from 1 to 100, got ${topK}`);
  const model: LlamaModel = loaded.model;
  const jobId = ctx.jobs.start('compare', `Compare "${prompt.slice(0, 40)}"`, async (control) => {
    stillLoaded(ctx, loaded);
    const adapter = stackAdapter(await ctx.native(), ctx.db, loaded.workspace);
    const promptTokens = [...(model.tokens.shouldPrependBosToken && model.tokens.bos !== null ? [model.tokens.bos] : []), ...model.tokenize(prompt)];
    const contextSize = promptTokens.length + maxTokens + 1;
    if (contextSize > model.trainContextSize) throw new Error(`the prompt (${promptTokens.length} tokens) and ${maxTokens} new tokens do not fit the model's context of ${model.trainContextSize}`);
    const threads = ctx.settings.get().threads;
    const base = await model.createContext({ contextSize, threads });
    const edited = await model.createContext({ contextSize, threads, ...(adapter.path ? { lora: { adapters: [{ filePath: adapter.path }] } } : {}) });
    try {
      const sides: Side[] = [base, edited].map((c, i) => ({
        name: i === 0 ? 'base' : 'edited', sequence: c.getSequence(), rng: seed === 0 ? null : new SeededRandom(seed), tokens: [], next: new Map(), done: false,
      }));
      for (const side of sides) await evaluate(side, promptTokens);
      for (let index = 0; index < maxTokens && sides.some((s) => !s.done); index++) {
        for (const side of sides) {
          if (side.done) continue;
          if (control.signal.aborted) throw new CancelledError();
          const token = pick(side, topK);
          const text = model.detokenize([token], false, side.tokens.length ? side.tokens.slice(-8) : promptTokens.slice(-8));
          const top = [...side.next.entries()].slice(0, topK).map(([t, p]) => ({ text: model.detokenize([t], false), probability: p }));
          side.tokens.push(token);
          ctx.events.emit('compareToken', control.id, { side: side.name, index, text, probability: side.next.get(token) ?? 0, top });
          if (model.isEogToken(token)) side.done = true;
          else if (index + 1 < maxTokens) await evaluate(side, [token]);
        }
        control.progress({ fraction: (index + 1) / maxTokens, phase: `token ${index + 1}/${maxTokens}` });
      }
      const text = (s: Side) => model.detokenize(s.tokens.filter((t) => !model.isEogToken(t)), false, promptTokens.slice(-8));
      return { base: text(sides[0]!), edited: text(sides[1]!), editIds: adapter.editIds, seed, sampling: seed === 0 ? 'greedy' : `top-${topK}, seeded` };
    } finally {
      await edited.dispose();
      await base.dispose();
    }
  });
  return { jobId };
}
