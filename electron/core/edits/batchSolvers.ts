// The three batch updates, each as ΔW = R Aᵀ on blk.L.ffn_down.weight, where K (n_ff × m)
// holds the batch's keys as columns, R (n_embd × m) the residuals the layer must add at those
// keys, and A (n_ff × m) is what each method solves for. Only m × m systems are formed: the
// n_ff-sized inverses enter through a cached Cholesky solve of C or a null-space projector.
//
//   MEMIT      A = (λC + KKᵀ)⁻¹ K                     normal equations ΔW(λC + KKᵀ) = R Kᵀ
//              = (λC)⁻¹K (I + Kᵀ(λC)⁻¹K)⁻¹            (push-through identity)
//   EMMET      A = C'⁻¹ K D⁻¹,  D = Kᵀ C'⁻¹ K + μ I   equalities ΔW K = R D⁻¹(D − μI): = R at μ = 0
//              C' = λC (plus the ridge every solve carries); pseudo-inverse of D when singular
//   AlphaEdit  A = S⁻¹ P K,  S = P(KKᵀ + KₚKₚᵀ) + ℓ I  ΔW k₀ = 0 for every k₀ with P k₀ = 0
//              with B = [K Kₚ]: S⁻¹ = (I − PB(ℓI + BᵀPB)⁻¹Bᵀ)/ℓ   (Woodbury)
import { column, fromColumns, matrix, multiply, multiplyTransposed, solve, symmetricPseudoInverse, type Matrix } from '../linalg/dense.ts';

/** x = M⁻¹ b for a fixed symmetric positive-definite M (a Cholesky factor of C plus its ridge). */
export type SpdSolve = (b: Float64Array) => Float64Array;

/** P x: the projector onto the preserved keys' null space (AlphaEdit). */
export interface Projector {
  apply(x: Float64Array): Float64Array;
}

function solveColumns(solveFn: SpdSolve, k: Matrix, scale = 1): Matrix {
  const cols = Array.from({ length: k.cols }, (_, j) => {
    const x = solveFn(column(k, j));
    if (scale !== 1) for (let i = 0; i < x.length; i++) x[i]! *= scale;
    return x;
  });
  return fromColumns(cols, k.rows);
}

function addIdentity(a: Matrix, s: number): Matrix {
  const out = matrix(a.rows, a.cols, a.data);
  for (let i = 0; i < a.rows; i++) out.data[i * a.cols + i]! += s;
  return out;
}

/** MEMIT's A = (λC + KKᵀ)⁻¹K; covariance solves with C (its ridge included). */
export function memitAdjustedKeys(keys: Matrix, covariance: SpdSolve, lambda: number): Matrix {
  if (!(lambda > 0)) throw new Error(`mom2_update_weight λ must be positive, got ${lambda}`);
  const y = solveColumns(covariance, keys, 1 / lambda);        // (λC)⁻¹K
  const gram = addIdentity(multiplyTransposed(keys, y), 1);    // I + Kᵀ(λC)⁻¹K, symmetric positive definite
  return transposeSolve(y, gram);
}

/** y G⁻¹ for symmetric G, as (G⁻¹ yᵀ)ᵀ. */
function transposeSolve(y: Matrix, g: Matrix): Matrix {
  const yt = matrix(y.cols, y.rows);
  for (let i = 0; i < y.rows; i++) for (let j = 0; j < y.cols; j++) yt.data[j * y.rows + i] = y.data[i * y.cols + j]!;
  const xt = solve(g, yt);
  const out = matrix(y.rows, y.cols);
  for (let i = 0; i < y.rows; i++) for (let j = 0; j < y.cols; j++) out.data[i * y.cols + j] = xt.data[j * y.rows + i]!;
  return out;
}

export interface EmmetResult {
  adjusted: Matrix;
  /** D was singular and its pseudo-inverse was used (e.g. two requests with the same key). */
  pseudoInverse: boolean;
  /** Smallest over largest eigenvalue of D: near zero means nearly dependent keys. */
  conditioning: number;
}

/** EMMET's A = C'⁻¹K D⁻¹ with C' = λC; covariance solves with C. */
export function emmetAdjustedKeys(keys: Matrix, covariance: SpdSolve, lambda: number, emmetLambda: number): EmmetResult {
  if (!(lambda > 0)) throw new Error(`mom2_update_weight λ must be positive, got ${lambda}`);
  const y = solveColumns(covariance, keys, 1 / lambda);        // C'⁻¹K
  const d = addIdentity(multiplyTransposed(keys, y), keys.cols > 1 ? emmetLambda : 0);
  const eig = symmetricPseudoInverse(d, 1e-10);
  const largest = eig.values[eig.values.length - 1]!;
  const conditioning = largest > 0 ? eig.values[0]! / largest : 0;
  if (eig.rank === d.rows) {
    try {
      return { adjusted: transposeSolve(y, d), pseudoInverse: false, conditioning };
    } catch {
      // numerically singular despite the eigenvalue test: the pseudo-inverse below
    }
  }
  return { adjusted: multiply(y, eig.inverse), pseudoInverse: true, conditioning };
}

/** AlphaEdit's A = S⁻¹PK with S = P(KKᵀ + KₚKₚᵀ) + ℓI; preserved holds Kₚ as columns (or null). */
export function alphaEditAdjustedKeys(keys: Matrix, preserved: Matrix | null, projector: Projector, l2: number): Matrix {
  if (!(l2 > 0)) throw new Error(`AlphaEdit's L2 must be positive, got ${l2}`);
  const n = keys.rows, m = keys.cols;
  const all = preserved && preserved.cols > 0 ? concatColumns(keys, preserved) : keys;  // B = [K Kₚ]
  const pb = fromColumns(Array.from({ length: all.cols }, (_, j) => projector.apply(column(all, j))), n);  // PB; PK is its first m columns
  const gram = multiplyTransposed(all, pb);  // BᵀPB, whose first m columns are BᵀPK
  const inner = addIdentity(gram, l2);
  const btpk = matrix(all.cols, m);
  for (let i = 0; i < all.cols; i++) for (let j = 0; j < m; j++) btpk.data[i * m + j] = gram.data[i * all.cols + j]!;
  // A = (PK − PB (ℓI + BᵀPB)⁻¹ BᵀPK) / ℓ
  const correction = multiply(pb, solve(inner, btpk));
  const out = matrix(n, m);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) out.data[i * m + j] = (pb.data[i * all.cols + j]! - correction.data[i * m + j]!) / l2;
  return out;
}

function concatColumns(a: Matrix, b: Matrix): Matrix {
  if (a.rows !== b.rows) throw new Error(`cannot put ${a.rows}-row and ${b.rows}-row keys side by side`);
  const out = matrix(a.rows, a.cols + b.cols);
  for (let i = 0; i < a.rows; i++) {
    out.data.set(a.data.subarray(i * a.cols, (i + 1) * a.cols), i * out.cols);
    out.data.set(b.data.subarray(i * b.cols, (i + 1) * b.cols), i * out.cols + a.cols);
  }
  return out;
}
