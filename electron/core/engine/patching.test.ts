// Activation patching in the eval callback, checked against llama.cpp's own control
// vectors and against itself (identity patches, causality).
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import { loadNative, type ActivationPatch, type GraftNative, type NativeLlamaSession } from '../native/binding.ts';
import { generatedModel, tempDir } from '../testing/fixtures.ts';
import { openLlamaSession } from './llamaSession.ts';

let native: GraftNative;
let session: NativeLlamaSession;
let tokens: Int32Array;
before(async () => {
  native = await loadNative();
  session = await openLlamaSession(native, generatedModel(native, tempDir(), { arch: 'llama', type: 'f32', layers: 3 }), { contextSize: 64 });
  tokens = session.tokenize('the king of the city said that the river');
});

const logprobs = async (patches: ActivationPatch[] = []) => (await session.evaluate(tokens, { patches })).logprobs!;
const direction = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7.3 + i * 1.1) * 0.8);

function maxAbsDiff(a: Float32Array, b: Float32Array, from = 0, to = a.length): number {
  let m = 0;
  for (let i = from; i < to; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('activation patching', () => {
  test('adding d to l_out-L at every position equals llama.cpp\'s control vector d at layer L', async () => {
    const d = direction(session.nEmbd, 1);
    for (const layer of [1, 2]) {
      const patched = await logprobs(Array.from(tokens, (_, position) => ({ layer, site: 'resid' as const, position, mode: 'add' as const, values: d })));
      session.setControlVector(layer, d);
      const cvec = await logprobs();
      session.setControlVector(0, null);
      assert.ok(maxAbsDiff(patched, await logprobs()) > 1e-3, 'the patch must change the output');
      assert.ok(maxAbsDiff(patched, cvec) <= 1e-6, `layer ${layer}: patch and control vector differ by ${maxAbsDiff(patched, cvec)}`);
    }
  });

  test('replacing a row with its own unpatched value, or adding zero, leaves the log-probs bit-identical', async () => {
    const base = await logprobs();
    const captured = await session.evaluate(tokens, { residualLayers: [1], logprobs: false });
    const row = (p: number) => captured.residuals['1']!.slice(p * session.nEmbd, (p + 1) * session.nEmbd);
    const replace = Array.from(tokens, (_, position) => ({ layer: 1, site: 'resid' as const, position, mode: 'replace' as const, values: row(position) }));
    assert.deepEqual(await logprobs(replace), base);
    const zero = new Float32Array(session.nEmbd);
    for (const site of ['resid', 'mlp_out'] as const) {
      assert.deepEqual(await logprobs([{ layer: 0, site, position: 3, mode: 'add', values: zero }]), base);
    }
  });

  test('a patch at position p leaves earlier positions unchanged and changes p and later', async () => {
    const base = await logprobs();
    const v = session.nVocab;
    const p = 4;
    for (const site of ['resid', 'mlp_out'] as const) {
      for (const mode of ['add', 'replace'] as const) {
        const patched = await logprobs([{ layer: 0, site, position: p, mode, values: direction(session.nEmbd, 2) }]);
        assert.equal(maxAbsDiff(patched, base, 0, p * v), 0, `${site}/${mode}: positions before ${p} changed`);
        for (let q = p; q < tokens.length; q++) {
          assert.ok(maxAbsDiff(patched, base, q * v, (q + 1) * v) > 1e-5, `${site}/${mode}: position ${q} did not change`);
        }
      }
    }
  });

  test('mlp_out patches act on the ffn_down output: adding Δ there equals adding Δ to l_out of the same layer', async () => {
    const d = direction(session.nEmbd, 3);
    const viaMlp = await logprobs([{ layer: 1, site: 'mlp_out', position: 2, mode: 'add', values: d }]);
    const viaResid = await logprobs([{ layer: 1, site: 'resid', position: 2, mode: 'add', values: d }]);
    assert.ok(maxAbsDiff(viaMlp, viaResid) < 1e-5, `differ by ${maxAbsDiff(viaMlp, viaResid)}`);
  });

  test('bad patches are refused with a clear error', async () => {
    const ok = { layer: 0, site: 'resid' as const, position: 0, mode: 'add' as const, values: new Float32Array(session.nEmbd) };
    await assert.rejects(session.evaluate(tokens, { patches: [{ ...ok, layer: 3 }] }), /layer 3 is out of range \(the model has 3 layers, 0 to 2\)/);
    await assert.rejects(session.evaluate(tokens, { patches: [{ ...ok, position: tokens.length }] }), /patch position \d+ is outside the text \(positions 0 to \d+\)/);
    await assert.rejects(session.evaluate(tokens, { patches: [{ ...ok, position: -1 }] }), /patch position -1 is outside the text/);
    await assert.rejects(session.evaluate(tokens, { patches: [{ ...ok, values: new Float32Array(3) }] }), /a patch needs n_embd = 64 values, got 3/);
    await assert.rejects(async () => session.evaluate(tokens, { patches: [{ ...ok, site: 'attn' as 'resid' }] }), /site must be 'resid' or 'mlp_out'/);
    await assert.rejects(async () => session.evaluate(tokens, { patches: [{ ...ok, mode: 'mul' as 'add' }] }), /mode must be 'add' or 'replace'/);
    await assert.rejects(async () => session.evaluate(tokens, { patches: [{ ...ok, values: [1, 2] as unknown as Float32Array }] }), /values must be a Float32Array/);
    assert.throws(() => session.setControlVector(0, new Float32Array(session.nEmbd)), /cannot act on layer 0/);
    // The session still works after every refusal.
    assert.equal((await session.evaluate(tokens)).nTokens, tokens.length);
  });

  test('stopAfterLayer keeps the keys of the layers it computes and refuses logits', async () => {
    const full = await session.evaluate(tokens, { keyLayers: [0, 1], logprobs: false });
    const stopped = await session.evaluate(tokens, { keyLayers: [0, 1], logprobs: false, stopAfterLayer: 1 });
    assert.deepEqual(stopped.keys, full.keys);
    await assert.rejects(session.evaluate(tokens, { stopAfterLayer: 1 }), /has no logits; ask for logprobs: false/);
    await assert.rejects(session.evaluate(tokens, { keyLayers: [2], logprobs: false, stopAfterLayer: 1 }), /deeper than the stop/);
  });
});
