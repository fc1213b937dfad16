// How far an edited model's next-token distributions have moved from the base model's on a
// fixed prompt set: KL(base ‖ edited) per prompt (mean and 99th percentile), how often the
// most likely token is still the same, and how much probability the base model's top token
// lost. These are llama.cpp's --kl-divergence signals (engine-notes §7), but on full float
// log-probabilities rather than its 16-bit quantised ones, and on the next token after each
// prompt rather than on every token of a corpus.
//
// The base distributions depend only on the model and the prompts, so they are computed
// once: kept in memory for the process, and optionally in a compact file (one float32
// log-prob row per prompt) under a cache folder the caller owns.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import type { NativeLlamaSession } from '../native/binding.ts';

export interface BaseDistributionsOptions {
  /** Identifies the base model: its sha256 (preferred) or resolved path. */
  modelKey: string;
  /** Folder for the on-disk cache; nothing is written without it. */
  cacheDir?: string;
  signal?: AbortSignal;
}

export interface BaseDistributions {
  modelKey: string;
  /** sha256 of the prompt list (JSON). */
  promptsSha256: string;
  prompts: string[];
  nVocab: number;
  /** prompts × nVocab next-token log-probabilities of the base model. */
  logprobs: Float32Array;
  /** Where this copy came from. */
  source: 'computed' | 'memory' | 'disk';
  /** The cache file when a cacheDir was given. */
  file?: string;
}

export interface PromptKl {
  index: number;
  prompt: string;
  /** KL(base ‖ edited) of the next-token distribution, in nats. */
  kl: number;
  baseTop: number;
  editedTop: number;
  /** p of the base model's top token under the base and the edited model. */
  baseTopP: number;
  editedTopPOfBaseTop: number;
  /** editedTopPOfBaseTop − baseTopP. */
  deltaP: number;
}

export interface KlResult {
  meanKl: number;
  /** Nearest-rank 99th percentile of the per-prompt KL. */
  p99Kl: number;
  maxKl: number;
  /** Fraction of prompts whose most likely next token is unchanged. */
  top1Agreement: number;
  meanDeltaP: number;
  /** The most negative Δp of the base's top token (the prompt that lost most). */
  worstDeltaP: number;
  worstPrompt: number;
  prompts: PromptKl[];
  seconds: number;
}

const memory = new Map<string, Omit<BaseDistributions, 'source'>>();

export function clearBaseDistributionCache(): void {
  memory.clear();
}

export function promptSetSha256(prompts: string[]): string {
  return createHash('sha256').update(JSON.stringify(prompts)).digest('hex');
}

function cacheKey(modelKey: string, promptsSha256: string): string {
  return `${modelKey}\n${promptsSha256}`;
}

export function baseCacheFile(cacheDir: string, modelKey: string, promptsSha256: string): string {
  const name = createHash('sha256').update(cacheKey(modelKey, promptsSha256)).digest('hex').slice(0, 32);
  return path.join(cacheDir, `kl-base-${name}.bin`);
}

// File layout: "GRAFTKL1", u32 header length, the JSON header (modelKey, promptsSha256,
// nVocab, prompts: count) padded to 4 bytes, then prompts × nVocab little-endian float32.
const MAGIC = 'GRAFTKL1';

interface FileHeader {
  modelKey: string;
  promptsSha256: string;
  nVocab: number;
  prompts: number;
}

function writeCacheFile(file: string, header: FileHeader, logprobs: Float32Array): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 4) * 4;
  const head = Buffer.alloc(8 + 4 + padded, 0x20);
  head.write(MAGIC, 0, 'latin1');
  head.writeUInt32LE(padded, 8);
  json.copy(head, 12);
  const body = Buffer.from(logprobs.buffer, logprobs.byteOffset, logprobs.byteLength);
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, head);
    fs.writeSync(fd, body);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

/** The cached rows, or null when the file is absent or does not hold exactly what is expected. */
function readCacheFile(file: string, expected: FileHeader): Float32Array | null {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch {
    return null;
  }
  if (bytes.length < 12 || bytes.toString('latin1', 0, 8) !== MAGIC) return null;
  const headerLength = bytes.readUInt32LE(8);
  if (12 + headerLength > bytes.length) return null;
  let header: FileHeader;
  try {
    header = JSON.parse(bytes.toString('utf8', 12, 12 + headerLength)) as FileHeader;
  } catch {
    return null;
  }
  if (header.modelKey !== expected.modelKey || header.promptsSha256 !== expected.promptsSha256 ||
      header.nVocab !== expected.nVocab || header.prompts !== expected.prompts) return null;
  const body = bytes.subarray(12 + headerLength);
  if (body.length !== expected.prompts * expected.nVocab * 4) return null;
  const rows = new Float32Array(expected.prompts * expected.nVocab);
  new Uint8Array(rows.buffer).set(body);
  return rows;
}

/** Next-token log-prob rows after each prompt (tokenized with BOS as the model adds it). */
export async function nextTokenLogprobs(session: NativeLlamaSession, prompts: string[], signal?: AbortSignal): Promise<Float32Array> {
  if (prompts.length === 0) throw new Error('the prompt list is empty; give at least one prompt to compare the models on');
  const requests = prompts.map((prompt, i) => {
    const tokens = session.tokenize(prompt, true);
    if (tokens.length === 0) throw new Error(`prompt ${i} is empty; every prompt needs at least one token`);
    if (tokens.length > session.contextSize) {
      throw new Error(`prompt ${i} is ${tokens.length} tokens long but the session's context holds ${session.contextSize}; shorten it or open the session with a larger contextSize`);
    }
    return { tokens, scoreFrom: tokens.length, scoreTo: tokens.length, rows: [tokens.length - 1] };
  });
  const nVocab = session.nVocab;
  const out = new Float32Array(prompts.length * nVocab);
  const perCall = 256;
  for (let start = 0; start < requests.length; start += perCall) {
    signal?.throwIfAborted();
    const result = await session.score(requests.slice(start, start + perCall));
    result.sequences.forEach((s, i) => out.set(s.rows!, (start + i) * nVocab));
  }
  return out;
}

