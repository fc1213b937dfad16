// The collapse verdict: every probe number and preflight signal compared with visible
// thresholds; the worst level wins. "The Butterfly Effect of Model Editing" (Yang et al., 2024)
// found perplexity the most reliable surrogate of collapse, so perplexity ratios and KL to the
// base decide "collapsed"; the preflight signals (which can be computed before any probe) can
// raise a warning and, when extreme, a collapse.
import type { Verdict } from '../store/probeRuns.ts';

export interface Thresholds {
  /** edited / base sentence perplexity (ME-PPL style) */
  sentencePplRatio: { degraded: number; collapsed: number };
  /** edited / base corpus perplexity (llama.cpp method), when a corpus is probed */
  corpusPplRatio: { degraded: number; collapsed: number };
  /** mean KL(base ‖ edited) over the KL prompts, nats */
  klMean: { degraded: number; collapsed: number };
  /**
   * share of KL prompts whose top-1 token is unchanged (lower is worse); alone it only warns,
   * since a model with flat next-token distributions changes its top-1 on tiny shifts
   */
  top1Agreement: { degraded: number; collapsed: number };
  /** ‖ΔW‖_F / ‖W‖_F of the edit */
  relativeUpdateNorm: { degraded: number; collapsed: number };
  /** (C⁻¹k*)ᵀk* / (‖C⁻¹k*‖‖k*‖): a tiny ROME denominator relative to its factors (lower is worse) */
  denominatorCosine: { degraded: number; collapsed: number };
  /** ‖W + ΣΔW‖_F / ‖W‖_F of each edited matrix across the enabled stack */
  normGrowth: { degraded: number; collapsed: number };
}

export const defaultThresholds: Thresholds = {
  sentencePplRatio: { degraded: 1.1, collapsed: 2 },
  corpusPplRatio: { degraded: 1.1, collapsed: 2 },
  klMean: { degraded: 0.1, collapsed: 1 },
  top1Agreement: { degraded: 0.5, collapsed: 0 },
  relativeUpdateNorm: { degraded: 0.5, collapsed: 5 },
  denominatorCosine: { degraded: 1e-3, collapsed: 1e-5 },
  normGrowth: { degraded: 1.25, collapsed: 2 },
};

export interface Signals {
  sentencePplRatio?: number;
  corpusPplRatio?: number;
  klMean?: number;
  top1Agreement?: number;
  relativeUpdateNorm?: number;
  denominatorCosine?: number;
  /** the largest growth over the edited matrices */
  normGrowth?: number;
}

const lowerIsWorse = new Set<keyof Signals>(['top1Agreement', 'denominatorCosine']);

export interface Judgement {
  verdict: Verdict;
  reasons: { signal: keyof Signals; value: number; level: Verdict; threshold: number | null }[];
  signals: Signals;
  thresholds: Thresholds;
}

const rank: Record<Verdict, number> = { ok: 0, degraded: 1, collapsed: 2 };

export function judge(signals: Signals, thresholds: Thresholds = defaultThresholds): Judgement {
  const reasons: Judgement['reasons'] = [];
  let verdict: Verdict = 'ok';
  for (const [name, value] of Object.entries(signals) as [keyof Signals, number | undefined][]) {
    if (value === undefined) continue;
    const t = thresholds[name];
    const worse = lowerIsWorse.has(name) ? (a: number, b: number) => a <= b : (a: number, b: number) => a >= b;
    // a NaN or infinite perplexity is itself a collapse
    const level: Verdict = !Number.isFinite(value) || worse(value, t.collapsed) ? 'collapsed' : worse(value, t.degraded) ? 'degraded' : 'ok';
    reasons.push({ signal: name, value, level, threshold: level === 'collapsed' ? t.collapsed : level === 'degraded' ? t.degraded : null });
    if (rank[level] > rank[verdict]) verdict = level;
  }
  return { verdict, reasons, signals, thresholds };
}

/** Thresholds from a user's partial override (settings, CLI), validated. */
export function thresholdsWith(overrides: Partial<Record<keyof Thresholds, Partial<{ degraded: number; collapsed: number }>>>): Thresholds {
  const out = structuredClone(defaultThresholds);
  for (const [name, o] of Object.entries(overrides) as [keyof Thresholds, Partial<{ degraded: number; collapsed: number }>][]) {
    if (!(name in out)) throw new Error(`unknown threshold '${name}'; known: ${Object.keys(out).join(', ')}`);
    Object.assign(out[name], o);
    const { degraded, collapsed } = out[name];
    if (!Number.isFinite(degraded) || !Number.isFinite(collapsed)) throw new Error(`threshold ${name} must be numbers`);
    const ordered = lowerIsWorse.has(name as keyof Signals) ? collapsed <= degraded : collapsed >= degraded;
    if (!ordered) throw new Error(`threshold ${name}: 'collapsed' (${collapsed}) must be ${lowerIsWorse.has(name as keyof Signals) ? 'at most' : 'at least'} 'degraded' (${degraded})`);
  }
  return out;
}
