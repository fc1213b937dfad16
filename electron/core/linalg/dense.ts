// Small dense matrices in double for the edit methods' batch-sized algebra (m × m systems,
// m = edits in a batch or a sequence) and for merging factors. The n_ff-sized work stays in
// native code; everything here is O(m³) or O(n m²).
//
// A Matrix is row-major: entry (i, j) is data[i * cols + j].
export interface Matrix {
  rows: number;
  cols: number;
  data: Float64Array;
}

export function matrix(rows: number, cols: number, data?: ArrayLike<number>): Matrix {
  if (data && data.length !== rows * cols) throw new Error(`a ${rows} × ${cols} matrix needs ${rows * cols} values, got ${data.length}`);
  return { rows, cols, data: data ? Float64Array.from(data) : new Float64Array(rows * cols) };
}

export function identity(n: number, scale = 1): Matrix {
  const m = matrix(n, n);
  for (let i = 0; i < n; i++) m.data[i * n + i] = scale;
  return m;
}

/** Columns given as vectors: column j of the result is columns[j]. */
export function fromColumns(columns: ArrayLike<number>[], length: number): Matrix {
  const m = matrix(length, columns.length);
  columns.forEach((c, j) => {
    if (c.length !== length) throw new Error(`column ${j} has ${c.length} values, not ${length}`);
    for (let i = 0; i < length; i++) m.data[i * columns.length + j] = c[i]!;
  });
  return m;
}

export function column(a: Matrix, j: number): Float64Array {
  const out = new Float64Array(a.rows);
  for (let i = 0; i < a.rows; i++) out[i] = a.data[i * a.cols + j]!;
  return out;
}

export function transpose(a: Matrix): Matrix {
  const t = matrix(a.cols, a.rows);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) t.data[j * a.rows + i] = a.data[i * a.cols + j]!;
  return t;
}

export function multiply(a: Matrix, b: Matrix): Matrix {
  if (a.cols !== b.rows) throw new Error(`cannot multiply ${a.rows} × ${a.cols} by ${b.rows} × ${b.cols}`);
  const out = matrix(a.rows, b.cols);
  for (let i = 0; i < a.rows; i++) {
    const o = i * b.cols;
    for (let k = 0; k < a.cols; k++) {
      const aik = a.data[i * a.cols + k]!;
      if (aik === 0) continue;
      const r = k * b.cols;
      for (let j = 0; j < b.cols; j++) out.data[o + j]! += aik * b.data[r + j]!;
    }
  }
  return out;
}

/** aᵀ b without forming aᵀ. */
export function multiplyTransposed(a: Matrix, b: Matrix): Matrix {
  if (a.rows !== b.rows) throw new Error(`cannot multiply (${a.rows} × ${a.cols})ᵀ by ${b.rows} × ${b.cols}`);
  const out = matrix(a.cols, b.cols);
  for (let k = 0; k < a.rows; k++) {
    const ra = k * a.cols, rb = k * b.cols;
    for (let i = 0; i < a.cols; i++) {
      const aki = a.data[ra + i]!;
      if (aki === 0) continue;
      const o = i * b.cols;
      for (let j = 0; j < b.cols; j++) out.data[o + j]! += aki * b.data[rb + j]!;
    }
  }
  return out;
}

export function add(a: Matrix, b: Matrix, scaleB = 1): Matrix {
  if (a.rows !== b.rows || a.cols !== b.cols) throw new Error(`cannot add ${a.rows} × ${a.cols} and ${b.rows} × ${b.cols}`);
  return { rows: a.rows, cols: a.cols, data: a.data.map((x, i) => x + scaleB * b.data[i]!) };
}

export function scale(a: Matrix, s: number): Matrix {
  return { rows: a.rows, cols: a.cols, data: a.data.map((x) => x * s) };
}

export function frobenius(a: Matrix | ArrayLike<number>): number {
  const d = 'data' in a ? a.data : a;
  let s = 0;
  for (let i = 0; i < d.length; i++) s += d[i]! * d[i]!;
  return Math.sqrt(s);
}

