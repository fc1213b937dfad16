// Frobenius-norm growth of each edited matrix across a stack, ‖W + ΔW‖_F / ‖W‖_F with
// ΔW = Σ_j u_j v_jᵀ: the quantity follow-up work on sequential editing ties to long-run
// collapse. Computed exactly from the factors without forming ΔW:
//   ‖W + ΔW‖² = ‖W‖² + 2 Σ_j u_jᵀ W v_j + Σ_{j,k} (u_j·u_k)(v_j·v_k).
// The inner products are exported for the norm guard, which needs the same terms between the
// stack and a new update.
import type { LayerFactors } from '../export/editStack.ts';
import type { GraftNative } from '../native/binding.ts';

export interface NormGrowth {
  layer: number;
  rank: number;
  baseNorm: number;
  editedNorm: number;
  growth: number;
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** blk.L.ffn_down.weight dequantised: n_embd rows of n_ff. */
export function downWeights(native: GraftNative, modelPath: string, layer: number): Float32Array {
  return native.readTensor(modelPath, `blk.${layer}.ffn_down.weight`).values;
}

export function squaredNorm(w: Float32Array): number {
  let s = 0;
  for (let i = 0; i < w.length; i++) s += w[i]! * w[i]!;
  return s;
}

/** ⟨W, Σ_j u_j v_jᵀ⟩_F = Σ_j u_jᵀ W v_j, for W of n_embd rows of n_ff. */
export function weightInner(w: Float32Array, u: Float32Array[], v: Float32Array[]): number {
  let cross = 0;
  for (let j = 0; j < u.length; j++) {
    const uj = u[j]!, vj = v[j]!, nFf = vj.length;
    for (let e = 0; e < uj.length; e++) {
      if (uj[e] === 0) continue;
      let row = 0;
      const off = e * nFf;
      for (let i = 0; i < nFf; i++) row += w[off + i]! * vj[i]!;
      cross += uj[e]! * row;
    }
  }
  return cross;
}

/** ⟨Σ_j a_j b_jᵀ, Σ_k c_k d_kᵀ⟩_F = Σ_{j,k} (a_j·c_k)(b_j·d_k). */
export function factorInner(a: { u: Float32Array[]; v: Float32Array[] }, b: { u: Float32Array[]; v: Float32Array[] }): number {
  let s = 0;
  for (let j = 0; j < a.u.length; j++) for (let k = 0; k < b.u.length; k++) s += dot(a.u[j]!, b.u[k]!) * dot(a.v[j]!, b.v[k]!);
  return s;
}

export function normGrowth(native: GraftNative, modelPath: string, layers: LayerFactors[]): NormGrowth[] {
  return layers.map((f) => {
    const w = downWeights(native, modelPath, f.layer);
    const base = squaredNorm(w);
    const edited = Math.sqrt(Math.max(0, base + 2 * weightInner(w, f.u, f.v) + factorInner(f, f)));
    return { layer: f.layer, rank: f.u.length, baseNorm: Math.sqrt(base), editedNorm: edited, growth: edited / Math.sqrt(base) };
  });
}
