// Exports of a workspace's enabled edits, each written under a temporary name, verified by
// loading it back with node-llama-cpp and re-scoring every edit's prompt against Graft's own
// graph, and only then renamed to its final name and recorded:
//   lora  one adapter GGUF, the edits' factors concatenated per layer (ranks add up)
//   gguf  the base model rewritten with each edited ffn_down = W + ΔW (F32 if the base tensor
//         was F32, else F16), every other tensor byte-copied, provenance in graft.* keys
//   log   JSON lines, one edit per line with everything the history holds
//   card  a Markdown model card: base model, each edit, metrics, risks
import fs from 'node:fs';
import path from 'node:path';

import type Database from 'better-sqlite3';

import { continuationTokens, openGraphModel } from '../engine/graphModel.ts';
import { filledPrompt, requestsOfEdit } from '../edits/request.ts';
import { sha256OfFileInWorker } from '../models/modelInfo.ts';
import type { GraftNative } from '../native/binding.ts';
import type { GraphOverlay } from '../native/graphTypes.ts';
import { rememberedSha256 } from '../store/fileHashes.ts';
import { getEdit, getModel, recordExport, type WorkspaceRecord } from '../store/repository.ts';
import { nextTokenDistributions, withModel } from '../models/nodeLlamaProbe.ts';
import { enabledStack, layerFactors, overlaysOf, writeStackAdapter, type StackEdit } from './editStack.ts';

export type ExportFormat = 'lora' | 'gguf' | 'log' | 'card';

/** Types a patched GGUF's edited tensors may be re-quantised to, each with a measured warning. */
export const requantizeTypes = ['q8_0', 'q6_k', 'q5_k', 'q4_k', 'q4_0'] as const;
export type RequantizeType = (typeof requantizeTypes)[number];

export interface ExportOptions {
  /** gguf only: re-quantise the edited ffn_down tensors instead of writing them as F16/F32. */
  requantize?: RequantizeType;
}

/** What re-quantising did to each edited tensor's ΔW, measured before the file is written. */
export interface RequantizationLoss {
  type: RequantizeType;
  tensors: { name: string; retained: number; relativeError: number }[];
  /** Each edit's target probability with the exact stack and in the exported file. */
  targets: { edit: number; exact: number; exported: number }[];
  warning: string;
}

export interface Verification {
  verified: boolean;
  maxDifference: number;
  tolerance: number;
  prompts: number;
  /** what the exported file was compared with */
  against: 'exact stack' | 'own graph on the exported file';
}

export interface ExportResult {
  id: number;
  format: ExportFormat;
  path: string;
  sha256: string;
  edits: number[];
  verification: Verification | null;
  requantization: RequantizationLoss | null;
  /** Seconds per step: checking the base, writing, verifying, renaming and recording; `hash` (the output's sha256) runs during `verify`. */
  timings: { check: number; write: number; verify: number; record: number; hash: number };
}

interface PatchedTensor {
  name: string;
  type: string;
  f32: Float32Array;
}

/** Each edited ffn_down dequantised with ΔW added (n_embd rows of n_ff), and the base's values. */
function patchedTensors(native: GraftNative, base: string, stack: StackEdit[], requantize: RequantizeType | undefined): { patched: PatchedTensor[]; original: Float32Array[] } {
  const info = native.inspect(base);
  const original: Float32Array[] = [];
  const patched = layerFactors(stack).map(({ layer, u, v }) => {
    const name = `blk.${layer}.ffn_down.weight`;
    const tensor = info.tensors.find((t) => t.name === name);
    if (!tensor) throw new Error(`${base} has no ${name}`);
    const w = native.readTensor(base, name).values;
    if (requantize) original.push(w.slice());
    const nFf = v[0]!.length;
    for (let j = 0; j < u.length; j++) {
      const uj = u[j]!, vj = v[j]!;
      for (let e = 0; e < uj.length; e++) {
        const s = uj[e]!;
        if (s === 0) continue;
        const row = e * nFf;
        for (let i = 0; i < nFf; i++) w[row + i]! += s * vj[i]!;
      }
    }
    return { name, type: requantize ?? (tensor.type === 'F32' ? 'f32' : 'f16'), f32: w };
  });
  return { patched, original };
}

