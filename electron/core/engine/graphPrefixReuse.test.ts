// A reused prefix: with reusePrefix the graph computes each prompt only from its first delta or
// output row on and takes the earlier tokens' keys and values from one forward pass. Nothing a
// delta can reach is skipped, so log-probabilities, loss, gradients and whole Adam runs equal
// those of the full graph (within float rounding), on every attention variant (GQA with 2 and 1
// kv heads, biases, q/k norms, Q8_0), from a later layer and with an overlay on the stack.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import { loadNative, type GraftNative } from '../native/binding.ts';
import type { GraphRequest, NativeGraphModel } from '../native/graphTypes.ts';
import { realModel } from '../testing/fixtures.ts';
import { attentionVariants, maxAbsDiff, randomVector, withGraph } from '../testing/graphFixtures.ts';

let native: GraftNative;
before(async () => {
  native = await loadNative();
});

const texts = ['Once upon a time, there was a little girl named Lily.', 'The cat sat on the mat and looked', 'She said hello', 'Tom and Sam went to the park to play'];

/**
 * Deltas at a layer's MLP output in the middle of three prompts, targets from there on, a KL
 * reference at one delta row, and a fourth prompt without a delta whose only output row is
 * near its end: every prompt has a prefix that no delta reaches.
 */
function request(g: NativeGraphModel, prompts: Int32Array[], layer: number, V: number): GraphRequest {
  const at = prompts.map((p) => Math.floor(p.length / 2));
  const withDelta = [0, 1, 2];
  return {
    prompts,
    deltas: withDelta.map((p) => ({ layer, site: 'mlp_out' as const, rows: [{ prompt: p, pos: at[p]! }], values: randomVector(g.info.nEmbd, 7 + p, 0.2) })),
    targets: withDelta.flatMap((p) => Array.from({ length: prompts[p]!.length - at[p]! }, (_, i) => ({ prompt: p, pos: at[p]! + i, token: prompts[p]![at[p]! + i + 1] ?? 1, weight: 0.5 + p }))),
    references: [{ prompt: 1, pos: at[1]!, logprobs: new Float32Array(V).fill(-Math.log(V)), weight: 0.25 }],
    logitRows: [{ prompt: 3, pos: prompts[3]!.length - 2 }],
  };
}

async function compareReusedAndFull(g: NativeGraphModel): Promise<void> {
  const prompts = texts.map((t) => g.tokenize(t, true));
  const total = prompts.reduce((n, p) => n + p.length, 0);
  const V = g.info.nVocab;
  const layer = Math.min(1, g.info.nLayer - 1);
  const check = (what: string, a: ArrayLike<number>, b: ArrayLike<number>, tolerance: number) => {
    const scale = Math.max(1, ...Array.from(b, Math.abs));
    const d = maxAbsDiff(a, b);
    assert.ok(d <= tolerance * scale, `${what}: max |Δ| = ${d} (largest entry ${scale})`);
  };
  const compare = async (what: string, base: GraphRequest) => {
    const full = await g.run(base, { backward: true });
    const reused = await g.run({ ...base, reusePrefix: true }, { backward: true });
    assert.equal(full.computedTokens, total, `${what}: the full graph computes every token`);
    assert.ok(reused.computedTokens < total * 0.75, `${what}: the reused prefix saves tokens (${reused.computedTokens} of ${total})`);
    assert.deepEqual(reused.rows, full.rows);
    check(`${what}: log-probabilities`, reused.logprobs, full.logprobs, 1e-4);
    check(`${what}: loss`, [reused.loss, reused.nll, reused.kl], [full.loss, full.nll, full.kl], 1e-5);
    full.gradients.forEach((grad, i) => check(`${what}: gradient ${i}`, reused.gradients[i]!, grad, 1e-4));

    const adam = { steps: 6, lr: 0.3, normPenalty: 0.01, maxNorm: [2, 2, 2] };
    const a = await g.optimize(base, adam);
    const b = await g.optimize({ ...base, reusePrefix: true }, adam);
    check(`${what}: Adam's losses`, b.steps.map((s) => s.loss), a.steps.map((s) => s.loss), 1e-4);
    a.deltas.forEach((d, i) => check(`${what}: optimised delta ${i}`, b.deltas[i]!, d, 1e-4));
  };

  await compare('from the embeddings', request(g, prompts, layer, V));
  const overlay = { layer, rank: 1, u: randomVector(g.info.nEmbd, 3, 0.3), v: randomVector(g.info.nFf, 4, 0.3) };
  await compare('with an overlay', { ...request(g, prompts, layer, V), overlays: [overlay] });
  const entering = await g.run({ prompts, captures: [{ layer, site: 'resid_in' }] });
  await compare(`from layer ${layer}`, { ...request(g, prompts, layer, V), fromLayer: layer, inputStates: entering.captures[0]!.values });
}

describe('own graph: a reused prefix gives the full graph\'s results', () => {
  for (const v of attentionVariants(() => native)) {
    test(v.name, { skip: v.skip }, async () => {
      await withGraph(native, v.file(), compareReusedAndFull, v.options);
    });
  }

  const stories = realModel('stories260K-F32.gguf');
  test('captures and all-logits requests compute every token', { skip: stories.skip }, async () => {
    await withGraph(native, stories.path!, async (g) => {
      const prompts = texts.map((t) => g.tokenize(t, true));
      const total = prompts.reduce((n, p) => n + p.length, 0);
      const base = request(g, prompts, 1, g.info.nVocab);
      assert.equal((await g.run({ ...base, reusePrefix: true, captures: [{ layer: 0, site: 'mlp_key' }] })).computedTokens, total);
      assert.equal((await g.run({ ...base, reusePrefix: true, allLogits: true })).computedTokens, total);
    });
  });
});
