// Norm guard for sequential editing: before a new update joins the stack, how far would it grow
// ‖W‖_F, and by how much must it be scaled down to stay under a cap? With S the enabled stack's
// ΔW and N the new one,
//   g(α)² = ‖W + S + αN‖² / ‖W‖² = c₀ + c₁α + c₂α²,
//   c₀ = (‖W‖² + 2⟨W,S⟩ + ‖S‖²)/‖W‖², c₁ = 2(⟨W,N⟩ + ⟨S,N⟩)/‖W‖², c₂ = ‖N‖²/‖W‖²,
// every term an inner product of factors (normGrowth.ts), so nothing n_embd × n_ff is formed and
// the largest safe α is a root of a quadratic.
import type { LayerFactors } from '../export/editStack.ts';
import type { GraftNative } from '../native/binding.ts';
import { downWeights, factorInner, squaredNorm, weightInner } from '../probes/normGrowth.ts';
import { defaultThresholds } from '../probes/verdict.ts';

/** g(α)² = constant + linear·α + quadratic·α² */
export interface GrowthQuadratic {
  constant: number;
  linear: number;
  quadratic: number;
}

export interface NormGuardLayer {
  layer: number;
  /** growth with the stack alone (α = 0) */
  growthBefore: number;
  /** growth with the whole new update (α = 1) */
  growthAfter: number;
  /** the largest α in [0, 1] within the cap (1 when already within, 0 when even the stack exceeds it) */
  scale: number;
  /** growth at α = scale */
  cappedGrowth: number;
  quadratic: GrowthQuadratic;
  /** why the update is not applied whole, or null */
  note: string | null;
}

/** Where the collapse watch starts calling a stack degraded: the guard keeps edits below it. */
export const defaultNormGrowthCap = defaultThresholds.normGrowth.degraded;

export function growthAt(q: GrowthQuadratic, alpha: number): number {
  return Math.sqrt(Math.max(0, q.constant + alpha * (q.linear + alpha * q.quadratic)));
}

/** The largest α ∈ [0, 1] with g(α) ≤ cap; 0 when g(0) > cap already. */
export function largestScale(q: GrowthQuadratic, cap: number): number {
  const limit = cap * cap;
  if (q.constant + q.linear + q.quadratic <= limit) return 1;
  if (q.constant > limit) return 0;
  // g² is convex with g²(0) ≤ limit < g²(1): one crossing in (0, 1], the larger root of
  // quadratic·α² + linear·α − (limit − constant) = 0; written to avoid cancellation for either sign of linear
  const gap = limit - q.constant;  // ≥ 0
  const root = Math.sqrt(q.linear * q.linear + 4 * q.quadratic * gap);
  const alpha = q.linear >= 0 ? (2 * gap) / (q.linear + root) : (root - q.linear) / (2 * q.quadratic);
  return Math.min(1, Math.max(0, alpha));
}

const empty = (layer: number): LayerFactors => ({ layer, u: [], v: [] });

export function growthQuadratic(w: Float32Array, stack: LayerFactors, update: LayerFactors): GrowthQuadratic {
  const base = squaredNorm(w);
  if (!(base > 0)) throw new Error(`layer ${update.layer}: blk.${update.layer}.ffn_down.weight is zero; its norm growth is undefined`);
  return {
    constant: (base + 2 * weightInner(w, stack.u, stack.v) + factorInner(stack, stack)) / base,
    linear: (2 * (weightInner(w, update.u, update.v) + factorInner(stack, update))) / base,
    quadratic: factorInner(update, update) / base,
  };
}

export function normGuard(native: GraftNative, modelPath: string, stackLayers: LayerFactors[], newLayers: LayerFactors[], cap = defaultNormGrowthCap): NormGuardLayer[] {
  if (!(cap >= 1)) throw new Error(`the norm growth cap is a ratio ‖W + ΔW‖/‖W‖ of at least 1, got ${cap}`);
  return newLayers.map((update) => {
    const stack = stackLayers.find((s) => s.layer === update.layer) ?? empty(update.layer);
    const quadratic = growthQuadratic(downWeights(native, modelPath, update.layer), stack, update);
    const scale = largestScale(quadratic, cap);
    const growthBefore = growthAt(quadratic, 0), growthAfter = growthAt(quadratic, 1);
    const note = scale === 1 ? null
      : scale === 0 ? `layer ${update.layer}: the stack alone already grows the norm by ${growthBefore.toFixed(4)}, over the cap ${cap}; the update is not applied (disable or merge edits first, or raise the cap)`
        : `layer ${update.layer}: the update would grow the norm to ${growthAfter.toFixed(4)}, over the cap ${cap}; scaled by ${scale.toPrecision(4)}`;
    return { layer: update.layer, growthBefore, growthAfter, scale, cappedGrowth: growthAt(quadratic, scale), quadratic, note };
  });
}
