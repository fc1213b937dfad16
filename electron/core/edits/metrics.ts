// How well an edit took, CounterFact style and EasyEdit style side by side, computed on the
// own graph with the edit applied as an overlay:
//   efficacy      the rewrite prompt prefers the new target over the true one
//   paraphrase    the same on paraphrases
//   neighbourhood prompts about other subjects still prefer the true target
// each as the share of prompts with P(new) > P(true) (P = exp(−mean token NLL)), the mean
// margin P(new) − P(true), and teacher-forced token accuracy of the target that should win.
// Fluency is the n-gram entropy of sampled generations (ROME's measure).
import { continuationTokens } from '../engine/graphModel.ts';
import type { GraphOverlay, NativeGraphModel } from '../native/graphTypes.ts';
import { filledPrompt, type EditRequest } from './request.ts';
import { detokenize, sampleContinuations } from './sampling.ts';

export interface PromptScores {
  prompts: number;
  /** Share of prompts where the expected target is more probable than the other. */
  probabilityScore: number;
  /** Mean of P(expected) − P(other). */
  meanMargin: number;
  /** Mean teacher-forced top-1 accuracy over the expected target's tokens. */
  tokenAccuracy: number;
  /** Mean P(new) and P(true) over the prompts. */
  pNew: number;
  pTrue: number;
}

export interface EditMetrics {
  efficacy: PromptScores;
  paraphrase: PromptScores | null;
  neighbourhood: PromptScores | null;
  fluency: number | null;
}

export interface Scored {
  p: number;
  accuracy: number;
}

/** P = exp(−mean NLL) of each prompt's continuation, and its teacher-forced accuracy, in one batch. */
export async function scoreContinuations(graph: NativeGraphModel, prompts: string[], target: string, overlays: GraphOverlay[]): Promise<Scored[]> {
  const items = prompts.map((text) => {
    const prefix = graph.tokenize(text, true);
    const cont = continuationTokens((t, s) => graph.tokenize(t, s), text, target);
    const tokens = new Int32Array(prefix.length + cont.length - 1);
    tokens.set(prefix);
    tokens.set(cont.subarray(0, cont.length - 1), prefix.length);
    return { tokens, cont, first: prefix.length - 1 };
  });
  const rows = items.flatMap((it, prompt) => Array.from(it.cont, (_, i) => ({ prompt, pos: it.first + i })));
  const result = await graph.run({ prompts: items.map((i) => i.tokens), overlays, logitRows: rows });
  const V = result.nVocab;
  let r = 0;
  return items.map((it) => {
    let nll = 0, correct = 0;
    for (let i = 0; i < it.cont.length; i++, r++) {
      const row = result.logprobs.subarray(r * V, (r + 1) * V);
      nll -= row[it.cont[i]!]!;
      let best = 0;
      for (let v = 1; v < V; v++) if (row[v]! > row[best]!) best = v;
      if (best === it.cont[i]) correct++;
    }
    return { p: Math.exp(-nll / it.cont.length), accuracy: correct / it.cont.length };
  });
}

async function scorePrompts(graph: NativeGraphModel, prompts: string[], request: EditRequest, expectNew: boolean, overlays: GraphOverlay[]): Promise<PromptScores | null> {
  if (prompts.length === 0 || request.targetTrue === undefined) return null;
  const [news, trues] = [await scoreContinuations(graph, prompts, request.targetNew, overlays), await scoreContinuations(graph, prompts, request.targetTrue, overlays)];
  const n = prompts.length;
  const wins = news.filter((s, i) => (expectNew ? s.p > trues[i]!.p : trues[i]!.p > s.p)).length;
  const margin = news.reduce((m, s, i) => m + (expectNew ? s.p - trues[i]!.p : trues[i]!.p - s.p), 0) / n;
  const accuracy = (expectNew ? news : trues).reduce((a, s) => a + s.accuracy, 0) / n;
  return {
    prompts: n, probabilityScore: wins / n, meanMargin: margin, tokenAccuracy: accuracy,
    pNew: news.reduce((a, s) => a + s.p, 0) / n, pTrue: trues.reduce((a, s) => a + s.p, 0) / n,
  };
}

function ngramEntropy(text: string): number {
  const words = text.toLowerCase().match(/[\p{L}\p{N}']+|[^\s\p{L}\p{N}]/gu) ?? [];
  const entropy = (n: number) => {
    const counts = new Map<string, number>();
    for (let i = 0; i + n <= words.length; i++) {
      const key = words.slice(i, i + n).join(' ');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    let h = 0;
    for (const c of counts.values()) h -= (c / total) * Math.log2(c / total);
    return total ? h : 0;
  };
  return ((2 / 3) * entropy(2) + (4 / 3) * entropy(3)) / 2;
}

/** Mean weighted bigram/trigram entropy (bits) of seeded generations from each prompt. */
export async function fluency(graph: NativeGraphModel, prompts: string[], overlays: GraphOverlay[], seed = 0, tokens = 60): Promise<number | null> {
  if (prompts.length === 0) return null;
  const graphWithEdit = overlays.length === 0 ? graph : withOverlays(graph, overlays);
  const starts = prompts.map((p) => graph.tokenize(p, true));
  const outs = await sampleContinuations(graphWithEdit, starts, { lengths: prompts.map(() => tokens), topK: 5, seed });
  return outs.reduce((s, t, i) => s + ngramEntropy(prompts[i] + detokenize(graph, t)), 0) / outs.length;
}

/**
 * The graph with overlays added to every run (sampling does not know about edits). A proxy
 * rather than a prototype child: the native model's getters and methods refuse any `this`
 * but the object itself, so everything else is read from and bound to the graph.
 */
function withOverlays(graph: NativeGraphModel, overlays: GraphOverlay[]): NativeGraphModel {
  const run = (request: Parameters<NativeGraphModel['run']>[0], options?: Parameters<NativeGraphModel['run']>[1]) =>
    graph.run({ ...request, overlays: [...(request.overlays ?? []), ...overlays] }, options);
  return new Proxy(graph, {
    get(target, key) {
      if (key === 'run') return run;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

export async function editMetrics(graph: NativeGraphModel, request: EditRequest, overlays: GraphOverlay[], options: { fluency?: boolean; seed?: number } = {}): Promise<EditMetrics> {
  const efficacy = await scorePrompts(graph, [filledPrompt(request)], request, true, overlays)
    ?? await newOnly(graph, filledPrompt(request), request.targetNew, overlays);
  return {
    efficacy,
    paraphrase: await scorePrompts(graph, request.paraphrasePrompts, request, true, overlays),
    neighbourhood: await scorePrompts(graph, request.neighborhoodPrompts, request, false, overlays),
    fluency: options.fluency ? await fluency(graph, request.generationPrompts, overlays, options.seed ?? 0) : null,
  };
}

/** Without a true target only P(new) and the token accuracy can be reported. */
async function newOnly(graph: NativeGraphModel, prompt: string, target: string, overlays: GraphOverlay[]): Promise<PromptScores> {
  const [s] = await scoreContinuations(graph, [prompt], target, overlays);
  return { prompts: 1, probabilityScore: Number.NaN, meanMargin: Number.NaN, tokenAccuracy: s!.accuracy, pNew: s!.p, pTrue: Number.NaN };
}
