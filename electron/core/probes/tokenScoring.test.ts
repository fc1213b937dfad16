// The native scoring primitive under the probes: NLLs and rows must equal what a plain
// evaluation of each sequence gives, whatever the packing, and adapters must act on it.
import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { openLlamaSession } from '../engine/llamaSession.ts';
import { writeLoraAdapter } from '../export/loraAdapter.ts';
import { loadNative, type GraftNative } from '../native/binding.ts';
import { generatedModel, tempDir } from '../testing/fixtures.ts';

let native: GraftNative;
before(async () => {
  native = await loadNative();
});

describe('native token scoring', () => {
  test('packed sequences score as if evaluated alone; rows are the evaluation\'s log-prob rows', async () => {
    const model = generatedModel(native, tempDir(), { arch: 'qwen2', type: 'f32' });
    const session = await openLlamaSession(native, model, { contextSize: 64, threads: 1 });
    try {
      const texts = ['the king of the city said', 'a queen', 'once there was a river by the hill and a road', 'x y z'];
      const seqs = texts.map((t) => session.tokenize(t, true));
      const requests = seqs.map((tokens, i) => ({ tokens, scoreFrom: 1 + (i % 2), rows: [0, tokens.length - 1] }));
      const packed = await session.score(requests, { maxSequencesPerDecode: 0 });
      const alone = await session.score(requests);
      assert.ok(packed.decodes < alone.decodes, `packing: ${packed.decodes} vs ${alone.decodes} decodes`);
      assert.equal(alone.decodes, texts.length);
      for (let s = 0; s < seqs.length; s++) {
        const tokens = seqs[s]!;
        const ev = await session.evaluate(tokens);
        const V = ev.nVocab;
        const from = requests[s]!.scoreFrom;
        assert.equal(packed.sequences[s]!.nll.length, tokens.length - from);
        for (const r of [packed, alone]) {
          r.sequences[s]!.nll.forEach((nll, k) => {
            const j = from + k;
            const expected = -ev.logprobs![(j - 1) * V + tokens[j]!]!;
            assert.ok(Math.abs(nll - expected) <= 1e-5 * Math.max(1, expected), `sequence ${s} target ${j}: ${nll} vs ${expected}`);
          });
          const rows = r.sequences[s]!.rows!;
          assert.equal(rows.length, 2 * V);
          for (const [k, p] of [[0, 0], [1, tokens.length - 1]] as const) {
            for (let t = 0; t < V; t++) assert.ok(Math.abs(rows[k * V + t]! - ev.logprobs![p * V + t]!) <= 1e-5, `row ${p} token ${t}`);
          }
        }
      }
    } finally {
      session.dispose();
    }
  });

  test('a LoRA adapter attached to the session changes the scores; scale 0 does not', async () => {
    const dir = tempDir();
    const model = generatedModel(native, dir, { arch: 'llama', type: 'f32' });
    const down = native.readTensor(model, 'blk.1.ffn_down.weight');
    const [nIn, nOut] = down.shape as [number, number];
    const adapter = path.join(dir, 'a.gguf');
    writeLoraAdapter(native, adapter, { architecture: 'llama', factors: [{
      base: 'blk.1.ffn_down.weight', nIn, nOut, rank: 1,
      a: Float32Array.from({ length: nIn }, (_, i) => Math.sin(i) * 0.2), b: Float32Array.from({ length: nOut }, (_, i) => Math.cos(i)),
    }] });
    const nll = async (scale: number | null) => {
      const s = await openLlamaSession(native, model, { contextSize: 64, threads: 1, ...(scale === null ? {} : { lora: [{ path: adapter, scale }] }) });
      try {
        return (await s.score([{ tokens: s.tokenize('the king of the city said', true) }])).sequences[0]!.nll;
      } finally {
        s.dispose();
      }
    };
    const base = await nll(null);
    assert.deepEqual(await nll(0), base);
    assert.notDeepEqual(await nll(1), base);
  });

  test('bad requests are refused with the reason', async () => {
    const session = await openLlamaSession(native, generatedModel(native, tempDir(), { arch: 'llama', type: 'q8_0' }), { contextSize: 16, threads: 1 });
    try {
      const t = session.tokenize('the king said', true);
      await assert.rejects(session.score([]), /there are no token sequences to score/);
      await assert.rejects(session.score([{ tokens: new Int32Array(0) }]), /sequence 0 is empty/);
      await assert.rejects(session.score([{ tokens: t, scoreFrom: 0 }]), /token 0 has no prediction to score/);
      await assert.rejects(session.score([{ tokens: t, scoreTo: t.length + 1 }]), /score range/);
      await assert.rejects(session.score([{ tokens: t, rows: [t.length] }]), /row position \d+ is outside the sequence/);
      await assert.rejects(session.score([{ tokens: Int32Array.from([1, 99999]) }]), /outside the vocabulary/);
      await assert.rejects(session.score([{ tokens: new Int32Array(17).fill(3) }]), /17 tokens long but the context holds 16/);
      await assert.rejects(async () => session.score([{ tokens: [1, 2] as unknown as Int32Array }]), /tokens must be an Int32Array/);
      // One-token sequences without a score range or rows need no decode at all.
      const none = await session.score([{ tokens: Int32Array.from([t[0]!]) }]);
      assert.equal(none.decodes, 0);
      assert.equal(none.sequences[0]!.nll.length, 0);
    } finally {
      session.dispose();
    }
  });
});