/**
 * How much of ΔW survives re-quantisation: with ΔW' = deq(q(W + ΔW)) − W, the share of ΔW
 * kept along its own direction (⟨ΔW', ΔW⟩/‖ΔW‖²) and the relative error ‖ΔW' − ΔW‖/‖ΔW‖.
 */
function requantizationError(native: GraftNative, tensors: PatchedTensor[], original: Float32Array[], nFf: number): RequantizationLoss['tensors'] {
  return tensors.map((t, k) => {
    const w0 = original[k]!;
    const back = native.decode(native.encode(t.f32, t.type, nFf), t.type, t.f32.length);
    let dot = 0, norm = 0, err = 0;
    for (let i = 0; i < w0.length; i++) {
      const want = t.f32[i]! - w0[i]!, got = back[i]! - w0[i]!;
      dot += want * got;
      norm += want * want;
      err += (got - want) ** 2;
    }
    return { name: t.name, retained: norm > 0 ? dot / norm : 1, relativeError: norm > 0 ? Math.sqrt(err / norm) : 0 };
  });
}

interface Scores {
  /** P(first target token) per edit, by llama.cpp on the exported file */
  exported: number[];
  /** the same by the own graph on the reference (exact stack, or the exported file itself) */
  reference: number[];
  /** the own graph with the exact stack, when the reference is the exported file */
  exact: number[];
}

/**
 * Every edit's prompt scored by node-llama-cpp on the exported file (the adapter on the base,
 * or the patched model) and by Graft's own graph: with the exact stack as overlays, or, for a
 * re-quantised file, on the file itself. The two engines run side by side.
 */
async function score(native: GraftNative, base: string, file: string, format: 'lora' | 'gguf', stack: StackEdit[], requantized: boolean): Promise<Scores> {
  const graph = await openGraphModel(native, base);
  try {
    const prompts = stack.flatMap((e) => requestsOfEdit(e.record.request)).map((request) => {
      const text = filledPrompt(request);
      return { text, tokens: graph.tokenize(text, true), first: continuationTokens((t, s) => graph.tokenize(t, s), text, request.targetNew)[0]! };
    });
    const ownScores = async (model: string, overlays: GraphOverlay[]): Promise<number[]> => {
      const g = model === base ? graph : await openGraphModel(native, model);
      try {
        const r = await g.run({ prompts: prompts.map((p) => p.tokens), logitRows: prompts.map((p, i) => ({ prompt: i, pos: p.tokens.length - 1 })), overlays });
        return prompts.map((p, i) => Math.exp(r.logprobs[i * r.nVocab + p.first]!));
      } finally {
        if (g !== graph) g.dispose();
      }
    };
    const exactScores = ownScores(base, overlaysOf(stack));
    const referenceScores = requantized ? ownScores(file, []) : exactScores;
    const exported = await withModel(format === 'gguf' ? file : base, async (model) => {
      const d = await nextTokenDistributions(model, prompts.map((p) => p.text), true, format === 'lora' ? file : undefined);
      return prompts.map((p, i) => d[i]!.get(p.first) ?? 0);
    });
    return { exported, reference: await referenceScores, exact: await exactScores };
  } finally {
    graph.dispose();
  }
}

function editLog(db: Database.Database, stack: StackEdit[]): string {
  return stack.map((e) => {
    const full = getEdit(db, e.record.id);
    return JSON.stringify({ ...full, factors: full.factors.map((f) => ({ layer: f.layer, rank: f.rank, u: Array.from(f.u), v: Array.from(f.v) })) });
  }).join('\n') + '\n';
}

