// Merging stacked factors: a planted spectrum is recovered through redundant and cancelling
// factors; the truncation equals the best rank-r approximation computed independently from the
// dense ΔW (eigenvectors of ΔWᵀΔW); the reported error is the measured one; a tolerance picks
// the smallest rank that meets it.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { identity, matrix, multiplyTransposed, solve, symmetricEigen, transpose } from '../linalg/dense.ts';
import { thinQr } from '../linalg/qr.ts';
import { SeededRandom } from '../util/seededRandom.ts';
import type { LayerFactors } from './editStack.ts';
import { layerSvd, mergeLayer, truncationRank } from './mergeStack.ts';

const uniform = (rng: SeededRandom, n: number) => Float64Array.from({ length: n }, () => rng.next() * 2 - 1);

function dense(u: ArrayLike<number>[], v: ArrayLike<number>[], nEmbd: number, nFf: number): Float64Array {
  const w = new Float64Array(nEmbd * nFf);
  u.forEach((uj, j) => { for (let e = 0; e < nEmbd; e++) for (let i = 0; i < nFf; i++) w[e * nFf + i]! += uj[e]! * v[j]![i]!; });
  return w;
}

const distance = (a: Float64Array, b: Float64Array) => Math.sqrt(a.reduce((s, x, i) => s + (x - b[i]!) ** 2, 0));
const norm = (a: Float64Array) => Math.sqrt(a.reduce((s, x) => s + x * x, 0));

/** ΔW = P diag(σ) Qᵀ written as mixed factors U = P diag(σ) G, V = Q G⁻ᵀ, plus a pair that cancels. */
function planted(sigma: number[], nEmbd: number, nFf: number, seed: number): LayerFactors {
  const rng = new SeededRandom(seed);
  const r = sigma.length;
  const p = thinQr(Array.from({ length: r }, () => uniform(rng, nEmbd))).q;
  const q = thinQr(Array.from({ length: r }, () => uniform(rng, nFf))).q;
  const g = matrix(r, r, Array.from({ length: r * r }, () => rng.next() * 2 - 1 + 0));
  for (let i = 0; i < r; i++) g.data[i * r + i]! += 2;  // well conditioned
  const gInvT = transpose(solve(g, identity(r)));
  const u: Float32Array[] = [], v: Float32Array[] = [];
  for (let j = 0; j < r; j++) {
    u.push(Float32Array.from({ length: nEmbd }, (_, e) => p.reduce((s, pk, k) => s + pk[e]! * sigma[k]! * g.data[k * r + j]!, 0)));
    v.push(Float32Array.from({ length: nFf }, (_, i) => q.reduce((s, qk, k) => s + qk[i]! * gInvT.data[k * r + j]!, 0)));
  }
  const extra = Float32Array.from(uniform(rng, nEmbd)), other = Float32Array.from(uniform(rng, nFf));
  u.push(extra, extra.map((x) => -x));
  v.push(other, other);
  return { layer: 3, u, v };
}

