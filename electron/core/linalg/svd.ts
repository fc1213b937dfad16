// Singular value decomposition of a small dense matrix by one-sided Jacobi (Hestenes): columns
// are rotated in pairs until mutually orthogonal. Unlike the eigenvalues of AᵀA it keeps small
// singular values to full relative accuracy, which the error reported for a truncation relies on.
import { identity, matrix, type Matrix } from './dense.ts';

export interface Svd {
  /** rows × cols; column k is the left singular vector of values[k] (zero where values[k] is 0) */
  u: Matrix;
  /** descending, one per column */
  values: Float64Array;
  /** cols × cols; column k is the right singular vector of values[k] */
  v: Matrix;
}

export function jacobiSvd(a: Matrix): Svd {
  const { rows: m, cols: n } = a;
  const w = Float64Array.from(a.data);
  const v = identity(n).data;
  const rotate = (x: Float64Array, stride: number, count: number, p: number, q: number, c: number, s: number) => {
    for (let k = 0; k < count; k++) {
      const xp = x[k * stride + p]!, xq = x[k * stride + q]!;
      x[k * stride + p] = c * xp - s * xq;
      x[k * stride + q] = s * xp + c * xq;
    }
  };
  for (let sweep = 0; sweep < 60; sweep++) {
    let rotated = false;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        let alpha = 0, beta = 0, gamma = 0;
        for (let k = 0; k < m; k++) {
          const wp = w[k * n + p]!, wq = w[k * n + q]!;
          alpha += wp * wp;
          beta += wq * wq;
          gamma += wp * wq;
        }
        if (gamma === 0 || Math.abs(gamma) <= Number.EPSILON * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t), s = c * t;
        rotate(w, n, m, p, q, c, s);
        rotate(v, n, n, p, q, c, s);
      }
    }
    if (!rotated) break;
  }
  const norms = Array.from({ length: n }, (_, j) => {
    let s = 0;
    for (let k = 0; k < m; k++) s += w[k * n + j]! ** 2;
    return Math.sqrt(s);
  });
  const order = norms.map((_, j) => j).sort((x, y) => norms[y]! - norms[x]!);
  const u = matrix(m, n), right = matrix(n, n);
  order.forEach((src, dst) => {
    const sigma = norms[src]!;
    for (let k = 0; k < m; k++) u.data[k * n + dst] = sigma > 0 ? w[k * n + src]! / sigma : 0;
    for (let k = 0; k < n; k++) right.data[k * n + dst] = v[k * n + src]!;
  });
  return { u, values: Float64Array.from(order, (j) => norms[j]!), v: right };
}