function modelCard(baseName: string, baseSha: string, stack: StackEdit[]): string {
  const lines = [`# ${baseName} with ${stack.length} Graft edit${stack.length === 1 ? '' : 's'}`, '', `Base model: \`${baseName}\` (sha256 \`${baseSha}\`).`, '', '## Edits', ''];
  for (const e of stack) {
    const requests = requestsOfEdit(e.record.request);
    const m = e.record.metrics as { before?: { efficacy?: { pNew: number; pTrue: number } }; after?: { efficacy?: { pNew: number; pTrue: number }; neighbourhood?: { probabilityScore: number } | null } } | null;
    const p = e.record.preflight as { relativeUpdateNorm?: number; denominator?: number } | null;
    const summary = (e.record.metrics as { summary?: { efficacy: number | null; neighbourhood: number | null } } | null)?.summary;
    lines.push(`- **Edit ${e.record.id}** (${e.record.method}, layer${e.record.layers.length === 1 ? '' : 's'} ${e.record.layers.join(', ')})` +
      (requests.length === 1 ? `: "${filledPrompt(requests[0]!)}" →${requests[0]!.targetNew}${requests[0]!.targetTrue ? ` (was${requests[0]!.targetTrue})` : ''}` : `: ${requests.length} facts`));
    if (requests.length > 1) for (const r of requests) lines.push(`  - "${filledPrompt(r)}" →${r.targetNew}${r.targetTrue ? ` (was${r.targetTrue})` : ''}`);
    if (m?.after?.efficacy) lines.push(`  - P(new) ${m.before?.efficacy?.pNew.toFixed(4)} → ${m.after.efficacy.pNew.toFixed(4)}; neighbourhood kept: ${m.after.neighbourhood ? m.after.neighbourhood.probabilityScore.toFixed(2) : 'not measured'}`);
    if (summary) lines.push(`  - efficacy ${summary.efficacy?.toFixed(2) ?? '–'}, neighbourhood kept ${summary.neighbourhood?.toFixed(2) ?? 'not measured'}`);
    if (p?.relativeUpdateNorm !== undefined) lines.push(`  - ‖ΔW‖/‖W‖ ${p.relativeUpdateNorm.toPrecision(3)}${p.denominator !== undefined ? `, denominator ${p.denominator.toPrecision(4)}` : ''}`);
  }
  lines.push('', '## Known risks', '',
    '- Locate-and-edit methods can damage unrelated knowledge and fluency; single edits have collapsed models. Check perplexity and KL to the base model before use.',
    '- Neighbourhood scores cover only the prompts listed with each edit.',
    '- Re-quantising an edited tensor to 4 bits erases most of an edit; keep edited tensors at F16 or use the LoRA adapter.', '');
  return lines.join('\n');
}

function fsyncFile(file: string): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function checkOutput(out: string, modelPath: string): string {
  const resolved = path.resolve(out);
  if (resolved === path.resolve(modelPath)) throw new Error('the output path is the base model itself; choose another file (the model is never modified)');
  if (fs.existsSync(resolved)) throw new Error(`${resolved} exists; choose another --out (exports never overwrite a file)`);
  const dir = path.dirname(resolved);
  if (!fs.existsSync(dir)) throw new Error(`the folder ${dir} does not exist`);
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    throw new Error(`the folder ${dir} is not writable; choose another --out`);
  }
  return resolved;
}