describe('merging stacked factors by truncated SVD', () => {
  test('a planted spectrum is recovered from redundant, mixed and cancelling factors', () => {
    const sigma = [10, 5, 2, 0.5, 0.1];
    const f = planted(sigma, 24, 40, 5);
    const svd = layerSvd(f);
    assert.equal(f.u.length, 7);
    // the cancelling pair leaves a float32-rounding remnant at most
    assert.ok(svd.values.length >= 5);
    sigma.forEach((s, k) => assert.ok(Math.abs(svd.values[k]! - s) < 1e-5 * sigma[0]!, `σ${k}: ${svd.values[k]} vs ${s}`));
    for (const s of svd.values.slice(5)) assert.ok(s < 1e-5 * sigma[0]!, `σ beyond the planted rank: ${s}`);
    const merged = mergeLayer(f, { tolerance: 0 });
    assert.equal(merged.rankBefore, 7);
    assert.ok(merged.relativeError < 1e-12);
    assert.ok(distance(dense(merged.u, merged.v, 24, 40), dense(f.u, f.v, 24, 40)) < 1e-5 * norm(dense(f.u, f.v, 24, 40)));
  });

  test('the truncation is the best rank-r approximation, computed independently, and its error is the measured one', () => {
    const rng = new SeededRandom(9);
    const nEmbd = 6, nFf = 9, r = 5;
    const f: LayerFactors = { layer: 1, u: Array.from({ length: r }, () => Float32Array.from(uniform(rng, nEmbd))), v: Array.from({ length: r }, () => Float32Array.from(uniform(rng, nFf))) };
    const w = dense(f.u, f.v, nEmbd, nFf);
    // best rank-k approximation: W projected on the top-k eigenvectors of WᵀW (Eckart–Young)
    const eig = symmetricEigen(multiplyTransposed(matrix(nEmbd, nFf, w), matrix(nEmbd, nFf, w)));
    for (const k of [1, 2, 3, 4]) {
      const top = Array.from({ length: k }, (_, t) => Float64Array.from({ length: nFf }, (_, i) => eig.vectors.data[i * nFf + (nFf - 1 - t)]!));
      const best = dense(top.map((t) => Float64Array.from({ length: nEmbd }, (_, e) => t.reduce((s, x, i) => s + w[e * nFf + i]! * x, 0))), top, nEmbd, nFf);
      const merged = mergeLayer(f, { rank: k });
      assert.equal(merged.rankAfter, k);
      const mine = dense(merged.u, merged.v, nEmbd, nFf);
      assert.ok(distance(mine, best) < 1e-5 * norm(w), `rank ${k}: ${distance(mine, best)} from the best approximation`);
      const measured = distance(w, mine) / norm(w);
      assert.ok(Math.abs(measured - merged.relativeError) < 1e-5, `rank ${k}: reported ${merged.relativeError}, measured ${measured}`);
      const expectedError = Math.sqrt(eig.values.slice(0, nFf - k).reduce((s, x) => s + Math.max(0, x), 0) / eig.values.reduce((s, x) => s + Math.max(0, x), 0));
      assert.ok(Math.abs(expectedError - merged.relativeError) < 1e-6);
    }
    assert.equal(mergeLayer(f, { rank: 50 }).rankAfter, r, 'a rank above the numerical rank keeps everything');
  });

  test('a tolerance keeps the smallest rank whose error is within it', () => {
    const sigma = [10, 5, 2, 0.5, 0.1];
    const total = Math.sqrt(sigma.reduce((s, x) => s + x * x, 0));
    const tailAfter3 = Math.sqrt(0.5 ** 2 + 0.1 ** 2) / total;
    assert.equal(truncationRank(sigma, { tolerance: tailAfter3 * 1.001 }), 3);
    assert.equal(truncationRank(sigma, { tolerance: tailAfter3 * 0.999 }), 4);
    assert.equal(truncationRank(sigma, { tolerance: 0 }), 5);
    assert.equal(truncationRank(sigma, { tolerance: 0.999 }), 1, 'dropping everything is an error of 1, never within a tolerance');
    const zero = mergeLayer({ layer: 0, u: [new Float32Array(3)], v: [Float32Array.of(1, 2)] }, { tolerance: 0.1 });
    assert.deepEqual([zero.rankBefore, zero.rankAfter, zero.relativeError], [1, 0, 0], 'a zero ΔW merges to nothing');
    const merged = mergeLayer(planted(sigma, 24, 40, 6), { tolerance: tailAfter3 * 1.001 });
    assert.equal(merged.rankAfter, 3);
    assert.ok(merged.relativeError <= tailAfter3 * 1.001 && merged.relativeError > tailAfter3 * 0.99);
    assert.throws(() => truncationRank(sigma, { rank: 2, tolerance: 0.1 }), /either a rank or a tolerance/);
    assert.throws(() => truncationRank(sigma, { rank: 0 }), /positive integer/);
    assert.throws(() => truncationRank(sigma, { tolerance: 1 }), /in \[0, 1\)/);
  });
});
