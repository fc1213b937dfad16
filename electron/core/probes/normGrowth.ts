// Frobenius-norm growth of each edited matrix across a stack, ‖W + ΔW‖_F / ‖W‖_F with
// ΔW = Σ_j u_j v_jᵀ: the quantity follow-up work on sequential editing ties to long-run
// collapse. Computed exactly from the factors without forming ΔW:
//   ‖W + ΔW‖² = ‖W‖² + 2 Σ_j u_jᵀ W v_j + Σ_{j,k} (u_j·u_k)(v_j·v_k).
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

export function normGrowth(native: GraftNative, modelPath: string, layers: LayerFactors[]): NormGrowth[] {
  return layers.map(({ layer, u, v }) => {
    const w = native.readTensor(modelPath, `blk.${layer}.ffn_down.weight`).values;  // n_embd rows of n_ff
    const nFf = v[0]!.length;
    let base = 0;
    for (let i = 0; i < w.length; i++) base += w[i]! * w[i]!;
    let cross = 0;
    for (let j = 0; j < u.length; j++) {
      const uj = u[j]!, vj = v[j]!;
      for (let e = 0; e < uj.length; e++) {
        if (uj[e] === 0) continue;
        let row = 0;
        const off = e * nFf;
        for (let i = 0; i < nFf; i++) row += w[off + i]! * vj[i]!;
        cross += uj[e]! * row;
      }
    }
    let delta = 0;
    for (let j = 0; j < u.length; j++) for (let k = 0; k < u.length; k++) delta += dot(u[j]!, u[k]!) * dot(v[j]!, v[k]!);
    const edited = Math.sqrt(Math.max(0, base + 2 * cross + delta));
    return { layer, rank: u.length, baseNorm: Math.sqrt(base), editedNorm: edited, growth: edited / Math.sqrt(base) };
  });
}
