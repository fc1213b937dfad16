// Second moments: equal to a direct double computation from captured keys, the same in one
// pass or per layer, resumable after a cancel, and refused for another model or corpus.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { openLlamaSession } from '../engine/llamaSession.ts';
import { sha256OfFile } from '../models/modelInfo.ts';
import { loadNative, type GraftNative } from '../native/binding.ts';
import { filesIn, generatedModel, tempDir } from '../testing/fixtures.ts';
import { momentsPaths, readMomentsFile } from './momentsFile.ts';
import { computeSecondMoments } from './secondMoments.ts';

let native: GraftNative;
let model: string;
let corpus: string;
const words = ['the', 'king', 'of', 'city', 'said', 'river', 'and', 'a', 'dog', 'ran', 'to', 'house', 'old', 'man', 'sea'];

function writeCorpus(dir: string, nWords: number, seed = 1): string {
  let x = seed;
  const out: string[] = [];
  for (let i = 0; i < nWords; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out.push(words[x % words.length]!);
    if (i % 11 === 10) out.push('.\n');
  }
  const file = path.join(dir, `corpus-${seed}-${nWords}.txt`);
  fs.writeFileSync(file, out.join(' '));
  return file;
}

const dir = tempDir();  // top level: the files live until the whole file is done
before(async () => {
  native = await loadNative();
  model = generatedModel(native, dir, { arch: 'llama', type: 'f32' });
  corpus = writeCorpus(dir, 400);
});

