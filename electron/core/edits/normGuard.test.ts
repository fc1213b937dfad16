// The norm guard against dense matrices: W + S + αN formed explicitly from the model's weights
// for a stack S and an update N, its Frobenius norm over ‖W‖ compared with the guard's growth,
// and the guard's α checked to be the largest within the cap (for an update that grows the
// norm at once, and for one that first shrinks it), with the two edge cases.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { LayerFactors } from '../export/editStack.ts';
import { loadNative } from '../native/binding.ts';
import { generatedModel, tempDir } from '../testing/fixtures.ts';
import { SeededRandom } from '../util/seededRandom.ts';
import { growthAt, normGuard } from './normGuard.ts';

const nFf = 128;

function randomFactors(rng: SeededRandom, layer: number, rank: number, nEmbd: number): LayerFactors {
  const vec = (n: number) => Float32Array.from({ length: n }, () => rng.next() - 0.5);
  return { layer, u: Array.from({ length: rank }, () => vec(nEmbd)), v: Array.from({ length: rank }, () => vec(nFf)) };
}

/** ‖W + S + αN‖_F / ‖W‖_F with every matrix formed. */
function denseGrowth(w: Float32Array, stack: LayerFactors | undefined, update: LayerFactors, alpha: number): number {
  const m = Float64Array.from(w);
  const nEmbd = w.length / nFf;
  const addTo = (f: LayerFactors, s: number) => f.u.forEach((u, j) => { for (let e = 0; e < nEmbd; e++) for (let i = 0; i < nFf; i++) m[e * nFf + i]! += s * u[e]! * f.v[j]![i]!; });
  if (stack) addTo(stack, 1);
  addTo(update, alpha);
  const norm = (a: ArrayLike<number>) => { let t = 0; for (let i = 0; i < a.length; i++) t += a[i]! * a[i]!; return Math.sqrt(t); };
  return norm(m) / norm(w);
}

describe('norm guard', async () => {
  const native = await loadNative();
  const model = generatedModel(native, tempDir(), { arch: 'llama', type: 'f32' });
  const weights = (layer: number) => native.readTensor(model, `blk.${layer}.ffn_down.weight`).values;
  const nEmbd = weights(0).length / nFf;
  const rng = new SeededRandom(21);
  const stack = [randomFactors(rng, 1, 2, nEmbd)];
  const growing = [randomFactors(rng, 0, 1, nEmbd), randomFactors(rng, 1, 3, nEmbd)];

  test('growth before and after equals the dense computation, on a layer with and without a stack', () => {
    for (const g of normGuard(native, model, stack, growing, 100)) {
      const update = growing.find((f) => f.layer === g.layer)!, s = stack.find((f) => f.layer === g.layer);
      assert.ok(Math.abs(g.growthBefore - denseGrowth(weights(g.layer), s, update, 0)) < 1e-6, `layer ${g.layer} before`);
      assert.ok(Math.abs(g.growthAfter - denseGrowth(weights(g.layer), s, update, 1)) < 1e-6, `layer ${g.layer} after`);
      for (const alpha of [0.3, 0.7]) assert.ok(Math.abs(growthAt(g.quadratic, alpha) - denseGrowth(weights(g.layer), s, update, alpha)) < 1e-6);
      assert.deepEqual([g.scale, g.note], [1, null], 'well within a loose cap the update is applied whole');
      assert.equal(g.cappedGrowth, g.growthAfter);
    }
    assert.equal(normGuard(native, model, stack, growing)[0]!.growthBefore, 1, 'a layer without a stack starts at 1');
  });

  test('between before and after, the scale is the largest α whose dense growth is within the cap', () => {
    // an update growing the norm from the start, and one (−3 × the stack) that first shrinks it
    const shrinking: LayerFactors = { layer: 1, u: stack[0]!.u.map((u) => u.map((x) => -3 * x)), v: stack[0]!.v };
    for (const update of [growing[1]!, shrinking]) {
      const [probe] = normGuard(native, model, stack, [update], 100);
      assert.ok(probe!.growthAfter > probe!.growthBefore + 0.01, 'the update grows the norm overall');
      const cap = (probe!.growthBefore + probe!.growthAfter) / 2;
      const [g] = normGuard(native, model, stack, [update], cap);
      assert.ok(g!.scale > 0 && g!.scale < 1, `scale ${g!.scale}`);
      assert.ok(Math.abs(denseGrowth(weights(1), stack[0], update, g!.scale) - cap) < 1e-6, 'at the scale the growth is the cap');
      assert.ok(Math.abs(g!.cappedGrowth - cap) < 1e-9);
      assert.ok(denseGrowth(weights(1), stack[0], update, Math.min(1, g!.scale + 1e-3)) > cap, 'a larger α exceeds the cap');
      assert.match(g!.note!, /would grow the norm to .* over the cap .*; scaled by/);
      if (update === shrinking) assert.ok(g!.quadratic.linear < 0, 'this case exercises the other root formula');
    }
  });

  test('a stack already over the cap gives scale 0 and says so; a cap below 1 is refused', () => {
    const [probe] = normGuard(native, model, stack, [growing[1]!], 100);
    const [g] = normGuard(native, model, stack, [growing[1]!], (1 + probe!.growthBefore) / 2);
    assert.equal(g!.scale, 0);
    assert.equal(g!.cappedGrowth, g!.growthBefore);
    assert.match(g!.note!, /the stack alone already grows the norm by .* over the cap/);
    assert.throws(() => normGuard(native, model, stack, growing, 0.9), /at least 1/);
  });
});
