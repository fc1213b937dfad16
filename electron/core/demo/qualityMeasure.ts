// What the edit-quality benchmark measures on a stack of edits: the CounterFact metrics of every
// request on Graft's graph (the stack as overlays), and the probes — sentence-perplexity ratio
// and KL to the base — in llama.cpp with the stack written as one LoRA adapter, the way the
// collapse watch measures it, so the numbers mean what they mean everywhere else in Graft.
import fs from 'node:fs';
import path from 'node:path';

import { editMetrics, type EditMetrics } from '../edits/metrics.ts';
import { updateNorm } from '../edits/batchEdit.ts';
import type { EditRequest } from '../edits/request.ts';
import { mergedOverlays, writeOverlayAdapter } from '../export/editStack.ts';
import { frobenius } from '../linalg/dense.ts';
import type { GraftNative } from '../native/binding.ts';
import type { GraphOverlay, NativeGraphModel } from '../native/graphTypes.ts';
import { textListSha256 } from '../probes/probeSet.ts';
import { measure, type ProbeConfig, type ProbeResults } from '../probes/probeSuite.ts';

export interface QualityProbes {
  native: GraftNative;
  modelPath: string;
  arch: string;
  config: ProbeConfig;
  /** Key of the base distributions' cache (the model's sha256). */
  modelKey: string;
  /** Scratch folder for adapters and the KL cache. */
  dir: string;
  threads: number;
  baseline: ProbeResults;
}

/** The probe configuration for the demo model: sentences and KL prompts both from its world. */
export function worldProbeConfig(sentences: string[], klPrompts: string[], nCtx: number): ProbeConfig {
  return {
    probeSet: { name: 'fact-world-corpus', sha256: textListSha256(sentences), sentences },
    klPrompts: { name: 'fact-world-unedited-facts', sha256: textListSha256(klPrompts), prompts: klPrompts },
    corpus: null, nCtx, maxChunks: null, bos: true,
  };
}

export async function qualityProbes(o: Omit<QualityProbes, 'baseline'>): Promise<QualityProbes> {
  fs.mkdirSync(o.dir, { recursive: true });
  const baseline = await measure(o.native, o.modelPath, null, o.config, { modelKey: o.modelKey, cacheDir: o.dir, threads: o.threads });
  return { ...o, baseline };
}

export interface StackProbes {
  /** Mean sentence perplexity, edited over base. */
  pplRatio: number;
  /** Mean KL(base ‖ edited) of the next token over the prompts, nats. */
  kl: number;
}

export async function probeStack(p: QualityProbes, overlays: GraphOverlay[]): Promise<StackProbes> {
  if (overlays.length === 0) return { pplRatio: 1, kl: 0 };
  const adapter = path.join(p.dir, 'stack.gguf');
  fs.rmSync(adapter, { force: true });
  writeOverlayAdapter(p.native, adapter, p.arch, overlays, 'graft quality bench stack');
  try {
    const r = await measure(p.native, p.modelPath, adapter, p.config, { modelKey: p.modelKey, cacheDir: p.dir, threads: p.threads });
    return { pplRatio: r.sentence.meanPpl / p.baseline.sentence.meanPpl, kl: r.kl!.meanKl };
  } finally {
    fs.rmSync(adapter, { force: true });
  }
}

/** Largest ‖ΔW_l‖_F / ‖W_l‖_F over the layers the stack touches (0 for no edit). */
export function largestRelativeUpdate(native: GraftNative, modelPath: string, overlays: GraphOverlay[], weightNorms = new Map<number, number>()): number {
  let largest = 0;
  for (const o of mergedOverlays(overlays)) {
    if (!weightNorms.has(o.layer)) weightNorms.set(o.layer, frobenius(native.readTensor(modelPath, `blk.${o.layer}.ffn_down.weight`).values));
    largest = Math.max(largest, updateNorm(o) / weightNorms.get(o.layer)!);
  }
  return largest;
}

export async function requestMetrics(graph: NativeGraphModel, requests: EditRequest[], overlays: GraphOverlay[], fluency: boolean): Promise<EditMetrics[]> {
  const out: EditMetrics[] = [];
  for (const request of requests) out.push(await editMetrics(graph, request, overlays, { fluency }));
  return out;
}
