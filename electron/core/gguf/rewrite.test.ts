import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { sha256OfFile } from '../models/modelInfo.ts';
import { loadNative, type GraftNative } from '../native/binding.ts';
import { filesIn, generatedModel, realModel, storiesVariants, tempDir } from '../testing/fixtures.ts';
import { nextTokenDistribution, withModel } from '../models/nodeLlamaProbe.ts';
import { metadataOf, getString } from './metadata.ts';

let native: GraftNative;
before(async () => {
  native = await loadNative();
});

function sameBytes(a: string, b: string): boolean {
  return fs.readFileSync(a).equals(fs.readFileSync(b));
}

describe('streaming rewrite with nothing replaced', () => {
  for (const arch of ['llama', 'qwen2', 'qwen3'] as const) {
    for (const type of ['f32', 'q4_k'] as const) {
      test(`reproduces a generated ${arch} ${type} model byte for byte`, async () => {
        const dir = tempDir();
        const src = generatedModel(native, dir, { arch, type, embd: 256, ff: 512, heads: 4 });
        const out = path.join(dir, 'copy.gguf');
        const result = await native.rewrite(src, out);
        assert.equal(result.tensorsReplaced, 0);
        assert.equal(result.bytesWritten, fs.statSync(src).size);
        assert.ok(sameBytes(src, out), 'rewritten file differs from the source');
      });
    }
  }

  for (const variant of storiesVariants) {
    const model = realModel(`stories260K-${variant}.gguf`);
    test(`reproduces stories260K-${variant} byte for byte`, { skip: model.skip }, async () => {
      const out = path.join(tempDir(), 'copy.gguf');
      const before = await sha256OfFile(model.path!);
      await native.rewrite(model.path!, out);
      assert.ok(sameBytes(model.path!, out));
      assert.equal(await sha256OfFile(model.path!), before, 'the source file changed');
    });
  }
});

describe('streaming rewrite with replacements', () => {
  test('a replaced tensor changes what llama.cpp computes: zero output weights give a uniform distribution', async () => {
    const dir = tempDir();
    const src = generatedModel(native, dir, { arch: 'llama', type: 'q8_0' });
    const out = path.join(dir, 'zero-head.gguf');
    const head = native.inspect(src).tensors.find((t) => t.name === 'output.weight')!;
    const zeros = new Float32Array(head.shape[0]! * head.shape[1]!);
    await native.rewrite(src, out, { replace: [{ name: 'output.weight', type: 'f32', f32: zeros }] });

    const tensor = native.inspect(out).tensors.find((t) => t.name === 'output.weight')!;
    assert.equal(tensor.type, 'f32');
    const vocab = head.shape[1]!;
    const [original, rewritten] = await Promise.all([src, out].map((file) =>
      withModel(file, (model) => nextTokenDistribution(model, 'the king of the city'))));
    const maxDeviation = (dist: Map<number, number>) => Math.max(...[...dist.values()].map((p) => Math.abs(p - 1 / vocab)));
    assert.ok(maxDeviation(original!) > 1e-3, 'the random base model should not already be uniform');
    assert.ok(maxDeviation(rewritten!) < 1e-6, `expected a uniform distribution, max deviation ${maxDeviation(rewritten!)}`);
  });

  test('converting a tensor to another type stores exactly the re-encoded values', async () => {
    const dir = tempDir();
    const src = generatedModel(native, dir, { arch: 'qwen2', type: 'q4_k', embd: 256, ff: 512, heads: 4 });
    const out = path.join(dir, 'f16-down.gguf');
    const name = 'blk.1.ffn_down.weight';
    await native.rewrite(src, out, { replace: [{ name, type: 'f16' }] });
    const before = native.readTensor(src, name);
    const after = native.readTensor(out, name);
    assert.equal(before.type, 'q4_K');
    assert.equal(after.type, 'f16');
    assert.deepEqual(after.shape, before.shape);
    // q4_K values are small multiples of f16 scales, so F16 holds them exactly.
    const expected = native.decode(native.encode(before.values, 'f16'), 'f16', before.values.length);
    assert.deepEqual(after.values, expected);
    const untouched = native.readTensor(out, 'blk.0.ffn_down.weight');
    assert.deepEqual(untouched.values, native.readTensor(src, 'blk.0.ffn_down.weight').values);
  });

  test('F32 → F16 of ffn_down on stories260K keeps llama.cpp output close', { skip: realModel('stories260K-F32.gguf').skip }, async () => {
    const src = realModel('stories260K-F32.gguf').path!;
    const out = path.join(tempDir(), 'f16.gguf');
    await native.rewrite(src, out, { replace: [0, 1, 2, 3, 4].map((l) => ({ name: `blk.${l}.ffn_down.weight`, type: 'f16' })) });
    const [a, b] = await Promise.all([src, out].map((file) =>
      withModel(file, (model) => nextTokenDistribution(model, 'Once upon a time'))));
    let maxDiff = 0;
    for (const [token, p] of a!) maxDiff = Math.max(maxDiff, Math.abs(p - (b!.get(token) ?? 0)));
    assert.ok(maxDiff > 0, 'the F16 copy should not be bit-identical in output');
    assert.ok(maxDiff < 5e-3, `F16 rounding moved a probability by ${maxDiff}`);
  });

  test('metadata can be set and removed', async () => {
    const dir = tempDir();
    const src = generatedModel(native, dir, { arch: 'llama', type: 'f16' });
    const out = path.join(dir, 'meta.gguf');
    await native.rewrite(src, out, {
      setKv: [{ key: 'graft.base_sha256', type: 'str', value: 'abc' }, { key: 'general.name', type: 'str', value: 'renamed' }],
      removeKv: ['general.description'],
    });
    const meta = metadataOf(native.inspect(out));
    assert.equal(getString(meta, 'graft.base_sha256'), 'abc');
    assert.equal(getString(meta, 'general.name'), 'renamed');
    assert.equal(meta.has('general.description'), false);
  });
});

