// Sentence perplexity, ME-PPL style (Yang et al., "The Butterfly Effect of Model Editing"):
// each sentence is scored on its own, its perplexity is exp(mean token NLL), and the probe's
// value is the mean of those perplexities over the sentences. Collapse shows up as a few
// sentences whose perplexity explodes, so the median and the worst sentences are reported
// next to the mean.
import type { NativeLlamaSession, ScoreSequenceRequest } from '../native/binding.ts';

export interface SentencePerplexityOptions {
  /**
   * true: the sentence follows BOS and its first token is scored given BOS; false: the first
   * token is context only. Default: whether the model adds BOS.
   */
  bos?: boolean;
  /** How many of the highest-perplexity sentences to list (default 5). */
  worst?: number;
  /** Sentences evaluated side by side per decode (see ScoreOptions; default 1). */
  maxSequencesPerDecode?: number;
  onProgress?: (progress: { sentencesDone: number; sentencesTotal: number }) => void;
  signal?: AbortSignal;
}

export interface SentenceScore {
  /** Index in the input list. */
  index: number;
  text: string;
  tokensScored: number;
  nllMean: number;
  ppl: number;
}

export interface SentencePerplexityResult {
  /** Mean over sentences of exp(mean token NLL): the ME-PPL value. */
  meanPpl: number;
  medianPpl: number;
  /** Token-weighted mean NLL over all scored tokens (exp of it is the pooled perplexity). */
  nllMean: number;
  sentences: SentenceScore[];
  /** The highest-perplexity sentences, worst first. */
  worst: SentenceScore[];
  /** Input indices of sentences with no token to score (e.g. one token and bos: false). */
  skipped: number[];
  tokensScored: number;
  bos: boolean;
  /** Forward passes used. */
  decodes: number;
  seconds: number;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export async function sentencePerplexity(session: NativeLlamaSession, sentences: string[], options: SentencePerplexityOptions = {}): Promise<SentencePerplexityResult> {
  const started = performance.now();
  if (sentences.length === 0) throw new Error('the sentence list is empty; give at least one sentence to score');
  const bos = options.bos ?? session.addsBos;
  if (bos && session.bosToken === null) throw new Error('this model\'s vocabulary has no BOS token; score the sentences with bos: false');
  const requests: { index: number; request: ScoreSequenceRequest }[] = [];
  const skipped: number[] = [];
  sentences.forEach((text, index) => {
    if (typeof text !== 'string') throw new Error(`sentence ${index} is not a string`);
    const body = session.tokenize(text, false);
    const tokens = bos ? Int32Array.from([session.bosToken!, ...body]) : body;
    if (tokens.length < 2) {
      skipped.push(index);
      return;
    }
    if (tokens.length > session.contextSize) {
      throw new Error(`sentence ${index} is ${tokens.length} tokens long but the session's context holds ${session.contextSize}; open the session with a larger contextSize or shorten the sentence`);
    }
    requests.push({ index, request: { tokens, scoreFrom: 1 } });
  });
  if (requests.length === 0) throw new Error(`none of the ${sentences.length} sentences has a token to score (each needs at least ${bos ? 1 : 2} token${bos ? '' : 's'})`);

  // Many sentences per native call: one worker job, one promise, for the lot.
  const perCall = 256;
  const scores: SentenceScore[] = [];
  let nllSum = 0;
  let count = 0;
  let decodes = 0;
  for (let start = 0; start < requests.length; start += perCall) {
    options.signal?.throwIfAborted();
    const part = requests.slice(start, start + perCall);
    const result = await session.score(part.map((r) => r.request), options.maxSequencesPerDecode === undefined ? {} : { maxSequencesPerDecode: options.maxSequencesPerDecode });
    decodes += result.decodes;
    result.sequences.forEach((s, i) => {
      let sum = 0;
      for (const nll of s.nll) sum += nll;
      nllSum += sum;
      count += s.nll.length;
      const index = part[i]!.index;
      const nllMean = sum / s.nll.length;
      scores.push({ index, text: sentences[index]!, tokensScored: s.nll.length, nllMean, ppl: Math.exp(nllMean) });
    });
    options.onProgress?.({ sentencesDone: scores.length, sentencesTotal: requests.length });
  }
  const ppls = scores.map((s) => s.ppl);
  return {
    meanPpl: ppls.reduce((a, b) => a + b, 0) / ppls.length,
    medianPpl: median(ppls),
    nllMean: nllSum / count,
    sentences: scores,
    worst: [...scores].sort((a, b) => b.ppl - a.ppl).slice(0, options.worst ?? 5),
    skipped,
    tokensScored: count,
    bos,
    decodes,
    seconds: (performance.now() - started) / 1000,
  };
}
