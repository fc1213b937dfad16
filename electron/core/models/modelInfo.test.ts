import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { readGgufFileInfo } from 'node-llama-cpp';

import { loadNative, type GraftNative } from '../native/binding.ts';
import { generatedModel, realModel, storiesVariants, tempDir } from '../testing/fixtures.ts';
import { greedyCompletion, withModel } from './nodeLlamaProbe.ts';
import { describeModel } from './modelInfo.ts';

let native: GraftNative;
before(async () => {
  native = await loadNative();
});

// node-llama-cpp's own GGUF reader is the independent reference for both the tensor table
// and the metadata graft info reports.
async function assertAgreesWithNodeLlamaCpp(file: string) {
  const theirs = await readGgufFileInfo(file, { readTensorInfo: true });
  const ours = native.inspect(file);
  assert.deepEqual(
    ours.tensors.map((t) => ({ name: t.name, shape: t.shape, type: t.typeId, offset: t.offset })),
    (theirs.fullTensorInfo ?? []).map((t) => ({ name: t.name, shape: t.dimensions.map(Number), type: t.ggmlType, offset: Number(t.offset) })),
  );
  const info = await describeModel(native, file);
  const meta = theirs.metadata as unknown as Record<string, Record<string, unknown>>;
  const arch = meta.general!.architecture as string;
  const hp = meta[arch]! as Record<string, any>;
  assert.equal(info.architecture, arch);
  assert.equal(info.layers, hp.block_count);
  assert.equal(info.nEmbd, hp.embedding_length);
  assert.equal(info.nFf, hp.feed_forward_length);
  assert.equal(info.nHead, hp.attention.head_count);
  assert.equal(info.nHeadKv, hp.attention.head_count_kv);
  assert.equal(info.contextLength, hp.context_length);
  assert.equal(info.vocabSize, (meta.tokenizer!.ggml as { tokens: string[] }).tokens.length);
  assert.equal(info.name, meta.general!.name);
  assert.equal(info.sha256, createHash('sha256').update(fs.readFileSync(file)).digest('hex'));
  const theirDownTypes = Object.fromEntries((theirs.fullTensorInfo ?? [])
    .filter((t) => /^blk\.\d+\.ffn_down\.weight$/.test(t.name)).map((t) => [t.name, Number(t.ggmlType)]));
  const ourDownTypes = Object.fromEntries(Object.entries(info.ffnDownTypes).map(([name, type]) => [name, native.typeInfo(type).id]));
  assert.deepEqual(ourDownTypes, theirDownTypes);
  return info;
}

describe('generated models of every family', () => {
  for (const arch of ['llama', 'qwen2', 'qwen3'] as const) {
    for (const type of ['f32', 'f16', 'q8_0', 'q4_k'] as const) {
      test(`${arch} ${type}: same tensor table and metadata in the addon and node-llama-cpp`, async () => {
        const file = generatedModel(native, tempDir(), { arch, type, embd: 256, ff: 512, heads: 4, kvHeads: 2 });
        const info = await assertAgreesWithNodeLlamaCpp(file);
        assert.equal(info.editable, true, info.notEditableReason ?? '');
      });
    }
    test(`${arch}: node-llama-cpp loads the generated model and generates from it`, async () => {
      const file = generatedModel(native, tempDir(), { arch, type: 'q8_0' });
      const text = await withModel(file, (model) => greedyCompletion(model, 'the king', 6));
      assert.ok(text.length > 0, 'no text was generated');
    });
  }
});

describe('stories260K', () => {
  for (const variant of storiesVariants) {
    const model = realModel(`stories260K-${variant}.gguf`);
    test(`${variant}: graft info agrees with node-llama-cpp`, { skip: model.skip }, async () => {
      const info = await assertAgreesWithNodeLlamaCpp(model.path!);
      assert.equal(info.layers, 5);
      assert.equal(info.nFf, 172);
      assert.equal(info.editable, true);
      // The F32 conversion carries no general.file_type, so it is named from its tensors.
      assert.equal(info.fileType, { F32: 'F32 (guessed)', F16: 'F16', Q8_0: 'Q8_0' }[variant]);
    });
  }
});

describe('editability', () => {
  test('an unsupported architecture is reported with the reason', async () => {
    const file = path.join(tempDir(), 'gpt2.gguf');
    const writer = new native.GgufWriter(file, [
      { key: 'general.architecture', type: 'str', value: 'gpt2' },
      { key: 'gpt2.block_count', type: 'u32', value: 1 },
    ], [{ name: 'token_embd.weight', type: 'f32', shape: [8, 4] }]);
    writer.writeF32(new Float32Array(32));
    writer.finish();
    const info = await describeModel(native, file, { sha256: false });
    assert.equal(info.editable, false);
    assert.match(info.notEditableReason!, /architecture 'gpt2' is not supported/);
  });

  test('a model missing a layer\'s ffn_down is not editable', async () => {
    const dir = tempDir();
    const src = generatedModel(native, dir, { arch: 'llama', type: 'f32' });
    const out = path.join(dir, 'wrong-layers.gguf');
    await native.rewrite(src, out, { setKv: [{ key: 'llama.block_count', type: 'u32', value: 3 }] });
    const info = await describeModel(native, out, { sha256: false });
    assert.equal(info.editable, false);
    assert.match(info.notEditableReason!, /blk\.2\.ffn_down\.weight is missing/);
  });

  test('metadata of the wrong type is treated as missing, not trusted', async () => {
    const dir = tempDir();
    const src = generatedModel(native, dir, { arch: 'llama', type: 'f32' });
    const out = path.join(dir, 'string-layers.gguf');
    await native.rewrite(src, out, { setKv: [{ key: 'llama.block_count', type: 'str', value: 'two' }] });
    const info = await describeModel(native, out, { sha256: false });
    assert.equal(info.layers, null);
    assert.match(info.notEditableReason!, /llama\.block_count/);
  });
});
