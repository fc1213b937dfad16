// Each batch update checked against its defining equations, formed densely and independently
// of the push-through / Woodbury shortcuts the solvers take.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { add, column, frobenius, identity, matrix, multiply, multiplyTransposed, solve, symmetricEigen, transpose, type Matrix } from '../linalg/dense.ts';
import { alphaEditAdjustedKeys, emmetAdjustedKeys, memitAdjustedKeys, type SpdSolve } from './batchSolvers.ts';
import { randomMatrix } from '../testing/randomMatrix.ts';

/** C = E[kkᵀ] of 200 keys with decaying scales: a few large directions, many small ones. */
function moments(n: number, seed: number): Matrix {
  const keys = randomMatrix(200, n, seed);
  for (let t = 0; t < 200; t++) for (let i = 0; i < n; i++) keys.data[t * n + i]! *= Math.exp(-i / 6);
  const c = multiplyTransposed(keys, keys);
  return matrix(n, n, c.data.map((x) => x / 200));
}

const denseSolve = (a: Matrix): SpdSolve => (b) => solve(a, matrix(b.length, 1, b)).data;

function relative(a: Matrix, b: Matrix): number {
  return frobenius(add(a, b, -1)) / frobenius(b);
}

const n = 24, m = 5, nEmbd = 7;
const c = moments(n, 11);
const k = randomMatrix(n, m, 12), r = randomMatrix(nEmbd, m, 13);

test('MEMIT satisfies its normal equations ΔW(λC + KKᵀ) = R Kᵀ', () => {
  const lambda = 15;
  const a = memitAdjustedKeys(k, denseSolve(c), lambda);
  const dw = multiply(r, transpose(a));
  const system = add(matrix(n, n, c.data.map((x) => lambda * x)), multiply(k, transpose(k)));
  assert.ok(relative(multiply(dw, system), multiply(r, transpose(k))) < 1e-9);
  // and it is not trivially so: a different λ breaks them
  const other = multiply(r, transpose(memitAdjustedKeys(k, denseSolve(c), 2 * lambda)));
  assert.ok(relative(multiply(other, system), multiply(r, transpose(k))) > 1e-3);
});

test('EMMET meets its equalities exactly at μ = 0 and within the regulariser otherwise', () => {
  const lambda = 10;
  const exact = emmetAdjustedKeys(k, denseSolve(c), lambda, 0);
  assert.equal(exact.pseudoInverse, false);
  assert.ok(relative(multiply(multiply(r, transpose(exact.adjusted)), k), r) < 1e-9, 'ΔW K = R');
  const mu = 0.1;
  const reg = emmetAdjustedKeys(k, denseSolve(c), lambda, mu);
  const cInvK = multiply(solve(matrix(n, n, c.data.map((x) => lambda * x)), identity(n)), k);
  const d = add(multiplyTransposed(k, cInvK), identity(m, mu));
  const expected = multiply(multiply(r, solve(d, identity(m))), add(d, identity(m, mu), -1));  // R D⁻¹(D − μI)
  assert.ok(relative(multiply(multiply(r, transpose(reg.adjusted)), k), expected) < 1e-9);
  assert.ok(relative(multiply(multiply(r, transpose(reg.adjusted)), k), r) > 1e-6, 'the regulariser must loosen the equalities');
});

test('EMMET falls back to the pseudo-inverse when two requests share a key', () => {
  const twin = matrix(n, m, k.data);
  for (let i = 0; i < n; i++) twin.data[i * m + 1] = twin.data[i * m + 0]!;
  const targets = matrix(nEmbd, m, r.data);
  for (let i = 0; i < nEmbd; i++) targets.data[i * m + 1] = targets.data[i * m + 0]!;  // consistent targets
  const out = emmetAdjustedKeys(twin, denseSolve(c), 10, 0);
  assert.equal(out.pseudoInverse, true);
  assert.ok(out.conditioning < 1e-10);
  assert.ok(relative(multiply(multiply(targets, transpose(out.adjusted)), twin), targets) < 1e-8);
});

test('AlphaEdit: the update vanishes on preserved keys and solves S A = P K', () => {
  const { values, vectors } = symmetricEigen(c);
  const threshold = 1e-3;
  const nullCols = [...values.keys()].filter((i) => values[i]! < threshold);
  assert.ok(nullCols.length > 3 && nullCols.length < n - 3, `the test matrix needs both sides (${nullCols.length} of ${n} below)`);
  const u = matrix(n, nullCols.length);
  nullCols.forEach((src, j) => { for (let i = 0; i < n; i++) u.data[i * nullCols.length + j] = vectors.data[i * n + src]!; });
  const p = multiply(u, transpose(u));
  const projector = { apply: (x: Float64Array) => multiply(p, matrix(n, 1, x)).data };
  const preserved = randomMatrix(n, 3, 14), l2 = 10;
  const a = alphaEditAdjustedKeys(k, preserved, projector, l2);
  const both = multiply(k, transpose(k)), kp = multiply(preserved, transpose(preserved));
  const s = add(multiply(p, add(both, kp)), identity(n, l2));
  assert.ok(relative(multiply(s, a), multiply(p, k)) < 1e-9, 'S A = P K');
  const dw = multiply(r, transpose(a));
  const rangeKeys = multiply(add(identity(n), p, -1), randomMatrix(n, 6, 15));  // (I − P) k: what C spans
  for (let j = 0; j < 6; j++) {
    const k0 = column(rangeKeys, j);
    const out = multiply(dw, matrix(n, 1, k0));
    assert.ok(frobenius(out) < 1e-9 * frobenius(dw) * frobenius(k0), `‖ΔW k₀‖ = ${frobenius(out)}`);
  }
  // a key outside the preserved space is moved
  assert.ok(frobenius(multiply(dw, matrix(n, 1, column(multiply(p, k), 0)))) > 1e-3 * frobenius(dw));
});
