// Merging a layer's stacked factors into fewer: ΔW = Σ_j u_j v_jᵀ = U Vᵀ has rank at most the
// number of factors, but a long sequence of edits often spans far fewer directions. With
// U = Q_u R_u and V = Q_v R_v, ΔW = Q_u (R_u R_vᵀ) Q_vᵀ, so the SVD of the small core gives the
// exact thin SVD of ΔW without ever forming the n_embd × n_ff matrix; keeping the leading
// singular triplets is the best approximation of that rank (Eckart–Young), and the discarded
// singular values give its error exactly.
import { matrix, type Matrix } from '../linalg/dense.ts';
import { thinQr } from '../linalg/qr.ts';
import { jacobiSvd } from '../linalg/svd.ts';
import type { LayerFactors } from './editStack.ts';

export interface LayerSvd {
  layer: number;
  /** descending, nonzero only */
  values: number[];
  /** unit vectors in R^n_embd, one per value */
  left: Float64Array[];
  /** unit vectors in R^n_ff, one per value */
  right: Float64Array[];
}

/** Either the rank to keep, or the largest relative Frobenius error allowed (0: lossless). */
export interface MergeTarget {
  rank?: number;
  tolerance?: number;
}

export interface MergedLayer {
  layer: number;
  /** factors before the merge (the stacked rank, not the numerical one) */
  rankBefore: number;
  rankAfter: number;
  /** ‖ΔW − ΔW_r‖_F / ‖ΔW‖_F, from the discarded singular values (0 for a zero ΔW) */
  relativeError: number;
  singularValues: number[];
  /** σ_k times the left singular vector */
  u: Float32Array[];
  v: Float32Array[];
}

function combine(q: Float64Array[], coefficients: Matrix, column: number): Float64Array {
  const out = new Float64Array(q[0]?.length ?? 0);
  q.forEach((qi, i) => {
    const c = coefficients.data[i * coefficients.cols + column]!;
    for (let k = 0; k < out.length; k++) out[k]! += c * qi[k]!;
  });
  return out;
}

export function layerSvd(f: LayerFactors): LayerSvd {
  if (f.u.length !== f.v.length) throw new Error(`layer ${f.layer}: ${f.u.length} u factors but ${f.v.length} v factors`);
  const qu = thinQr(f.u), qv = thinQr(f.v);
  // core = R_u R_vᵀ
  const core = matrix(qu.q.length, qv.q.length);
  const r = f.u.length;
  for (let i = 0; i < qu.q.length; i++) {
    for (let j = 0; j < qv.q.length; j++) {
      let s = 0;
      for (let k = 0; k < r; k++) s += qu.r.data[i * r + k]! * qv.r.data[j * r + k]!;
      core.data[i * qv.q.length + j] = s;
    }
  }
  const svd = jacobiSvd(core);
  const kept = Array.from(svd.values).map((s, k) => ({ s, k })).filter(({ s }) => s > 0);
  return {
    layer: f.layer,
    values: kept.map(({ s }) => s),
    left: kept.map(({ k }) => combine(qu.q, svd.u, k)),
    right: kept.map(({ k }) => combine(qv.q, svd.v, k)),
  };
}

/** ‖σ_{rank…}‖ / ‖σ‖, summed from the smallest so small tails are not lost to rounding. */
export function truncationError(values: number[], rank: number): number {
  let tail = 0, total = 0;
  for (let k = values.length - 1; k >= 0; k--) {
    total += values[k]! ** 2;
    if (k >= rank) tail += values[k]! ** 2;
  }
  return total === 0 ? 0 : Math.sqrt(tail / total);
}

export function truncationRank(values: number[], target: MergeTarget): number {
  if (target.rank !== undefined && target.tolerance !== undefined) throw new Error('give either a rank or a tolerance, not both');
  if (target.rank !== undefined) {
    if (!Number.isInteger(target.rank) || target.rank < 1) throw new Error(`the rank must be a positive integer, got ${target.rank}`);
    return Math.min(target.rank, values.length);
  }
  const tolerance = target.tolerance ?? 0;
  if (!(tolerance >= 0 && tolerance < 1)) throw new Error(`the tolerance is a relative error in [0, 1), got ${tolerance}`);
  let rank = values.length;
  while (rank > 0 && truncationError(values, rank - 1) <= tolerance) rank--;
  return rank;
}

export function mergeLayer(f: LayerFactors, target: MergeTarget): MergedLayer {
  const svd = layerSvd(f);
  const rank = truncationRank(svd.values, target);
  return {
    layer: f.layer,
    rankBefore: f.u.length,
    rankAfter: rank,
    relativeError: truncationError(svd.values, rank),
    singularValues: svd.values,
    u: svd.left.slice(0, rank).map((l, k) => Float32Array.from(l, (x) => x * svd.values[k]!)),
    v: svd.right.slice(0, rank).map((r) => Float32Array.from(r)),
  };
}
