// What every benchmark needs: a scratch folder removed afterwards, median timings of
// alternated rounds, and output as one JSON line (--json) or readable JSON.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const json = process.argv.includes('--json');
export const threads = Number(process.env.GRAFT_THREADS) || 1;

export function log(message: string): void {
  if (!json) console.log(message);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export async function seconds(fn: () => unknown): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

export function round(x: number, digits = 3): number {
  return Number(x.toFixed(digits));
}

export async function inScratchDir<T>(name: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(process.env.GRAFT_BENCH_DIR ?? os.tmpdir(), `graft-bench-${name}-`));
  try {
    return await fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function report(result: object): void {
  console.log(json ? JSON.stringify(result) : JSON.stringify(result, null, 2));
}