describe('second moments', () => {
  test('equal Σ k kᵀ / n computed in double from keys captured with evaluate on the same chunks', async () => {
    const contextSize = 32;
    const tokenCount = 5 * contextSize + 7;  // a partial last chunk too
    const [l0, l1] = await computeSecondMoments(native, { model, corpus, layers: [0, 1], tokenCount, contextSize, outDir: tempDir() });
    const session = await openLlamaSession(native, model, { contextSize });
    try {
      const all = session.tokenize(fs.readFileSync(corpus, 'utf8'), true).subarray(0, tokenCount);
      const bos = all[0]!;
      for (const got of [l0!, l1!]) {
        const nFf = got.nFf;
        assert.equal(got.n, tokenCount);
        const sum = new Float64Array(nFf * nFf);
        for (let start = 0; start < tokenCount; start += contextSize) {
          const chunk = all.slice(start, Math.min(start + contextSize, tokenCount));
          chunk[0] = bos;
          const keys = (await session.evaluate(chunk, { keyLayers: [got.layer], logprobs: false })).keys[String(got.layer)]!;
          for (let t = 0; t < chunk.length; t++) {
            for (let i = 0; i < nFf; i++) {
              const ki = keys[t * nFf + i]!;
              for (let j = 0; j < nFf; j++) sum[i * nFf + j]! += ki * keys[t * nFf + j]!;
            }
          }
        }
        let maxErr = 0;
        let maxAbs = 0;
        for (let i = 0; i < sum.length; i++) {
          maxErr = Math.max(maxErr, Math.abs(sum[i]! / tokenCount - got.matrix[i]!));
          maxAbs = Math.max(maxAbs, Math.abs(sum[i]! / tokenCount));
        }
        assert.ok(maxAbs > 0);
        assert.ok(maxErr / maxAbs < 1e-5, `layer ${got.layer}: relative error ${maxErr / maxAbs}`);
        for (let i = 0; i < nFf; i++) for (let j = 0; j < i; j++) assert.equal(got.matrix[i * nFf + j], got.matrix[j * nFf + i]);
      }
    } finally {
      session.dispose();
    }
  });

  test('several layers in one pass equal separate single-layer runs; a second call loads the cache', async () => {
    const common = { model, corpus, contextSize: 32 };
    const dirBoth = tempDir();
    const both = await computeSecondMoments(native, { ...common, layers: [1, 0], outDir: dirBoth });
    assert.deepEqual(both.map((m) => m.layer), [1, 0]);
    for (const layer of [0, 1]) {
      const [single] = await computeSecondMoments(native, { ...common, layers: [layer], outDir: tempDir() });
      assert.deepEqual(single!.matrix, both.find((m) => m.layer === layer)!.matrix);
    }
    // a cache hit must not load the model again (every edit asks for its layers' moments)
    let sessions = 0;
    const counting = new Proxy(native, {
      get: (target, name, receiver) => name === 'openLlamaSession'
        ? (...args: unknown[]) => { sessions++; return (target.openLlamaSession as (...a: unknown[]) => unknown)(...args); }
        : Reflect.get(target, name, receiver),
    });
    const again = await computeSecondMoments(counting, { ...common, layers: [0, 1], outDir: dirBoth });
    assert.ok(again.every((m) => m.cached));
    assert.equal(sessions, 0, 'the cached moments were found without opening the model');
    const counted = await computeSecondMoments(counting, { ...common, tokenCount: both[0]!.n, layers: [1], outDir: dirBoth });
    assert.equal(sessions, 0, 'a token count given with the request finds the cache without tokenising');
    assert.deepEqual(counted[0]!.matrix, both[0]!.matrix);
    await computeSecondMoments(counting, { ...common, tokenCount: both[0]!.n - 1, layers: [1], outDir: tempDir() });
    assert.equal(sessions, 1, 'a request the cache does not hold computes');
    assert.deepEqual(again[0]!.matrix, both[1]!.matrix);
    assert.equal(filesIn(dirBoth).length, 2, `only the two final files remain: ${filesIn(dirBoth)}`);
  });

  test('a cancelled job leaves no final file; resuming gives exactly the uninterrupted matrix', async () => {
    const big = writeCorpus(tempDir(), 12000, 2);
    const common = { model, corpus: big, layers: [0, 1], contextSize: 16 };
    const reference = await computeSecondMoments(native, { ...common, outDir: tempDir() });

    const dir = tempDir();
    const controller = new AbortController();
    let seen = 0;
    await assert.rejects(computeSecondMoments(native, {
      ...common, outDir: dir, signal: controller.signal,
      onProgress: (p) => {
        seen = p.tokensDone;
        if (p.tokensDone > p.tokensTotal / 4) controller.abort();
      },
    }), { name: 'AbortError' });
    assert.ok(seen > 0);
    const left = filesIn(dir);
    assert.equal(left.length, 2, `expected two checkpoints, found ${left}`);
    assert.ok(left.every((f) => f.endsWith('.moments.checkpoint')), `${left}`);

    const resumed = await computeSecondMoments(native, { ...common, outDir: dir });
    assert.ok(resumed.every((m) => m.resumedFrom > 0 && m.resumedFrom < m.n), `resumed from ${resumed.map((m) => m.resumedFrom)}`);
    for (let i = 0; i < 2; i++) assert.deepEqual(resumed[i]!.matrix, reference[i]!.matrix);
    assert.ok(filesIn(dir).every((f) => f.endsWith('.moments')), `${filesIn(dir)}`);

    // Aborted before it starts: nothing is written at all.
    const empty = tempDir();
    await assert.rejects(computeSecondMoments(native, { ...common, outDir: empty, signal: AbortSignal.abort() }), { name: 'AbortError' });
    assert.deepEqual(filesIn(empty), []);
  });

  test('a job killed with SIGKILL resumes from its last periodic checkpoint to the same matrix', async () => {
    const big = writeCorpus(tempDir(), 12000, 3);
    const common = { model, corpus: big, layers: [1], contextSize: 16 };
    const reference = await computeSecondMoments(native, { ...common, outDir: tempDir() });
    const dir = tempDir();
    const script = path.join(dir, 'job.mts');
    const here = path.dirname(fileURLToPath(import.meta.url));
    fs.writeFileSync(script, [
      `import { loadNative } from ${JSON.stringify(path.join(here, '../native/binding.ts'))};`,
      `import { computeSecondMoments } from ${JSON.stringify(path.join(here, 'secondMoments.ts'))};`,
      'const native = await loadNative();',
      `await computeSecondMoments(native, { ...${JSON.stringify(common)}, outDir: ${JSON.stringify(dir)}, checkpointSeconds: 0,`,
      '  onProgress: (p) => process.stdout.write(`${p.tokensDone} ${p.tokensTotal}\\n`) });',
    ].join('\n'));
    const child = spawn(process.execPath, ['--import', 'tsx', script], { env: { ...process.env, GRAFT_NATIVE_VARIANT: 'cpu' }, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        const [done, total] = d.toString().trim().split('\n').at(-1)!.split(' ').map(Number);
        if (done! > total! / 3) child.kill('SIGKILL');
      });
      child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`the job ended by itself (code ${code})`))));
    });
    fs.rmSync(script);
    const left = filesIn(dir).filter((f) => !f.includes('.graft-tmp-'));
    assert.deepEqual(left.map((f) => f.endsWith('.moments.checkpoint')), [true], `${filesIn(dir)}`);
    const [resumed] = await computeSecondMoments(native, { ...common, outDir: dir });
    assert.ok(resumed!.resumedFrom > 0, 'the job must resume from the checkpoint');
    assert.deepEqual(resumed!.matrix, reference[0]!.matrix);
  });

  test('a file of another model or corpus under the expected name is refused', async () => {
    const dir = tempDir();
    const [m] = await computeSecondMoments(native, { model, corpus, layers: [1], contextSize: 32, outDir: dir });
    const other = generatedModel(native, tempDir(), { arch: 'llama', type: 'f32', seed: 99 });
    const key = { layer: 1, tokenCount: m!.n, contextSize: 32 };
    const forOther = momentsPaths(dir, { ...key, modelSha256: await sha256OfFile(other), corpusSha256: createHash('sha256').update(fs.readFileSync(corpus)).digest('hex') });
    fs.copyFileSync(m!.file, forOther.file);
    await assert.rejects(computeSecondMoments(native, { model: other, corpus, layers: [1], contextSize: 32, outDir: dir }),
      /does not match this request: it was computed for another model/);

    const otherCorpus = path.join(tempDir(), 'c.txt');
    fs.writeFileSync(otherCorpus, fs.readFileSync(corpus, 'utf8').replace('king', 'queen'));
    const session = await openLlamaSession(native, model, { contextSize: 32 });
    const n = session.tokenize(fs.readFileSync(otherCorpus, 'utf8'), true).length;
    session.dispose();
    const forCorpus = momentsPaths(dir, { ...key, tokenCount: n, modelSha256: await sha256OfFile(model), corpusSha256: createHash('sha256').update(fs.readFileSync(otherCorpus)).digest('hex') });
    fs.copyFileSync(m!.file, forCorpus.file);
    await assert.rejects(computeSecondMoments(native, { model, corpus: otherCorpus, layers: [1], contextSize: 32, outDir: dir }),
      /it was computed on another corpus/);
    assert.throws(() => readMomentsFile(m!.file, { ...key, layer: 0, modelSha256: 'x', corpusSha256: 'y' }), /another model/);
  });

  test('bad input: layer out of range, empty corpus, too many tokens, duplicate layer, missing files', async () => {
    const outDir = tempDir();
    const base = { model, corpus, layers: [0], contextSize: 32, outDir };
    await assert.rejects(computeSecondMoments(native, { ...base, layers: [2] }), /layer 2 is out of range \(the model has 2 layers, 0 to 1\)/);
    await assert.rejects(computeSecondMoments(native, { ...base, layers: [] }), /give at least one layer/);
    await assert.rejects(computeSecondMoments(native, { ...base, layers: [1, 1] }), /layer 1 is listed twice/);
    const empty = path.join(tempDir(), 'empty.txt');
    fs.writeFileSync(empty, ' \n\n');
    await assert.rejects(computeSecondMoments(native, { ...base, corpus: empty }), /the corpus .*empty\.txt is empty/);
    await assert.rejects(computeSecondMoments(native, { ...base, tokenCount: 1e6 }), /has only \d+ tokens, fewer than the 1000000 asked for/);
    await assert.rejects(computeSecondMoments(native, { ...base, tokenCount: 0 }), /token count must be a positive integer/);
    await assert.rejects(computeSecondMoments(native, { ...base, corpus: '/nonexistent.txt' }), /corpus file not found/);
    await assert.rejects(computeSecondMoments(native, { ...base, outDir: '/nonexistent-dir' }), /output folder \/nonexistent-dir does not exist/);
    assert.deepEqual(filesIn(outDir), []);
  });
});
