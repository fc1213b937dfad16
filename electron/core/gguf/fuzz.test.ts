// Mutated GGUF files must give a clean one-line error or a consistent read, never a crash:
// a crash (ggml abort, segfault) would kill this test process and fail the run.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';

import { describeModel } from '../models/modelInfo.ts';
import { SeededRandom } from '../util/seededRandom.ts';
import { loadNative, type GraftNative } from '../native/binding.ts';
import { generatedModel, realModel, tempDir } from '../testing/fixtures.ts';

let native: GraftNative;
before(async () => {
  native = await loadNative();
});

interface Mutation {
  label: string;
  bytes: Buffer;
}

function mutations(seedFile: string, dataOffset: number, rng: SeededRandom, tag: string): Mutation[] {
  const original = fs.readFileSync(seedFile);
  const out: Mutation[] = [];
  const pick = (n: number) => Math.floor(rng.next() * n);
  for (let i = 0; i < 50; i++) {
    const length = i < 25 ? pick(dataOffset) : dataOffset + pick(original.length - dataOffset);
    out.push({ label: `${tag} truncated to ${length}`, bytes: original.subarray(0, length) });
  }
  for (let i = 0; i < 80; i++) {
    const b = Buffer.from(original);
    const at = pick(dataOffset);
    b[at]! ^= 1 << pick(8);
    out.push({ label: `${tag} bit flip at ${at}`, bytes: b });
  }
  // The tensor table sits at the end of the metadata: hit it harder.
  const tableStart = Math.max(24, dataOffset - 2500);
  for (let i = 0; i < 40; i++) {
    const b = Buffer.from(original);
    const at = tableStart + pick(dataOffset - tableStart);
    b[at]! ^= 1 << pick(8);
    out.push({ label: `${tag} tensor-table flip at ${at}`, bytes: b });
  }
  const huge = [0xffffffffffffffffn, 0x7fffffffffffffffn, 1n << 40n, 0xffffffffn, 1n << 32n];
  for (const [field, at] of [['n_tensors', 8], ['n_kv', 16], ['first key length', 24]] as const) {
    for (const value of huge) {
      const b = Buffer.from(original);
      b.writeBigUInt64LE(value, at);
      out.push({ label: `${tag} ${field} = ${value}`, bytes: b });
    }
  }
  for (let i = 0; i < 15; i++) {
    // 8 bytes of 0xff somewhere in the table: offsets, dims or types far out of range.
    const b = Buffer.from(original);
    const at = tableStart + pick(dataOffset - tableStart - 8);
    b.fill(0xff, at, at + 8);
    out.push({ label: `${tag} 0xff×8 at ${at}`, bytes: b });
  }
  return out;
}

test('at least 500 mutated GGUF files each give a clean error or a consistent read', async () => {
  const dir = tempDir('graft-fuzz-');
  const seeds = [
    generatedModel(native, dir, { arch: 'llama', type: 'q8_0' }),
    generatedModel(native, dir, { arch: 'qwen3', type: 'f16', seed: 3 }),
  ];
  const stories = realModel('stories260K-Q8_0.gguf');
  if (stories.path) seeds.push(stories.path);
  const rng = new SeededRandom(20261128);
  const cases = seeds.flatMap((s, i) => mutations(s, native.inspect(s).dataOffset, rng, `seed${i}`));
  assert.ok(cases.length >= 500 || !stories.path, `only ${cases.length} cases`);
  if (!stories.path) {
    // Without the real model, add a third generated seed so the count still reaches 500.
    const extra = generatedModel(native, dir, { arch: 'qwen2', type: 'q4_k', embd: 256, ff: 512, seed: 5 });
    cases.push(...mutations(extra, native.inspect(extra).dataOffset, rng, 'seed-extra'));
  }
  assert.ok(cases.length >= 500, `only ${cases.length} cases`);

  const file = path.join(dir, 'mutated.gguf');
  let errors = 0;
  let reads = 0;
  for (const c of cases) {
    fs.writeFileSync(file, c.bytes);
    let inspection;
    try {
      inspection = native.inspect(file);
    } catch (error) {
      assert.ok(error instanceof Error, `${c.label}: threw a non-Error`);
      assert.ok(error.message.length > 0 && !error.message.includes('\n'), `${c.label}: message '${error.message}' is not one line`);
      assert.ok(error.message.includes(file), `${c.label}: message does not name the file: ${error.message}`);
      errors++;
      continue;
    }
    reads++;
    assert.equal(inspection.fileSize, c.bytes.length);
    for (const t of inspection.tensors) {
      assert.ok(t.fileOffset + t.size <= c.bytes.length, `${c.label}: tensor ${t.name} lies outside the file`);
    }
    // A read that succeeds must also survive everything graft info does with it.
    try {
      await describeModel(native, file, { sha256: false });
    } catch (error) {
      assert.ok(error instanceof Error && !error.message.includes('\n'), `${c.label}: describeModel failed badly: ${String(error)}`);
    }
  }
  console.log(`fuzz: ${cases.length} cases, ${errors} clean errors, ${reads} consistent reads`);
  assert.ok(errors > cases.length / 4, 'most mutations of the header should be rejected');
});
