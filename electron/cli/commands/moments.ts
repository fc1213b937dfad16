// `graft moments`: second moments C = Σ k kᵀ / n of the MLP keys over a corpus, per layer,
// cached as .moments files (computed once, then loaded). Progress goes to stderr; Ctrl-C
// stops after the current chunk and keeps a checkpoint, so the same command resumes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { loadNative } from '../../core/native/binding.ts';
import { computeSecondMoments, trace } from '../../core/stats/secondMoments.ts';
import { integerOption, parseCommandArgs, threadsOption } from '../args.ts';
import { UsageError } from '../errors.ts';

export const momentsUsage = 'graft moments MODEL --corpus FILE --layer L[,L2,...] [--tokens N] [--context N] [--out DIR] [--threads N] [--json]';

export function defaultMomentsDir(): string {
  const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cache, 'graft', 'moments');
}

function layerList(value: string | undefined): number[] {
  if (value === undefined) throw new UsageError(`--layer is required\nusage: ${momentsUsage}`);
  return value.split(',').map((part) => integerOption(part.trim(), '--layer'));
}

export async function runMoments(argv: string[]): Promise<void> {
  const { values, positionals } = parseCommandArgs(argv, {
    corpus: { type: 'string' }, layer: { type: 'string' }, tokens: { type: 'string' }, context: { type: 'string' },
    out: { type: 'string' }, threads: { type: 'string' }, json: { type: 'boolean', default: false },
  }, momentsUsage);
  if (positionals.length !== 1) throw new UsageError(`give exactly one model file\nusage: ${momentsUsage}`);
  if (values.corpus === undefined) throw new UsageError(`--corpus is required\nusage: ${momentsUsage}`);
  const layers = layerList(values.layer);
  const tokenCount = values.tokens === undefined ? undefined : integerOption(values.tokens, '--tokens');
  if (tokenCount !== undefined && tokenCount < 1) throw new UsageError(`--tokens must be at least 1, got ${tokenCount}`);
  const contextSize = integerOption(values.context, '--context', 512);
  if (contextSize < 2) throw new UsageError(`--context must be at least 2, got ${contextSize}`);
  const threads = threadsOption(values.threads);
  let outDir = values.out;
  if (outDir === undefined) {
    outDir = defaultMomentsDir();
    fs.mkdirSync(outDir, { recursive: true });
  }

  const native = await loadNative();
  const controller = new AbortController();
  const onSigint = () => controller.abort(new Error('cancelled; the checkpoint is kept: run the same command again to resume'));
  process.once('SIGINT', onSigint);
  let lastReport = 0;
  const started = Date.now();
  try {
    const result = await computeSecondMoments(native, {
      model: positionals[0]!, corpus: values.corpus, layers, tokenCount, contextSize, outDir, threads, signal: controller.signal,
      onProgress: ({ tokensDone, tokensTotal }) => {
        const now = Date.now();
        if (now - lastReport < 1000 && tokensDone < tokensTotal) return;
        lastReport = now;
        const rate = tokensDone / Math.max(1e-3, (now - started) / 1000);
        process.stderr.write(`moments: ${tokensDone}/${tokensTotal} tokens (${((100 * tokensDone) / tokensTotal).toFixed(1)}%, ${rate.toFixed(0)} tokens/s)\n`);
      },
    });
    const layersOut = result.map((m) => ({
      layer: m.layer, n: m.n, nFf: m.nFf, file: m.file, trace: trace(m.matrix, m.nFf), cached: m.cached, resumedFrom: m.resumedFrom,
    }));
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ contextSize, layers: layersOut })}\n`);
    } else {
      for (const l of layersOut) {
        process.stdout.write(`layer ${l.layer}: n=${l.n} n_ff=${l.nFf} trace=${l.trace.toPrecision(6)}${l.cached ? ' (cached)' : ''}\n  ${l.file}\n`);
      }
    }
  } finally {
    process.off('SIGINT', onSigint);
  }
}
