import assert from 'node:assert/strict';
import path from 'node:path';
import { before, test } from 'node:test';

import { loadNative, type GraftNative } from '../../native/binding.ts';
import { filesIn, smallSpec, tempDir } from '../../testing/fixtures.ts';
import { sha256OfFile } from '../modelInfo.ts';
import { makeTestModel } from './makeTestModel.ts';
import { SeededRandom } from '../../util/seededRandom.ts';
import { buildSpmVocabulary } from './spmVocabulary.ts';

let native: GraftNative;
before(async () => {
  native = await loadNative();
});

test('the same seed gives the same file, another seed another file', async () => {
  const dir = tempDir();
  const spec = { ...smallSpec, arch: 'qwen3' as const, type: 'q8_0' as const };
  const a = makeTestModel(native, spec, path.join(dir, 'a.gguf'));
  const b = makeTestModel(native, spec, path.join(dir, 'b.gguf'));
  const c = makeTestModel(native, { ...spec, seed: spec.seed + 1 }, path.join(dir, 'c.gguf'));
  assert.equal(await sha256OfFile(a.path), await sha256OfFile(b.path));
  assert.notEqual(await sha256OfFile(a.path), await sha256OfFile(c.path));
});

test('weights have the intended scale', () => {
  const dir = tempDir();
  const file = makeTestModel(native, { ...smallSpec, arch: 'llama', type: 'f32' }, path.join(dir, 'm.gguf')).path;
  const { values } = native.readTensor(file, 'blk.0.ffn_down.weight');
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  const std = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length);
  assert.ok(Math.abs(mean) < 0.01, `mean ${mean}`);
  assert.ok(Math.abs(std - 1 / Math.sqrt(smallSpec.ff)) < 0.01, `std ${std}`);
});

test('rows that do not fit q4_k blocks fall back to q8_0 and are reported', () => {
  const dir = tempDir();
  // embd 64 is not a multiple of 256, ff 512 is: only ffn_down keeps q4_K.
  const result = makeTestModel(native, { ...smallSpec, ff: 512, arch: 'llama', type: 'q4_k' }, path.join(dir, 'm.gguf'));
  const types = Object.fromEntries(native.inspect(result.path).tensors.map((t) => [t.name, t.type]));
  assert.equal(types['blk.0.ffn_down.weight'], 'q4_K');
  assert.equal(types['blk.0.ffn_up.weight'], 'q8_0');
  assert.equal(result.fallbacks['blk.0.ffn_up.weight'], 'q8_0');
  assert.equal(result.fallbacks['blk.0.ffn_down.weight'], undefined);
});

test('invalid specs are refused before any file is written', () => {
  const dir = tempDir();
  const out = path.join(dir, 'm.gguf');
  const base = { ...smallSpec, arch: 'llama' as const, type: 'f32' as const };
  assert.throws(() => makeTestModel(native, { ...base, heads: 3 }, out), /--embd \(64\) must be a multiple of --heads \(3\)/);
  assert.throws(() => makeTestModel(native, { ...base, kvHeads: 3 }, out), /--heads \(4\) must be a multiple of --kv-heads \(3\)/);
  assert.throws(() => makeTestModel(native, { ...base, vocab: 100 }, out), /--vocab must be an integer of at least 300/);
  assert.throws(() => makeTestModel(native, { ...base, arch: 'gpt2' as never }, out), /--arch must be one of llama, qwen2, qwen3/);
  assert.throws(() => makeTestModel(native, { ...base, layers: 0 }, out), /--layers must be a positive integer/);
  assert.deepEqual(filesIn(dir), []);
});

test('the vocabulary has llama.cpp\'s special and byte tokens and unique pieces', () => {
  const v = buildSpmVocabulary(1000);
  assert.equal(v.tokens.length, 1000);
  assert.deepEqual(v.tokens.slice(0, 4), ['<unk>', '<s>', '</s>', '<0x00>']);
  assert.equal(v.tokens[258], '<0xFF>');
  assert.equal(new Set(v.tokens).size, 1000);
  assert.ok(v.types.slice(3, 259).every((t) => t === 6));
});

test('the random generator is deterministic and uniform', () => {
  const a = new SeededRandom(42).fill(10000, 1);
  const b = new SeededRandom(42).fill(10000, 1);
  assert.deepEqual(a, b);
  const mean = a.reduce((s, v) => s + v, 0) / a.length;
  const variance = a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length;
  assert.ok(Math.abs(mean) < 0.05 && Math.abs(variance - 1) < 0.05, `mean ${mean} variance ${variance}`);
});
