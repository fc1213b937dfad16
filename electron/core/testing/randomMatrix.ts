// Seeded random matrices for the linear-algebra tests: entries uniform in [−1, 1).
import { matrix, type Matrix } from '../linalg/dense.ts';
import { SeededRandom } from '../util/seededRandom.ts';

export function randomMatrix(rows: number, cols: number, seed: number): Matrix {
  const r = new SeededRandom(seed);
  return matrix(rows, cols, Array.from({ length: rows * cols }, () => 2 * r.next() - 1));
}
