// Second-moment throughput (tokens/s) against a plain llama.cpp forward pass stopped at the
// same layer (same chunks, same BOS, no key capture or accumulation), measured alternately
// in one run. Also reports what the early stop saves against the full forward.
// Goal: ratio (moments tokens/s / stopped-forward tokens/s) ≥ 0.7.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { openLlamaSession } from '../electron/core/engine/llamaSession.ts';
import { makeTestModel } from '../electron/core/models/testModels/makeTestModel.ts';
import { loadNative } from '../electron/core/native/binding.ts';

const json = process.argv.includes('--json');
const rounds = 3;
const layer = 3;
const contextSize = 512;
const tokenCount = 8 * contextSize;
const threads = Number(process.env.GRAFT_THREADS) || 1;
const native = await loadNative();
const dir = fs.mkdtempSync(path.join(process.env.GRAFT_BENCH_DIR ?? os.tmpdir(), 'graft-bench-moments-'));
const log = (msg: string) => { if (!json) console.log(msg); };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function seconds(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

function corpusText(): string {
  const data = process.env.GRAFT_TEST_DATA && path.join(process.env.GRAFT_TEST_DATA, 'tinyshakespeare.txt');
  if (data && fs.existsSync(data)) return fs.readFileSync(data, 'utf8');
  const words = ['the', 'king', 'of', 'city', 'said', 'river', 'and', 'a', 'dog', 'ran', 'to', 'house', 'old', 'man', 'sea'];
  return Array.from({ length: 40000 }, (_, i) => words[(i * 7919) % words.length]).join(' ');
}

try {
  const model = path.join(dir, 'model.gguf');
  const spec = { arch: 'llama' as const, layers: 8, embd: 512, ff: 1408, heads: 8, kvHeads: 8, vocab: 2048, type: 'q8_0' as const, seed: 1, contextLength: contextSize };
  log('generating the benchmark model…');
  makeTestModel(native, spec, model);
  const session = await openLlamaSession(native, model, { contextSize, threads });
  try {
    const all = session.tokenize(corpusText(), true);
    if (all.length < tokenCount) throw new Error(`the benchmark corpus has only ${all.length} tokens`);
    const tokens = all.subarray(0, tokenCount);
    const bos = all[0]!;
    const chunks: Int32Array[] = [];
    for (let s = 0; s < tokenCount; s += contextSize) {
      const c = tokens.slice(s, s + contextSize);
      c[0] = bos;
      chunks.push(c);
    }
    const file = path.join(dir, 'L3.moments');
    const moments = async () => {
      const job = session.secondMoments(tokens, { layers: [{ layer, file, checkpoint: `${file}.checkpoint` }], modelSha256: 'bench', corpusSha256: 'bench' });
      const outcome = await job.done;
      if (outcome.cancelled || outcome.layers[0]?.n !== tokenCount) throw new Error('the moments job did not complete');
      fs.rmSync(file);
    };
    const stopped = async () => { for (const c of chunks) await session.evaluate(c, { logprobs: false, stopAfterLayer: layer }); };
    const full = async () => { for (const c of chunks) await session.evaluate(c, { logprobs: false }); };
    await stopped();  // warm-up: page in the weights, size the buffers
    const times = { moments: [] as number[], stopped: [] as number[], full: [] as number[] };
    for (let i = 0; i < rounds; i++) {
      log(`round ${i + 1}/${rounds}`);
      times.stopped.push(await seconds(stopped));
      times.moments.push(await seconds(moments));
      times.full.push(await seconds(full));
    }
    const tps = (s: number) => Number((tokenCount / s).toFixed(1));
    const m = median(times.moments);
    const st = median(times.stopped);
    const fu = median(times.full);
    const result = {
      benchmark: 'moments',
      model: { ...spec, bytes: fs.statSync(model).size },
      layer, contextSize, tokens: tokenCount, threads, rounds,
      momentsSeconds: Number(m.toFixed(3)),
      stoppedForwardSeconds: Number(st.toFixed(3)),
      fullForwardSeconds: Number(fu.toFixed(3)),
      momentsTokensPerSecond: tps(m),
      stoppedForwardTokensPerSecond: tps(st),
      fullForwardTokensPerSecond: tps(fu),
      ratio: Number((st / m).toFixed(3)),
      earlyStopSpeedup: Number((fu / st).toFixed(3)),
      goal: 'ratio >= 0.7',
      meetsGoal: st / m >= 0.7,
    };
    console.log(json ? JSON.stringify(result) : JSON.stringify(result, null, 2));
  } finally {
    session.dispose();
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