/** x with a x = b, by LU with partial pivoting; b may have several columns. Throws on a singular a. */
export function solve(a: Matrix, b: Matrix): Matrix {
  const n = a.rows;
  if (a.cols !== n || b.rows !== n) throw new Error(`cannot solve a ${a.rows} × ${a.cols} system with a ${b.rows}-row right-hand side`);
  const lu = Float64Array.from(a.data), x = Float64Array.from(b.data), m = b.cols;
  let largest = 0;
  for (const v of lu) largest = Math.max(largest, Math.abs(v));
  for (let k = 0; k < n; k++) {
    let p = k;
    for (let i = k + 1; i < n; i++) if (Math.abs(lu[i * n + k]!) > Math.abs(lu[p * n + k]!)) p = i;
    const pivot = lu[p * n + k]!;
    if (!(Math.abs(pivot) > largest * n * Number.EPSILON)) throw new Error(`the ${n} × ${n} system is singular (pivot ${k} is ${pivot})`);
    if (p !== k) {
      for (let j = 0; j < n; j++) [lu[k * n + j], lu[p * n + j]] = [lu[p * n + j]!, lu[k * n + j]!];
      for (let j = 0; j < m; j++) [x[k * m + j], x[p * m + j]] = [x[p * m + j]!, x[k * m + j]!];
    }
    for (let i = k + 1; i < n; i++) {
      const f = lu[i * n + k]! / pivot;
      if (f === 0) continue;
      for (let j = k + 1; j < n; j++) lu[i * n + j]! -= f * lu[k * n + j]!;
      for (let j = 0; j < m; j++) x[i * m + j]! -= f * x[k * m + j]!;
    }
  }
  for (let k = n - 1; k >= 0; k--) {
    for (let j = 0; j < m; j++) {
      let s = x[k * m + j]!;
      for (let i = k + 1; i < n; i++) s -= lu[k * n + i]! * x[i * m + j]!;
      x[k * m + j] = s / lu[k * n + k]!;
    }
  }
  return { rows: n, cols: m, data: x };
}

export interface SymmetricEigen {
  /** ascending */
  values: Float64Array;
  /** column j is the unit eigenvector of values[j] */
  vectors: Matrix;
}

/** Cyclic Jacobi: slow (O(n³) per sweep) but accurate to the last bits, for n up to a few hundred. */
export function symmetricEigen(a: Matrix): SymmetricEigen {
  const n = a.rows;
  if (a.cols !== n) throw new Error('symmetricEigen needs a square matrix');
  const s = Float64Array.from(a.data);
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) s[i * n + j] = s[j * n + i] = (s[i * n + j]! + s[j * n + i]!) / 2;
  const v = identity(n).data;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0, total = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) (i === j ? (total += s[i * n + j]! ** 2) : (off += s[i * n + j]! ** 2));
    if (off <= 1e-30 * (total + off) || off === 0) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = s[p * n + q]!;
        if (apq === 0) continue;
        const theta = (s[q * n + q]! - s[p * n + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), sn = t * c;
        for (let k = 0; k < n; k++) {
          const skp = s[k * n + p]!, skq = s[k * n + q]!;
          s[k * n + p] = c * skp - sn * skq;
          s[k * n + q] = sn * skp + c * skq;
        }
        for (let k = 0; k < n; k++) {
          const spk = s[p * n + k]!, sqk = s[q * n + k]!;
          s[p * n + k] = c * spk - sn * sqk;
          s[q * n + k] = sn * spk + c * sqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p]!, vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - sn * vkq;
          v[k * n + q] = sn * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => s[x * n + x]! - s[y * n + y]!);
  const values = Float64Array.from(order, (i) => s[i * n + i]!);
  const vectors = matrix(n, n);
  order.forEach((src, dst) => {
    for (let k = 0; k < n; k++) vectors.data[k * n + dst] = v[k * n + src]!;
  });
  return { values, vectors };
}

/**
 * Moore–Penrose inverse of a symmetric matrix: eigenvalues below tolerance · max|λ| count as
 * zero. Used where a batch's Gram matrix is singular (two identical keys).
 */
export function symmetricPseudoInverse(a: Matrix, tolerance = 1e-12): { inverse: Matrix; rank: number; values: Float64Array } {
  const { values, vectors } = symmetricEigen(a);
  const n = a.rows;
  const largest = values.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  const out = matrix(n, n);
  let rank = 0;
  for (let k = 0; k < n; k++) {
    if (!(Math.abs(values[k]!) > tolerance * largest)) continue;
    rank++;
    const inv = 1 / values[k]!;
    for (let i = 0; i < n; i++) {
      const vik = vectors.data[i * n + k]! * inv;
      for (let j = 0; j < n; j++) out.data[i * n + j]! += vik * vectors.data[j * n + k]!;
    }
  }
  return { inverse: out, rank, values };
}
