// One measurement of a model (the base, or the base with an adapter of edits) by the probes:
// sentence perplexity on a probe set, optionally corpus perplexity by llama.cpp's method, and
// KL to the base on a prompt set. Everything runs in llama.cpp sessions of graft_native with
// the edits applied as a LoRA adapter, so what is measured is what llama.cpp users would run.
import { createHash } from 'node:crypto';

import { openLlamaSession } from '../engine/llamaSession.ts';
import type { GraftNative, NativeLlamaSession } from '../native/binding.ts';
import { baseDistributions, cachedBaseDistributions, klToBase, type KlResult } from './klToBase.ts';
import { corpusPerplexity, type PerplexityResult } from './perplexity.ts';
import type { ProbeSet, PromptSet } from './probeSet.ts';
import { sentencePerplexity, type SentencePerplexityResult } from './sentencePerplexity.ts';

export interface ProbeConfig {
  probeSet: ProbeSet;
  /** null: no KL probe */
  klPrompts: PromptSet | null;
  corpus: { name: string; sha256: string; text: string } | null;
  /** corpus chunk length (llama.cpp's -c) */
  nCtx: number;
  maxChunks: number | null;
  /** sentence perplexity with the first token scored after BOS */
  bos: boolean;
}

/** What identifies a configuration's numbers (the baseline is reused only for an identical one). */
export function configIdentity(c: ProbeConfig): Record<string, unknown> {
  return {
    probeSet: { name: c.probeSet.name, sha256: c.probeSet.sha256, sentences: c.probeSet.sentences.length },
    klPrompts: c.klPrompts ? { name: c.klPrompts.name, sha256: c.klPrompts.sha256, prompts: c.klPrompts.prompts.length } : null,
    corpus: c.corpus ? { name: c.corpus.name, sha256: c.corpus.sha256 } : null,
    nCtx: c.nCtx, maxChunks: c.maxChunks, bos: c.bos,
  };
}

export function configSha256(c: ProbeConfig): string {
  return createHash('sha256').update(JSON.stringify(configIdentity(c))).digest('hex');
}

export interface ProbeResults {
  sentence: Omit<SentencePerplexityResult, 'sentences'> & { perSentence: number[] };
  corpus: Omit<PerplexityResult, 'perChunk'> | null;
  kl: Omit<KlResult, 'prompts'> & { perPrompt: number[] } | null;
  seconds: number;
}

export interface MeasureOptions {
  /** the base model's sha256: the key of its cached KL distributions */
  modelKey: string;
  /** the folder for the base distributions' cache file */
  cacheDir?: string;
  threads?: number;
  signal?: AbortSignal;
  onProgress?: (p: { probe: 'sentence' | 'corpus' | 'kl'; done: number; total: number }) => void;
}

async function withSession<T>(native: GraftNative, model: string, adapter: string | null, contextSize: number, threads: number | undefined, fn: (s: NativeLlamaSession) => Promise<T>): Promise<T> {
  const session = await openLlamaSession(native, model, {
    contextSize, ...(threads !== undefined ? { threads } : {}), ...(adapter ? { lora: [{ path: adapter, scale: 1 }] } : {}),
  });
  try {
    return await fn(session);
  } finally {
    session.dispose();
  }
}

export async function measure(native: GraftNative, model: string, adapter: string | null, config: ProbeConfig, o: MeasureOptions): Promise<ProbeResults> {
  const started = performance.now();
  const contextSize = Math.max(256, config.corpus ? config.nCtx : 0);
  const cache = { modelKey: o.modelKey, ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}) };
  const signal = o.signal ? { signal: o.signal } : {};
  return withSession(native, model, adapter, contextSize, o.threads, async (session) => {
    let kl: ProbeResults['kl'] = null;
    if (config.klPrompts) {
      const prompts = config.klPrompts.prompts;
      // the base's distributions come from the cache; only a miss opens the base model
      const base = cachedBaseDistributions(prompts, { ...cache, nVocab: session.nVocab })
        ?? (adapter ? await withSession(native, model, null, 256, o.threads, (b) => baseDistributions(b, prompts, { ...cache, ...signal }))
          : await baseDistributions(session, prompts, { ...cache, ...signal }));
      const { prompts: perPrompt, ...k } = await klToBase(session, base, signal);
      kl = { ...k, perPrompt: perPrompt.map((p) => p.kl) };
    }
    const s = await sentencePerplexity(session, config.probeSet.sentences, {
      bos: config.bos, ...signal, onProgress: (p) => o.onProgress?.({ probe: 'sentence', done: p.sentencesDone, total: p.sentencesTotal }),
    });
    const { sentences, ...sentence } = s;
    let corpus: ProbeResults['corpus'] = null;
    if (config.corpus) {
      const { perChunk: _, ...c } = await corpusPerplexity(session, config.corpus.text, {
        nCtx: config.nCtx, ...(config.maxChunks !== null ? { maxChunks: config.maxChunks } : {}), ...signal,
        onProgress: (p) => o.onProgress?.({ probe: 'corpus', done: p.chunksDone, total: p.chunksTotal }),
      });
      corpus = c;
    }
    return { sentence: { ...sentence, perSentence: sentences.map((x) => x.ppl) }, corpus, kl, seconds: (performance.now() - started) / 1000 };
  });
}
