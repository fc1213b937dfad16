import assert from 'node:assert/strict';
import { test } from 'node:test';

import { add, frobenius, identity, matrix, multiply, multiplyTransposed, solve, symmetricEigen, symmetricPseudoInverse, transpose } from './dense.ts';
import { randomMatrix } from '../testing/randomMatrix.ts';

test('solve reproduces the right-hand side, pivoting past a zero leading entry', () => {
  const a = randomMatrix(7, 7, 3);
  a.data[0] = 0;
  const b = randomMatrix(7, 3, 4);
  const x = solve(a, b);
  assert.ok(frobenius(add(multiply(a, x), b, -1)) < 1e-12 * frobenius(b));
  assert.throws(() => solve(matrix(2, 2, [1, 2, 2, 4]), identity(2)), /singular/);
});

test('multiplyTransposed equals multiplying by the explicit transpose', () => {
  const a = randomMatrix(5, 3, 1), b = randomMatrix(5, 4, 2);
  assert.ok(frobenius(add(multiplyTransposed(a, b), multiply(transpose(a), b), -1)) < 1e-14);
});

test('Jacobi eigen-decomposition: A V = V Λ, VᵀV = I, known spectrum recovered', () => {
  // A = Q diag(λ) Qᵀ with Q from the eigenvectors of an unrelated matrix
  const g = randomMatrix(6, 6, 9);
  const q = symmetricEigen(multiplyTransposed(g, g)).vectors;
  const lambda = [-3, 0, 0, 1e-9, 2, 5];
  const d = matrix(6, 6);
  lambda.forEach((l, i) => (d.data[i * 6 + i] = l));
  const a = multiply(multiply(q, d), transpose(q));
  const { values, vectors } = symmetricEigen(a);
  values.forEach((v, i) => assert.ok(Math.abs(v - lambda[i]!) < 1e-12, `λ${i} = ${v}, expected ${lambda[i]}`));
  assert.ok(frobenius(add(multiplyTransposed(vectors, vectors), identity(6), -1)) < 1e-12);
  const av = multiply(a, vectors);
  for (let j = 0; j < 6; j++) for (let i = 0; i < 6; i++) assert.ok(Math.abs(av.data[i * 6 + j]! - values[j]! * vectors.data[i * 6 + j]!) < 1e-12);
});

test('pseudo-inverse of a singular Gram matrix satisfies the Penrose conditions', () => {
  const k = randomMatrix(4, 6, 5);
  k.data.copyWithin(0, 6, 12);  // duplicate a row: the Gram matrix K Kᵀ is singular
  const gram = multiply(k, transpose(k));
  const { inverse, rank } = symmetricPseudoInverse(gram);
  assert.equal(rank, 3);
  assert.ok(frobenius(add(multiply(multiply(gram, inverse), gram), gram, -1)) < 1e-10 * frobenius(gram));
  assert.ok(frobenius(add(multiply(multiply(inverse, gram), inverse), inverse, -1)) < 1e-10 * frobenius(inverse));
});