export async function exportStack(native: GraftNative, db: Database.Database, workspace: WorkspaceRecord, format: ExportFormat, out: string, options: ExportOptions = {}): Promise<ExportResult> {
  const model = getModel(db, workspace.modelId);
  if (!fs.existsSync(model.path)) throw new Error(`the base model ${model.path} is missing; exports need it`);
  if (options.requantize && format !== 'gguf') throw new Error('re-quantising applies to the patched GGUF only (--format gguf)');
  if (options.requantize && !requantizeTypes.includes(options.requantize)) throw new Error(`cannot re-quantise to ${options.requantize}; choose one of ${requantizeTypes.join(', ')}`);
  const resolved = checkOutput(out, model.path);
  const stack = enabledStack(db, workspace);
  if (stack.length === 0) throw new Error(`workspace '${workspace.name}' has no enabled edits to export`);
  const timings = { check: 0, write: 0, verify: 0, record: 0, hash: 0 };
  let t = performance.now();
  const lap = (k: keyof typeof timings) => { const now = performance.now(); timings[k] += (now - t) / 1000; t = now; };
  if (format === 'gguf' || format === 'lora') {
    const { sha256 } = await rememberedSha256(db, model.path);
    if (sha256 !== model.sha256) throw new Error(`${model.path} changed since the edits were recorded (sha256 ${sha256.slice(0, 12)}… ≠ ${model.sha256.slice(0, 12)}…); the edits belong to the old file`);
  }
  // A temporary name in the same folder: nothing appears under the final name until the file
  // is complete and verified.
  const tmp = path.join(path.dirname(resolved), `.${path.basename(resolved)}.graft-${process.pid}-${Date.now()}.tmp${format === 'lora' || format === 'gguf' ? '.gguf' : ''}`);
  let verification: Verification | null = null;
  let requantization: RequantizationLoss | null = null;
  let hashing: Promise<string> | null = null;
  lap('check');
  try {
    let retained: RequantizationLoss['tensors'] = [];
    if (format === 'lora') writeStackAdapter(native, tmp, model.arch, stack);
    else if (format === 'gguf') {
      const { patched, original } = patchedTensors(native, model.path, stack, options.requantize);
      if (options.requantize) retained = requantizationError(native, patched, original, model.nFf);
      await native.rewrite(model.path, tmp, {
        replace: patched,
        setKv: Object.entries({
          base_sha256: model.sha256, edit_ids: stack.map((e) => e.record.id).join(','),
          methods: [...new Set(stack.map((e) => e.record.method))].join(','), date: new Date().toISOString(),
          edited_tensor_type: options.requantize ?? 'f16 (f32 where the base was f32)',
        }).map(([key, value]) => ({ key: `graft.${key}`, type: 'str' as const, value })),
      });
    } else {
      fs.writeFileSync(tmp, format === 'log' ? editLog(db, stack) : modelCard(path.basename(model.path), model.sha256, stack));
      fsyncFile(tmp);
    }
    lap('write');
    // the finished file is hashed while the engines verify it (the two use different cores)
    const hashStart = performance.now();
    hashing = sha256OfFileInWorker(tmp).then((h) => { timings.hash = (performance.now() - hashStart) / 1000; return h; });
    if (format === 'lora' || format === 'gguf') {
      const tolerance = format === 'gguf' ? 2e-3 : 1e-3;
      const s = await score(native, model.path, tmp, format, stack, options.requantize !== undefined);
      const maxDifference = Math.max(...s.exported.map((p, i) => Math.abs(p - s.reference[i]!)));
      verification = { verified: maxDifference <= tolerance, maxDifference, tolerance, prompts: stack.length, against: options.requantize ? 'own graph on the exported file' : 'exact stack' };
      if (!verification.verified) {
        throw new Error(`the exported ${format} does not reproduce ${options.requantize ? 'its own weights' : 'the edits'} in node-llama-cpp (next-token probabilities differ by ${maxDifference.toExponential(2)} > ${tolerance}); nothing was written`);
      }
      if (options.requantize) {
        const targets = stack.map((e, i) => ({ edit: e.record.id, exact: s.exact[i]!, exported: s.exported[i]! }));
        const worst = retained.reduce((w, r) => (r.relativeError > w.relativeError ? r : w), retained[0]!);
        requantization = {
          type: options.requantize, tensors: retained, targets,
          warning: `re-quantising the edited tensors to ${options.requantize} kept ${(100 * worst.retained).toFixed(1)}% of ΔW in ${worst.name} (relative error ${worst.relativeError.toFixed(2)}); ` +
            `target probabilities ${targets.map((x) => `${x.exact.toPrecision(3)}→${x.exported.toPrecision(3)}`).join(', ')} (exact → exported). Keep edited tensors at F16 or export the LoRA adapter to keep the edits whole.`,
        };
      }
    }
    const sha256 = await hashing;
    lap('verify');
    fs.renameSync(tmp, resolved);
    const id = recordExport(db, {
      workspaceId: workspace.id, kind: format, path: resolved, sha256,
      verification: verification ? { ...verification, ...(requantization ? { requantization } : {}) } : null,
      editIds: stack.map((e) => e.record.id),
    });
    lap('record');
    return { id, format, path: resolved, sha256, edits: stack.map((e) => e.record.id), verification, requantization, timings };
  } catch (error) {
    await hashing?.catch(() => undefined);
    fs.rmSync(tmp, { force: true });
    throw error;
  }
}
