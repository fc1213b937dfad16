// The second-moment cache: C = Σ k kᵀ / n of the MLP keys of a layer over a corpus, computed
// once per (model, layer, corpus, token count, context size) and kept as a .moments file.
// Layers not yet on disk are computed together in one pass over the corpus; a cancelled or
// crashed run resumes from its checkpoints.
import { createHash } from 'node:crypto';
import fs from 'node:fs';

import { openLlamaSession } from '../engine/llamaSession.ts';
import { sha256OfFile } from '../models/modelInfo.ts';
import type { GraftNative, MomentsProgress } from '../native/binding.ts';
import { momentsPaths, readMomentsFile, type MomentsKey } from './momentsFile.ts';

export interface SecondMomentsOptions {
  model: string;
  corpus: string;
  layers: number[];
  /** The first tokenCount tokens of the corpus; the whole corpus when omitted. */
  tokenCount?: number;
  /** Chunk length (default 512, as llama.cpp's perplexity tool). */
  contextSize?: number;
  outDir: string;
  threads?: number;
  gpuLayers?: number;
  signal?: AbortSignal;
  onProgress?: (progress: MomentsProgress) => void;
  /** At most this long between checkpoints (default 60 s; 0 = after every chunk). */
  checkpointSeconds?: number;
}

export interface LayerMoments {
  layer: number;
  /** Tokens the matrix averages over. */
  n: number;
  nFf: number;
  /** n_ff × n_ff, row-major (symmetric). */
  matrix: Float64Array;
  file: string;
  /** True when the file already existed; nothing was computed for this layer. */
  cached: boolean;
  /** Tokens taken from a checkpoint of an earlier, interrupted run. */
  resumedFrom: number;
  /** What the file is keyed by, for the history. */
  key: MomentsKey;
}

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('the second-moment job was cancelled', 'AbortError');
}

function checkLayers(layers: number[]): void {
  if (layers.length === 0) throw new Error('give at least one layer');
  for (const l of layers) if (!Number.isInteger(l)) throw new Error(`layer ${l} is not an integer`);
  const dup = layers.find((l, i) => layers.indexOf(l) !== i);
  if (dup !== undefined) throw new Error(`layer ${dup} is listed twice`);
}

export async function computeSecondMoments(native: GraftNative, options: SecondMomentsOptions): Promise<LayerMoments[]> {
  const { layers, signal } = options;
  checkLayers(layers);
  const contextSize = options.contextSize ?? 512;
  if (!Number.isInteger(contextSize) || contextSize < 2) throw new Error(`the context size must be an integer ≥ 2, got ${contextSize}`);
  if (!fs.existsSync(options.corpus)) throw new Error(`corpus file not found: ${options.corpus}`);
  if (fs.statSync(options.corpus).isDirectory()) throw new Error(`the corpus ${options.corpus} is a directory; give a text file`);
  if (!fs.existsSync(options.outDir) || !fs.statSync(options.outDir).isDirectory()) {
    throw new Error(`output folder ${options.outDir} does not exist; create it first`);
  }
  const corpusBytes = fs.readFileSync(options.corpus);
  const text = corpusBytes.toString('utf8');
  if (text.trim() === '') throw new Error(`the corpus ${options.corpus} is empty; give a text file with some text`);
  if (options.tokenCount !== undefined && (!Number.isInteger(options.tokenCount) || options.tokenCount < 1)) {
    throw new Error(`the token count must be a positive integer, got ${options.tokenCount}`);
  }
  if (signal?.aborted) throw abortError(signal);
  const modelSha256 = await sha256OfFile(options.model);
  const corpusSha256 = createHash('sha256').update(corpusBytes).digest('hex');
  const keyOf = (tokenCount: number) => (layer: number): MomentsKey => ({ modelSha256, corpusSha256, layer, tokenCount, contextSize });

  // Every edit asks for its layer's moments; when all are on disk, loading the model only to
  // count the corpus's tokens again would cost more than the edit's solve.
  const knownCount = options.tokenCount ?? corpusTokenCounts.get(`${modelSha256}:${corpusSha256}`);
  if (knownCount !== undefined) {
    const cached = cachedLayers(options.outDir, layers, keyOf(knownCount));
    if (cached.size === layers.length) return layers.map((l) => cached.get(l)!);
  }

  const session = await openLlamaSession(native, options.model, { contextSize, threads: options.threads, gpuLayers: options.gpuLayers });
  try {
    for (const l of layers) {
      if (l < 0 || l >= session.nLayer) throw new Error(`layer ${l} is out of range (the model has ${session.nLayer} layers, 0 to ${session.nLayer - 1})`);
    }
    // Whole text with the vocabulary's special tokens, as llama.cpp's perplexity tool does;
    // each chunk's first token is then replaced by BOS in the addon.
    const all = session.tokenize(text, true);
    corpusTokenCounts.set(`${modelSha256}:${corpusSha256}`, all.length);
    let tokenCount = all.length;
    if (options.tokenCount !== undefined) {
      if (options.tokenCount > all.length) {
        throw new Error(`the corpus ${options.corpus} has only ${all.length} tokens, fewer than the ${options.tokenCount} asked for; lower the token count or omit it to use the whole corpus`);
      }
      tokenCount = options.tokenCount;
    }
    const key = keyOf(tokenCount);
    const done = cachedLayers(options.outDir, layers, key);
    const todo = layers.filter((l) => !done.has(l)).map((layer) => ({ layer, ...momentsPaths(options.outDir, key(layer)) }));
    if (todo.length > 0) {
      const job = session.secondMoments(all.subarray(0, tokenCount), {
        layers: todo, modelSha256, corpusSha256, checkpointSeconds: options.checkpointSeconds,
      }, options.onProgress);
      const onAbort = () => job.cancel();
      signal?.addEventListener('abort', onAbort, { once: true });
      if (signal?.aborted) job.cancel();
      const outcome = await job.done.finally(() => signal?.removeEventListener('abort', onAbort));
      if (outcome.cancelled) throw abortError(signal ?? AbortSignal.abort());
      for (const l of outcome.layers) {
        const { header, matrix } = readMomentsFile(l.file, key(l.layer));
        done.set(l.layer, { layer: l.layer, n: header.n, nFf: header.nFf, matrix, file: l.file, cached: false, resumedFrom: l.resumedFrom, key: key(l.layer) });
      }
    }
    return layers.map((l) => done.get(l)!);
  } finally {
    session.dispose();
  }
}

/** Whole-corpus token counts per (model, corpus) sha256 pair, learned when a corpus is first tokenised. */
const corpusTokenCounts = new Map<string, number>();

function cachedLayers(outDir: string, layers: number[], keyOf: (layer: number) => MomentsKey): Map<number, LayerMoments> {
  const found = new Map<number, LayerMoments>();
  for (const layer of layers) {
    const key = keyOf(layer);
    const { file } = momentsPaths(outDir, key);
    if (!fs.existsSync(file)) continue;
    const { header, matrix } = readMomentsFile(file, key);
    found.set(layer, { layer, n: header.n, nFf: header.nFf, matrix, file, cached: true, resumedFrom: 0, key });
  }
  return found;
}

/** Trace of a row-major square matrix (a quick fingerprint for logs and the CLI). */
export function trace(matrix: Float64Array, n: number): number {
  let t = 0;
  for (let i = 0; i < n; i++) t += matrix[i * n + i]!;
  return t;
}
