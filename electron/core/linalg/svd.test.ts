// One-sided Jacobi SVD against the definition (U Σ Vᵀ = A, orthonormal U and V) and against
// the eigenvalues of AᵀA computed by the independent symmetric eigensolver.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { SeededRandom } from '../util/seededRandom.ts';
import { matrix, multiplyTransposed, symmetricEigen } from './dense.ts';
import { jacobiSvd } from './svd.ts';

function check(rows: number, cols: number, seed: number) {
  const rng = new SeededRandom(seed);
  const a = matrix(rows, cols, Array.from({ length: rows * cols }, () => rng.next() * 2 - 1));
  const { u, values, v } = jacobiSvd(a);
  for (let k = 1; k < values.length; k++) assert.ok(values[k - 1]! >= values[k]!, 'descending');
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      let s = 0;
      for (let k = 0; k < cols; k++) s += u.data[i * cols + k]! * values[k]! * v.data[j * cols + k]!;
      assert.ok(Math.abs(s - a.data[i * cols + j]!) < 1e-12, `(${i}, ${j}): ${s} vs ${a.data[i * cols + j]}`);
    }
  }
  const vtv = multiplyTransposed(v, v);
  for (let i = 0; i < cols; i++) for (let j = 0; j < cols; j++) assert.ok(Math.abs(vtv.data[i * cols + j]! - (i === j ? 1 : 0)) < 1e-12);
  const nonzero = Math.min(rows, cols);
  for (let i = 0; i < nonzero; i++) {
    for (let j = 0; j < nonzero; j++) {
      let d = 0;
      for (let k = 0; k < rows; k++) d += u.data[k * cols + i]! * u.data[k * cols + j]!;
      assert.ok(Math.abs(d - (i === j ? 1 : 0)) < 1e-12, `u${i}·u${j} = ${d}`);
    }
  }
  const eig = symmetricEigen(multiplyTransposed(a, a)).values;  // ascending
  for (let k = 0; k < cols; k++) {
    // compared squared: the eigenvalues of AᵀA hold σ² only to rounding of σ_max², not σ
    const expected = eig[cols - 1 - k]!;
    assert.ok(Math.abs(values[k]! ** 2 - expected) < 1e-12 * values[0]! ** 2, `σ${k}²: ${values[k]! ** 2} vs ${expected}`);
  }
}

test('U Σ Vᵀ equals the matrix and σ² are the eigenvalues of AᵀA: tall, square and wide', () => {
  check(9, 4, 1);
  check(5, 5, 2);
  check(3, 6, 3);
});

test('a rank-deficient matrix has exact zero directions reported as zero singular values', () => {
  // columns 0 and 2 equal, column 3 zero: rank 2
  const a = matrix(4, 4, [1, 2, 1, 0, 3, -1, 3, 0, 0, 5, 0, 0, 2, 2, 2, 0]);
  const { values } = jacobiSvd(a);
  assert.ok(values[1]! > 1);
  assert.ok(values[2]! < 1e-12 && values[3]! < 1e-12, `${values}`);
});
