// The norm growth of an edited matrix, computed from the factors without forming ΔW, against
// ‖W + Σ u_j v_jᵀ‖_F formed explicitly from the model's dequantised weights.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { layerFactorsOf } from '../export/editStack.ts';
import { loadNative } from '../native/binding.ts';
import { generatedModel, tempDir } from '../testing/fixtures.ts';
import { SeededRandom } from '../util/seededRandom.ts';
import { normGrowth } from './normGrowth.ts';

describe('norm growth', () => {
  test('equals the Frobenius norm of the explicitly patched matrix over the original', async () => {
    const native = await loadNative();
    const model = generatedModel(native, tempDir(), { arch: 'llama', type: 'f32' });
    const w = native.readTensor(model, 'blk.1.ffn_down.weight').values;
    const nFf = 128, nEmbd = w.length / nFf;
    const rng = new SeededRandom(7);
    // two edits on the layer (ranks add up) and one scaled overlay
    const overlays = [1, 2].map(() => ({ layer: 1, rank: 1, u: Float32Array.from({ length: nEmbd }, () => rng.next() - 0.5), v: Float32Array.from({ length: nFf }, () => rng.next() - 0.5) }));
    overlays.push({ ...overlays[0]!, scale: -0.5 } as (typeof overlays)[number]);
    const patched = Float64Array.from(w);
    for (const o of overlays) {
      const s = (o as { scale?: number }).scale ?? 1;
      for (let e = 0; e < nEmbd; e++) for (let i = 0; i < nFf; i++) patched[e * nFf + i]! += s * o.u[e]! * o.v[i]!;
    }
    const norm = (a: ArrayLike<number>) => { let t = 0; for (let i = 0; i < a.length; i++) t += a[i]! * a[i]!; return Math.sqrt(t); };
    const [g] = normGrowth(native, model, layerFactorsOf(overlays));
    assert.equal(g!.rank, 3);
    assert.ok(Math.abs(g!.baseNorm - norm(w)) / norm(w) < 1e-9);
    assert.ok(Math.abs(g!.growth - norm(patched) / norm(w)) < 1e-6, `${g!.growth} vs ${norm(patched) / norm(w)}`);
    assert.ok(g!.growth > 1.01, 'the test edit is large enough to move the norm');
  });
});
