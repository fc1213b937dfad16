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

/** The benchmarks' text corpus: $GRAFT_TEST_DATA's tinyshakespeare, or generated words. */
export function corpusFile(dir: string): string {
  const data = process.env.GRAFT_TEST_DATA && path.join(process.env.GRAFT_TEST_DATA, 'tinyshakespeare.txt');
  if (data && fs.existsSync(data)) return data;
  const file = path.join(dir, 'corpus.txt');
  const words = ['the', 'king', 'of', 'city', 'said', 'river', 'and', 'a', 'dog', 'ran', 'to', 'house', 'old', 'man', 'sea'];
  fs.writeFileSync(file, Array.from({ length: 20000 }, (_, i) => words[(i * 7919) % words.length]).join(' '));
  return file;
}
