// Prompts of different lengths evaluated together are padded to the longest and attend only
// within themselves: each prompt's log-probabilities, captures and delta gradients equal those
// of that prompt alone (within 1e-4), on models with grouped-query attention (kv heads <
// heads, where the K/V heads are repeated explicitly for the backward), with q/k norms and
// with attention biases, also when starting from a later layer.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import { loadNative, type GraftNative } from '../native/binding.ts';
import type { GraphRequest, GraphResult, NativeGraphModel } from '../native/graphTypes.ts';
import { attentionVariants, maxAbsDiff, randomVector, withGraph } from '../testing/graphFixtures.ts';

let native: GraftNative;
before(async () => {
  native = await loadNative();
});

const texts = ['She said', 'Once upon a time, there was a little girl named Lily.', 'The cat sat on the mat', 'Hi'];

/** The request for prompts[indices], each prompt with its own delta (layer 0, mlp_out) and targets. */
function request(g: NativeGraphModel, prompts: Int32Array[], indices: number[], deltaValues: Float32Array[]): GraphRequest {
  const local = indices.map((i) => prompts[i]!);
  return {
    prompts: local,
    allLogits: true,
    captures: [{ layer: 0, site: 'mlp_key' }, { layer: 1, site: 'resid_in' }, { layer: g.info.nLayer - 1, site: 'resid_out' }],
    deltas: indices.map((i, p) => ({ layer: 0, site: 'mlp_out' as const, rows: [{ prompt: p, pos: Math.floor(local[p]!.length / 2) }], values: deltaValues[i]! })),
    // every position predicts the next token; the last predicts token 1
    targets: local.flatMap((tokens, p) => Array.from(tokens, (_, pos) => ({ prompt: p, pos, token: tokens[pos + 1] ?? 1, weight: 1 + indices[p]! / 2 }))),
  };
}

/** Rows of prompt p (of lengths) out of a tokens × width array with prompts concatenated. */
function rowsOf(values: Float32Array, lengths: number[], p: number, width: number): Float32Array {
  const start = lengths.slice(0, p).reduce((a, b) => a + b, 0);
  return values.subarray(start * width, (start + lengths[p]!) * width);
}

async function compareTogetherAndAlone(g: NativeGraphModel): Promise<void> {
  const prompts = texts.map((t) => g.tokenize(t, true));
  const lengths = prompts.map((p) => p.length);
  assert.ok(new Set(lengths).size >= 3, `the prompts must differ in length: ${lengths}`);
  const deltas = prompts.map((_, i) => randomVector(g.info.nEmbd, 31 + i, 0.1));
  const all = prompts.map((_, i) => i);
  const together = await g.run(request(g, prompts, all, deltas), { backward: true });
  const V = together.nVocab;
  assert.equal(together.rows.length, lengths.reduce((a, b) => a + b, 0));
  for (const c of together.captures) assert.equal(c.values.length, together.rows.length * c.width, 'captures hold no padding rows');

  const alone: GraphResult[] = [];
  for (const p of all) alone.push(await g.run(request(g, prompts, [p], deltas), { backward: true }));
  let offset = 0;
  for (const p of all) {
    const a = alone[p]!;
    const logits = maxAbsDiff(together.logprobs.subarray(offset * V, (offset + lengths[p]!) * V), a.logprobs);
    assert.ok(logits <= 1e-4, `prompt ${p}: max |Δ log p| = ${logits}`);
    for (let i = 0; i < lengths[p]!; i++) assert.deepEqual(together.rows[offset + i], { prompt: p, pos: i });
    together.captures.forEach((c, k) => {
      const d = maxAbsDiff(rowsOf(c.values, lengths, p, c.width), a.captures[k]!.values);
      assert.ok(d <= 1e-4, `prompt ${p}, capture ${c.site} of layer ${c.layer}: max |Δ| = ${d}`);
    });
    // prompt p's delta touches only prompt p, so its gradient is that of p's loss alone
    const grad = maxAbsDiff(together.gradients[p]!, a.gradients[0]!);
    const scale = Math.max(...a.gradients[0]!.map(Math.abs));
    assert.ok(scale > 0 && grad <= 1e-4 * Math.max(1, scale), `prompt ${p}: max |Δ gradient| = ${grad} (largest entry ${scale})`);
    offset += lengths[p]!;
  }
  const loss = alone.reduce((s, a) => s + a.loss, 0);
  assert.ok(Math.abs(together.loss - loss) <= 1e-4 * Math.max(1, loss), `loss ${together.loss} vs ${loss} apart`);

  // Starting at layer 1 from the (unpadded) states entering it: the states are scattered into
  // the padded layout, and each prompt again gets what it gets alone.
  const entering = together.captures[1]!;
  const fromLayer = await g.run({ prompts, fromLayer: 1, inputStates: entering.values, allLogits: true });
  offset = 0;
  for (const p of all) {
    const plain = await g.run({ prompts: [prompts[p]!], fromLayer: 1, inputStates: rowsOf(entering.values, lengths, p, entering.width), allLogits: true });
    const d = maxAbsDiff(fromLayer.logprobs.subarray(offset * V, (offset + lengths[p]!) * V), plain.logprobs);
    assert.ok(d <= 1e-4, `from layer 1, prompt ${p}: max |Δ log p| = ${d}`);
    offset += lengths[p]!;
  }
}

describe('own graph: prompts evaluated together equal each prompt alone', () => {
  for (const v of attentionVariants(() => native)) {
    test(v.name, { skip: v.skip }, async () => {
      await withGraph(native, v.file(), compareTogetherAndAlone, v.options);
    });
  }
});
