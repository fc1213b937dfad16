// The second moments C = E[k kᵀ] of the MLP keys at the edited layers, from the G2 statistics
// cache (a corpus file, or text the model samples itself), with their Cholesky factors kept
// per file so that every later edit of the same layer solves in O(n²).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { sha256OfFile } from '../models/modelInfo.ts';
import type { CholeskyFactor, GraftNative } from '../native/binding.ts';
import type { NativeGraphModel } from '../native/graphTypes.ts';
import { readMomentsFile } from '../stats/momentsFile.ts';
import { computeSecondMoments } from '../stats/secondMoments.ts';
import { detokenize, sampleContinuations } from './sampling.ts';

export interface StatisticsSource {
  modelPath: string;
  /** Corpus for the second moments; without it the model samples its own text. */
  corpus?: string;
  /** Tokens of the corpus used (default: all, or 8192 sampled). */
  statisticsTokens?: number;
  statisticsDir?: string;
  /** A second-moment file computed before (e.g. the one an earlier edit recorded): used as is. One layer only. */
  statisticsFile?: string;
  /** Seed of the sampled corpus. */
  seed: number;
  signal?: AbortSignal;
}

export interface StatisticsUsed {
  file: string;
  layer: number;
  corpusSha256: string;
  tokenCount: number;
  contextSize: number;
}

export interface LayerStatistics {
  layer: number;
  nFf: number;
  /** Tokens the moments were averaged over. */
  tokens: number;
  /** E[k kᵀ], row-major n_ff × n_ff. */
  matrix: Float64Array;
  /** x = (C + ridge · mean(diag C) · I)⁻¹ b */
  solve: (b: Float64Array) => Float64Array;
  /** ridge · mean(diag C): what was added to the diagonal before factorising. */
  diagonalShift: number;
  used: StatisticsUsed;
}

const factors = new Map<string, Promise<CholeskyFactor>>();

export function defaultStatisticsDir(): string {
  return path.join(os.homedir(), '.cache', 'graft', 'moments');
}

/** Text sampled from the model itself, kept next to the statistics so reruns reuse it. */
async function sampledCorpus(graph: NativeGraphModel, modelSha: string, tokens: number, seed: number, dir: string): Promise<string> {
  const file = path.join(dir, `sampled-${modelSha.slice(0, 16)}-seed${seed}-${tokens}.txt`);
  if (fs.existsSync(file)) return file;
  const perText = Math.min(128, graph.info.contextLength - 1);
  const count = Math.ceil(tokens / perText);
  const bos = graph.tokenize('', true);
  const texts = await sampleContinuations(graph, Array.from({ length: count }, () => bos), { lengths: Array(count).fill(perText), topK: 40, seed });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, texts.map((t) => detokenize(graph, t)).join('\n'));
  fs.renameSync(tmp, file);
  return file;
}

interface Moments {
  file: string;
  layer: number;
  n: number;
  nFf: number;
  matrix: Float64Array;
  key: { corpusSha256: string; tokenCount: number; contextSize: number };
}

function momentsFromFile(file: string, modelSha256: string, layer: number): Moments {
  if (!fs.existsSync(file)) throw new Error(`the second-moment file ${file} is missing; compute the statistics again (give --corpus)`);
  const { header, matrix } = readMomentsFile(file);
  if (header.modelSha256 !== modelSha256) throw new Error(`${file} holds statistics of another model`);
  if (header.layer !== layer) throw new Error(`${file} holds statistics of layer ${header.layer}, not ${layer}`);
  return { file, layer, n: header.n, nFf: header.nFf, matrix, key: header };
}

/** Second moments and solves for each layer, computed in one pass over the corpus when missing from the cache. */
export async function layerStatistics(native: GraftNative, graph: NativeGraphModel, source: StatisticsSource, layers: number[], ridge: number): Promise<LayerStatistics[]> {
  const dir = source.statisticsDir ?? defaultStatisticsDir();
  fs.mkdirSync(dir, { recursive: true });
  const modelSha = await sha256OfFile(source.modelPath);
  let moments: Moments[];
  if (source.statisticsFile) {
    if (layers.length !== 1) throw new Error('a single statistics file serves one layer; give a corpus for several layers');
    moments = [momentsFromFile(source.statisticsFile, modelSha, layers[0]!)];
  } else {
    moments = await computeSecondMoments(native, {
      model: source.modelPath,
      corpus: source.corpus ?? (await sampledCorpus(graph, modelSha, source.statisticsTokens ?? 8192, source.seed, dir)),
      layers, outDir: dir, contextSize: Math.min(512, graph.info.contextLength),
      ...(source.statisticsTokens !== undefined && source.corpus !== undefined ? { tokenCount: source.statisticsTokens } : {}),
      ...(source.signal ? { signal: source.signal } : {}),
    });
  }
  return Promise.all(moments.map(async (m) => {
    let trace = 0;
    for (let i = 0; i < m.nFf; i++) trace += m.matrix[i * m.nFf + i]!;
    const diagonalShift = (ridge * trace) / m.nFf;
    const cacheKey = `${m.file}:${ridge}`;
    let cached = factors.get(cacheKey);
    if (!cached) {
      cached = native.factorSpd(m.matrix, m.nFf, diagonalShift);
      factors.set(cacheKey, cached);
      cached.catch(() => factors.delete(cacheKey));
    }
    const factor = await cached;
    return {
      layer: m.layer, nFf: m.nFf, tokens: m.n, matrix: m.matrix, diagonalShift,
      solve: (b: Float64Array) => factor.solve(b),
      used: { file: m.file, layer: m.layer, corpusSha256: m.key.corpusSha256, tokenCount: m.key.tokenCount, contextSize: m.key.contextSize },
    };
  }));
}
