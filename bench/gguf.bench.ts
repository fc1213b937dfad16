// Streaming GGUF rewrite throughput against a plain file copy (fsynced, as the rewrite is) of the same model, measured
// alternately in one run. Goal: ratio (copy time / rewrite time) ≥ 0.5.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { makeTestModel } from '../electron/core/models/testModels/makeTestModel.ts';
import { loadNative } from '../electron/core/native/binding.ts';

const json = process.argv.includes('--json');
const rounds = 3;
const native = await loadNative();
const dir = fs.mkdtempSync(path.join(process.env.GRAFT_BENCH_DIR ?? os.tmpdir(), 'graft-bench-gguf-'));
const log = (msg: string) => { if (!json) console.log(msg); };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function seconds(fn: () => unknown): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

async function secondsAsync(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

try {
  const source = path.join(dir, 'model.gguf');
  const spec = { arch: 'llama' as const, layers: 4, embd: 2048, ff: 5632, heads: 16, kvHeads: 16, vocab: 32000, type: 'f16' as const, seed: 1 };
  log('generating the benchmark model…');
  const generateSeconds = seconds(() => makeTestModel(native, spec, source));
  const bytes = fs.statSync(source).size;
  const ffnDown = native.inspect(source).tensors.find((t) => t.name === 'blk.0.ffn_down.weight')!;
  const replacement = new Float32Array(ffnDown.shape[0]! * ffnDown.shape[1]!).fill(0.01);
  const copyTimes: number[] = [];
  const rewriteTimes: number[] = [];
  const rewriteOneTimes: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const target = path.join(dir, 'out.gguf');
    // the rewrite fsyncs its output before renaming it, so the baseline copy is made durable too
    copyTimes.push(seconds(() => { fs.copyFileSync(source, target); const fd = fs.openSync(target, 'r+'); fs.fsyncSync(fd); fs.closeSync(fd); }));
    fs.rmSync(target);
    rewriteTimes.push(await secondsAsync(() => native.rewrite(source, target)));
    fs.rmSync(target);
    rewriteOneTimes.push(await secondsAsync(() => native.rewrite(source, target, { replace: [{ name: 'blk.0.ffn_down.weight', type: 'f32', f32: replacement }] })));
    fs.rmSync(target);
  }
  const copy = median(copyTimes);
  const result = {
    benchmark: 'gguf',
    model: { ...spec, bytes, generateSeconds: Number(generateSeconds.toFixed(2)) },
    rounds,
    copySeconds: Number(copy.toFixed(3)),
    rewriteSeconds: Number(median(rewriteTimes).toFixed(3)),
    rewriteOneTensorSeconds: Number(median(rewriteOneTimes).toFixed(3)),
    ratio: Number((copy / median(rewriteTimes)).toFixed(3)),
    ratioOneTensorReplaced: Number((copy / median(rewriteOneTimes)).toFixed(3)),
    copyMBps: Number((bytes / copy / 1e6).toFixed(0)),
    rewriteMBps: Number((bytes / median(rewriteTimes) / 1e6).toFixed(0)),
    goal: 'ratio >= 0.5',
    meetsGoal: copy / median(rewriteOneTimes) >= 0.5 && copy / median(rewriteTimes) >= 0.5,
  };
  console.log(json ? JSON.stringify(result) : JSON.stringify(result, null, 2));
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
