// Corpus perplexity by llama.cpp's own method (tools/perplexity, engine-notes §7), so a
// number Graft reports can be compared with `llama-perplexity` on the same text and context:
// the whole text is tokenized once (BOS added as the vocabulary says), cut into chunks of
// nCtx tokens, each chunk evaluated from an empty cache with its first token overwritten by
// BOS when the model adds one, and only the second half of each chunk scored, so every
// scored token has at least nCtx/2 tokens of context.
import type { NativeLlamaSession } from '../native/binding.ts';

export interface PerplexityOptions {
  /** Tokens per chunk (llama.cpp's -c). Default: the session's context size. */
  nCtx?: number;
  /** Score at most this many chunks (llama.cpp's --chunks). Default: every whole chunk. */
  maxChunks?: number;
  /** Chunks evaluated side by side per decode when the session's context holds several (see ScoreOptions; default 1). */
  maxSequencesPerDecode?: number;
  onProgress?: (progress: { chunksDone: number; chunksTotal: number }) => void;
  signal?: AbortSignal;
}

export interface ChunkPerplexity {
  /** The chunk covers text tokens [index·nCtx, (index+1)·nCtx). */
  index: number;
  nllMean: number;
  ppl: number;
}

export interface PerplexityResult {
  /** exp(nllMean). */
  ppl: number;
  /** Mean negative log-likelihood (natural log) over every scored token. */
  nllMean: number;
  /** Standard error of ppl as llama.cpp prints it (± after "Final estimate"). */
  pplStdError: number;
  tokensScored: number;
  /** Tokens of the whole text (with BOS when the model adds it). */
  textTokens: number;
  chunks: number;
  nCtx: number;
  perChunk: ChunkPerplexity[];
  seconds: number;
}

/** Tokenizes `text` the way llama.cpp's perplexity tool does and scores it. */
export async function corpusPerplexity(session: NativeLlamaSession, text: string, options: PerplexityOptions = {}): Promise<PerplexityResult> {
  const started = performance.now();
  const tokens = session.tokenize(text, true);
  const result = await tokenPerplexity(session, tokens, options);
  return { ...result, seconds: (performance.now() - started) / 1000 };
}

/** Perplexity of already tokenized text (tokenize(text, true), as llama.cpp does). */
export async function tokenPerplexity(session: NativeLlamaSession, tokens: Int32Array, options: PerplexityOptions = {}): Promise<PerplexityResult> {
  const started = performance.now();
  const nCtx = options.nCtx ?? session.contextSize;
  if (!Number.isInteger(nCtx) || nCtx < 4) throw new Error(`nCtx must be an integer of at least 4, got ${nCtx}`);
  if (nCtx > session.contextSize) {
    throw new Error(`perplexity with nCtx ${nCtx} needs a session whose context holds at least ${nCtx} tokens (this one holds ${session.contextSize}); open it with a larger contextSize or use a smaller nCtx`);
  }
  if (tokens.length < 2 * nCtx) {
    throw new Error(`the text is only ${tokens.length} tokens long, but perplexity with a context of ${nCtx} needs at least ${2 * nCtx} tokens (two chunks); give a longer text or a smaller nCtx`);
  }
  if (options.maxChunks !== undefined && (!Number.isInteger(options.maxChunks) || options.maxChunks < 1)) {
    throw new Error(`maxChunks must be a positive integer, got ${options.maxChunks}`);
  }
  const available = Math.floor(tokens.length / nCtx);
  const chunks = Math.min(available, options.maxChunks ?? available);
  const first = Math.floor(nCtx / 2);
  const bos = session.addsBos ? session.bosToken : null;

  // Several chunks per native call, so the JS round trip is noise, yet progress and
  // cancellation still come often.
  const perCall = 8;
  const perChunk: ChunkPerplexity[] = [];
  let nllSum = 0;
  let nllSqSum = 0;
  let count = 0;
  for (let start = 0; start < chunks; start += perCall) {
    options.signal?.throwIfAborted();
    const requests = [];
    for (let c = start; c < Math.min(chunks, start + perCall); c++) {
      const chunk = tokens.slice(c * nCtx, (c + 1) * nCtx);
      if (bos !== null) chunk[0] = bos;
      // Position p predicts token p+1; llama.cpp scores positions first … nCtx−2.
      requests.push({ tokens: chunk, scoreFrom: first + 1, scoreTo: nCtx });
    }
    const scored = await session.score(requests, options.maxSequencesPerDecode === undefined ? {} : { maxSequencesPerDecode: options.maxSequencesPerDecode });
    scored.sequences.forEach((s, i) => {
      let chunkSum = 0;
      for (const nll of s.nll) {
        chunkSum += nll;
        nllSqSum += nll * nll;
      }
      nllSum += chunkSum;
      count += s.nll.length;
      const mean = chunkSum / s.nll.length;
      perChunk.push({ index: start + i, nllMean: mean, ppl: Math.exp(mean) });
    });
    options.onProgress?.({ chunksDone: perChunk.length, chunksTotal: chunks });
  }
  const nllMean = nllSum / count;
  const ppl = Math.exp(nllMean);
  const variance = nllSqSum / count - nllMean * nllMean;
  return {
    ppl, nllMean,
    pplStdError: variance > 0 && count > 1 ? Math.sqrt(variance / (count - 1)) * ppl : 0,
    tokensScored: count,
    textTokens: tokens.length,
    chunks, nCtx, perChunk,
    seconds: (performance.now() - started) / 1000,
  };
}