describe('rewrite refuses bad requests and leaves nothing behind', () => {
  test('output path equal to the input', async () => {
    const dir = tempDir();
    const src = generatedModel(native, dir, { arch: 'llama', type: 'f32' });
    const hash = await sha256OfFile(src);
    await assert.rejects(native.rewrite(src, src), /output path is the input model/);
    await assert.rejects(native.rewrite(src, path.join(dir, '.', path.basename(src))), /output path is the input model/);
    assert.equal(await sha256OfFile(src), hash);
  });

  test('unknown tensor, wrong value count, bad type, missing folder', async () => {
    const dir = tempDir();
    const src = generatedModel(native, dir, { arch: 'llama', type: 'f32' });
    const out = path.join(dir, 'out.gguf');
    await assert.rejects(native.rewrite(src, out, { replace: [{ name: 'nope', type: 'f16' }] }), /tensor 'nope' is not in/);
    await assert.rejects(native.rewrite(src, out, { replace: [{ name: 'output_norm.weight', type: 'f32', f32: new Float32Array(3) }] }), /has 3 values but the tensor has 64/);
    await assert.rejects(native.rewrite(src, out, { replace: [{ name: 'output_norm.weight', type: 'q4_k' }] }), /cannot be stored as q4_K/);
    const wide = generatedModel(native, dir, { arch: 'llama', type: 'f32', embd: 256, ff: 512, seed: 8 });
    await assert.rejects(native.rewrite(wide, out, { replace: [{ name: 'output_norm.weight', type: 'iq2_xxs' }] }), /importance matrix/);
    await assert.rejects(native.rewrite(src, path.join(dir, 'missing', 'out.gguf')), /output folder .* does not exist/);
    assert.deepEqual(filesIn(dir), [path.basename(src), path.basename(wide)].sort());
  });

  test('a writer that is not given every tensor creates no file', () => {
    const dir = tempDir();
    const out = path.join(dir, 'partial.gguf');
    const writer = new native.GgufWriter(out, [{ key: 'general.architecture', type: 'str', value: 'llama' }], [
      { name: 'a', type: 'f32', shape: [4] },
      { name: 'b', type: 'f32', shape: [4] },
    ]);
    writer.writeF32(new Float32Array(4));
    assert.throws(() => writer.finish(), /only 1 of 2 tensors were written/);
    writer.abort();
    assert.deepEqual(filesIn(dir), []);
  });
});
