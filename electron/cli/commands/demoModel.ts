import fs from 'node:fs';
import path from 'node:path';

import { buildDemoModel, demoModelFiles, demoModelSeed } from '../../core/demo/demoModel.ts';
import { loadNative } from '../../core/native/binding.ts';
import { integerOption, parseCommandArgs } from '../args.ts';
import { UsageError } from '../errors.ts';

export const demoModelUsage = 'graft demo-model [--out DIR] [--seed S] [--steps N] [--threads N] [--force] [--json]';

function percent(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

export async function runDemoModel(argv: string[]): Promise<void> {
  const { values, positionals } = parseCommandArgs(argv, {
    out: { type: 'string', default: 'demo-model' },
    seed: { type: 'string' },
    steps: { type: 'string' },
    threads: { type: 'string', default: '1' },
    force: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  }, demoModelUsage);
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'\nusage: ${demoModelUsage}`);
  const outDir = path.resolve(values.out);
  const existing = Object.values(demoModelFiles).filter((f) => fs.existsSync(path.join(outDir, f)));
  if (existing.length && !values.force) {
    throw new UsageError(`${outDir} already holds ${existing.join(', ')}; choose another --out or add --force to replace them`);
  }
  const seed = integerOption(values.seed, '--seed', demoModelSeed);
  const steps = values.steps === undefined ? undefined : integerOption(values.steps, '--steps');
  if (steps !== undefined && steps < 1) throw new UsageError('--steps must be at least 1');
  const threads = integerOption(values.threads, '--threads');
  const native = await loadNative();
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.once('SIGINT', onSigint);
  try {
    const report = await buildDemoModel(native, {
      outDir, seed, threads, signal: controller.signal, ...(steps === undefined ? {} : { steps }),
      onStage: (s) => process.stderr.write(`${s}…\n`),
      onProgress: (p) => process.stderr.write(`step ${p.step}/${p.steps}  loss ${p.loss.toFixed(4)}  lr ${p.lr.toExponential(2)}  epoch ${p.epoch}  ${p.seconds.toFixed(0)} s\n`),
    });
    if (values.json) {
      process.stdout.write(`${JSON.stringify(report, null, 1)}\n`);
      return;
    }
    const lines = [
      `wrote ${outDir}: ${report.files.f32.name}, ${report.files.q8_0.name}, ${demoModelFiles.groundTruth}, ${demoModelFiles.corpus}, ${demoModelFiles.report}`,
      `${report.parameters} parameters, vocabulary ${report.vocabulary}, trained ${report.training.seconds} s (${report.training.epochs} epochs, final loss ${report.training.finalLoss.toFixed(3)})`,
    ];
    for (const type of ['f32', 'q8_0'] as const) {
      const k = report.knowledge[type];
      lines.push(`${type}: facts known ${percent(k.factsKnown.share)} (${k.factsKnown.answered}/${k.facts}), training prompts ${percent(k.train.share)}, held-out paraphrases ${percent(k.heldout.share)}`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    process.off('SIGINT', onSigint);
  }
}
