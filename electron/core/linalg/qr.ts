// Thin QR of a few long vectors (an edit stack's factors: hundreds of columns of length n_ff),
// by modified Gram–Schmidt run twice per column: one pass loses orthogonality in proportion to
// the columns' condition number, a second pass restores it to rounding level ("twice is
// enough"), which Householder would too but at the cost of forming n × n reflections.
import { matrix, type Matrix } from './dense.ts';

export interface ThinQr {
  /** orthonormal columns, one per independent input column */
  q: Float64Array[];
  /** q.length × columns: column j of the input is Σ_i r(i, j) q_i */
  r: Matrix;
}

/**
 * A column whose remainder after projection is below `dependence` × the largest column norm
 * counts as a combination of the earlier ones and adds no q.
 */
export function thinQr(columns: ArrayLike<number>[], dependence = 1e-12): ThinQr {
  const n = columns.length;
  const length = n === 0 ? 0 : columns[0]!.length;
  const q: Float64Array[] = [];
  const coefficients: Float64Array[] = [];  // per input column, its projections on q so far
  let largest = 0;
  for (const c of columns) {
    if (c.length !== length) throw new Error(`thinQr: a column has ${c.length} values, the first has ${length}`);
    let s = 0;
    for (let i = 0; i < length; i++) s += c[i]! * c[i]!;
    largest = Math.max(largest, Math.sqrt(s));
  }
  for (let j = 0; j < n; j++) {
    const w = Float64Array.from(columns[j]!);
    const coeff = new Float64Array(n);
    for (let pass = 0; pass < 2; pass++) {
      q.forEach((qi, i) => {
        let d = 0;
        for (let k = 0; k < length; k++) d += qi[k]! * w[k]!;
        coeff[i]! += d;
        for (let k = 0; k < length; k++) w[k]! -= d * qi[k]!;
      });
    }
    let norm = 0;
    for (let k = 0; k < length; k++) norm += w[k]! * w[k]!;
    norm = Math.sqrt(norm);
    if (norm > dependence * largest && norm > 0) {
      coeff[q.length] = norm;
      for (let k = 0; k < length; k++) w[k]! /= norm;
      q.push(w);
    }
    coefficients.push(coeff);
  }
  const r = matrix(q.length, n);
  coefficients.forEach((c, j) => { for (let i = 0; i < q.length; i++) r.data[i * n + j] = c[i]!; });
  return { q, r };
}