/** The base distributions from memory or the cache file, without touching a model; null when neither has them. */
export function cachedBaseDistributions(prompts: string[], options: Omit<BaseDistributionsOptions, 'signal'> & { nVocab: number }): BaseDistributions | null {
  if (!options.modelKey) throw new Error('baseDistributions needs a modelKey (the base model\'s sha256 or path) to cache under');
  const promptsSha256 = promptSetSha256(prompts);
  const key = cacheKey(options.modelKey, promptsSha256);
  const file = options.cacheDir ? baseCacheFile(options.cacheDir, options.modelKey, promptsSha256) : undefined;
  const held = memory.get(key);
  if (held && held.nVocab === options.nVocab) return { ...held, source: 'memory', ...(file ? { file } : {}) };
  if (!file) return null;
  const entry = { modelKey: options.modelKey, promptsSha256, prompts: [...prompts], nVocab: options.nVocab };
  const rows = readCacheFile(file, { modelKey: options.modelKey, promptsSha256, nVocab: options.nVocab, prompts: prompts.length });
  if (!rows) return null;
  memory.set(key, { ...entry, logprobs: rows });
  return { ...entry, logprobs: rows, source: 'disk', file };
}

/** The base model's next-token distributions on the prompts: from memory, the cache file, or computed (and cached). */
export async function baseDistributions(base: NativeLlamaSession, prompts: string[], options: BaseDistributionsOptions): Promise<BaseDistributions> {
  const cached = cachedBaseDistributions(prompts, { modelKey: options.modelKey, ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}), nVocab: base.nVocab });
  if (cached) return cached;
  const promptsSha256 = promptSetSha256(prompts);
  const file = options.cacheDir ? baseCacheFile(options.cacheDir, options.modelKey, promptsSha256) : undefined;
  const header: FileHeader = { modelKey: options.modelKey, promptsSha256, nVocab: base.nVocab, prompts: prompts.length };
  const entry = { modelKey: options.modelKey, promptsSha256, prompts: [...prompts], nVocab: base.nVocab };
  const logprobs = await nextTokenLogprobs(base, prompts, options.signal);
  memory.set(cacheKey(options.modelKey, promptsSha256), { ...entry, logprobs });
  if (file) writeCacheFile(file, header, logprobs);
  return { ...entry, logprobs, source: 'computed', ...(file ? { file } : {}) };
}

/** KL(p ‖ q) = Σ p (log p − log q) from log-probabilities, summed in double. */
export function klDivergence(logP: ArrayLike<number>, logQ: ArrayLike<number>): number {
  let kl = 0;
  for (let t = 0; t < logP.length; t++) {
    const p = Math.exp(logP[t]!);
    if (p === 0) continue;  // 0 · log 0 = 0, even where q is 0 too
    kl += p * (logP[t]! - logQ[t]!);
  }
  return kl;
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let t = 1; t < row.length; t++) if (row[t]! > row[best]!) best = t;
  return best;
}

/** Nearest-rank percentile (q in (0, 1]) of a list of numbers. */
export function percentile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(q * s.length) - 1)]!;
}

/** Compares the edited session (the base with its edits attached as LoRA adapters) with the base's distributions. */
export async function klToBase(edited: NativeLlamaSession, base: BaseDistributions, options: { signal?: AbortSignal } = {}): Promise<KlResult> {
  const started = performance.now();
  if (edited.nVocab !== base.nVocab) {
    throw new Error(`the edited model has ${edited.nVocab} tokens in its vocabulary but the base distributions ${base.nVocab}; they are not the same model`);
  }
  const n = base.nVocab;
  const rows = await nextTokenLogprobs(edited, base.prompts, options.signal);
  const prompts: PromptKl[] = base.prompts.map((prompt, index) => {
    const b = base.logprobs.subarray(index * n, (index + 1) * n);
    const e = rows.subarray(index * n, (index + 1) * n);
    const baseTop = argmax(b);
    const baseTopP = Math.exp(b[baseTop]!);
    const editedTopPOfBaseTop = Math.exp(e[baseTop]!);
    return {
      index, prompt, kl: klDivergence(b, e), baseTop, editedTop: argmax(e),
      baseTopP, editedTopPOfBaseTop, deltaP: editedTopPOfBaseTop - baseTopP,
    };
  });
  const kls = prompts.map((p) => p.kl);
  const worst = prompts.reduce((w, p) => (p.deltaP < w.deltaP ? p : w), prompts[0]!);
  return {
    meanKl: kls.reduce((a, b) => a + b, 0) / kls.length,
    p99Kl: percentile(kls, 0.99),
    maxKl: Math.max(...kls),
    top1Agreement: prompts.filter((p) => p.baseTop === p.editedTop).length / prompts.length,
    meanDeltaP: prompts.reduce((a, p) => a + p.deltaP, 0) / prompts.length,
    worstDeltaP: worst.deltaP,
    worstPrompt: worst.index,
    prompts,
    seconds: (performance.now() - started) / 1000,
  };
}
