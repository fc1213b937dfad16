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
import { filledPrompt, type EditRequest } from '../edits/request.ts';
import { sha256OfFile } from '../models/modelInfo.ts';
import type { GraftNative } from '../native/binding.ts';
import type { GraphOverlay } from '../native/graphTypes.ts';
import { getEdit, getModel, listEdits, recordExport, type EditRecord, type WorkspaceRecord } from '../store/repository.ts';
import { nextTokenDistribution, withModel } from '../models/nodeLlamaProbe.ts';
import { writeLoraAdapter } from './loraAdapter.ts';

export type ExportFormat = 'lora' | 'gguf' | 'log' | 'card';

export interface ExportResult {
  id: number;
  format: ExportFormat;
  path: string;
  sha256: string;
  edits: number[];
  verification: { verified: boolean; maxDifference: number; tolerance: number; prompts: number } | null;
  /** Seconds per step: checking the base, writing, verifying, hashing the result. */
  timings: { check: number; write: number; verify: number; hash: number };
}

interface StackEdit {
  record: EditRecord;
  factors: { layer: number; rank: number; u: Float32Array; v: Float32Array }[];
}

function enabledStack(db: Database.Database, workspace: WorkspaceRecord): StackEdit[] {
  const edits = listEdits(db, workspace.id).filter((e) => e.enabled && e.status === 'done');
  if (edits.length === 0) throw new Error(`workspace '${workspace.name}' has no enabled edits to export`);
  return edits.map((e) => ({ record: e, factors: getEdit(db, e.id).factors }));
}

/** Factors per layer, edits concatenated: ΔW_L = Σ_edits Σ_j u_j v_jᵀ. */
function layerFactors(stack: StackEdit[]): Map<number, { u: Float32Array[]; v: Float32Array[] }> {
  const byLayer = new Map<number, { u: Float32Array[]; v: Float32Array[] }>();
  for (const e of stack) {
    for (const f of e.factors) {
      const entry = byLayer.get(f.layer) ?? { u: [], v: [] };
      const nEmbd = f.u.length / f.rank, nFf = f.v.length / f.rank;
      for (let j = 0; j < f.rank; j++) {
        entry.u.push(f.u.subarray(j * nEmbd, (j + 1) * nEmbd));
        entry.v.push(f.v.subarray(j * nFf, (j + 1) * nFf));
      }
      byLayer.set(f.layer, entry);
    }
  }
  return byLayer;
}

function writeStackAdapter(native: GraftNative, file: string, arch: string, stack: StackEdit[]): void {
  const factors = [...layerFactors(stack)].sort(([a], [b]) => a - b).map(([layer, { u, v }]) => {
    const rank = u.length, nEmbd = u[0]!.length, nFf = v[0]!.length;
    const a = new Float32Array(rank * nFf);
    v.forEach((vj, j) => a.set(vj, j * nFf));
    const b = new Float32Array(nEmbd * rank);  // B[e][j] = u_j[e]
    u.forEach((uj, j) => { for (let e = 0; e < nEmbd; e++) b[e * rank + j] = uj[e]!; });
    return { base: `blk.${layer}.ffn_down.weight`, nIn: nFf, nOut: nEmbd, rank, a, b };
  });
  writeLoraAdapter(native, file, { architecture: arch, name: `graft edits ${stack.map((e) => e.record.id).join(',')}`, factors });
}

async function writePatchedGguf(native: GraftNative, base: string, file: string, stack: StackEdit[], provenance: Record<string, string>): Promise<void> {
  const info = native.inspect(base);
  const replace = [...layerFactors(stack)].map(([layer, { u, v }]) => {
    const name = `blk.${layer}.ffn_down.weight`;
    const tensor = info.tensors.find((t) => t.name === name);
    if (!tensor) throw new Error(`${base} has no ${name}`);
    const w = native.readTensor(base, name).values;  // dequantised, n_embd rows of n_ff
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
    return { name, type: tensor.type === 'F32' ? 'f32' : 'f16', f32: w };
  });
  await native.rewrite(base, file, {
    replace,
    setKv: Object.entries(provenance).map(([key, value]) => ({ key: `graft.${key}`, type: 'str' as const, value })),
  });
}

function overlaysOf(stack: StackEdit[]): GraphOverlay[] {
  return stack.flatMap((e) => e.factors.map((f) => ({ layer: f.layer, rank: f.rank, u: f.u, v: f.v })));
}

/**
 * Every edit's prompt scored by node-llama-cpp on the exported file (the adapter on the base,
 * or the patched model) against the own graph with the stack as overlays: the largest
 * difference of the next-token probability of each target's first token.
 */
async function verify(native: GraftNative, base: string, file: string, format: 'lora' | 'gguf', stack: StackEdit[]): Promise<{ maxDifference: number; prompts: number }> {
  const graph = await openGraphModel(native, base);
  try {
    const overlays = overlaysOf(stack);
    let worst = 0, prompts = 0;
    await withModel(format === 'gguf' ? file : base, async (model) => {
      for (const e of stack) {
        const request = e.record.request as EditRequest;
        const text = filledPrompt(request);
        const first = continuationTokens((t, s) => graph.tokenize(t, s), text, request.targetNew)[0]!;
        const tokens = graph.tokenize(text, true);
        const ours = await graph.run({ prompts: [tokens], logitRows: [{ prompt: 0, pos: tokens.length - 1 }], overlays });
        const theirs = await nextTokenDistribution(model, text, true, format === 'lora' ? file : undefined);
        worst = Math.max(worst, Math.abs(Math.exp(ours.logprobs[first]!) - (theirs.get(first) ?? 0)));
        prompts++;
      }
    });
    return { maxDifference: worst, prompts };
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
    const r = e.record.request as EditRequest;
    const m = e.record.metrics as { before?: { efficacy?: { pNew: number; pTrue: number } }; after?: { efficacy?: { pNew: number; pTrue: number }; neighbourhood?: { probabilityScore: number } | null } } | null;
    const p = e.record.preflight as { relativeUpdateNorm?: number; denominator?: number } | null;
    lines.push(`- **Edit ${e.record.id}** (${e.record.method}, layer ${e.record.layers.join(', ')}): "${filledPrompt(r)}" →${r.targetNew}` +
      (r.targetTrue ? ` (was${r.targetTrue})` : ''));
    if (m?.after?.efficacy) lines.push(`  - P(new) ${m.before?.efficacy?.pNew.toFixed(4)} → ${m.after.efficacy.pNew.toFixed(4)}; neighbourhood kept: ${m.after.neighbourhood ? m.after.neighbourhood.probabilityScore.toFixed(2) : 'not measured'}`);
    if (p) lines.push(`  - ‖ΔW‖/‖W‖ ${p.relativeUpdateNorm?.toPrecision(3)}, denominator ${p.denominator?.toPrecision(4)}`);
  }
  lines.push('', '## Known risks', '',
    '- Locate-and-edit methods can damage unrelated knowledge and fluency; single edits have collapsed models. Check perplexity and KL to the base model before use.',
    '- Neighbourhood scores cover only the prompts listed with each edit.',
    '- Re-quantising an edited tensor to 4 bits erases most of an edit; keep edited tensors at F16 or use the LoRA adapter.', '');
  return lines.join('\n');
}

export async function exportStack(native: GraftNative, db: Database.Database, workspace: WorkspaceRecord, format: ExportFormat, out: string): Promise<ExportResult> {
  const model = getModel(db, workspace.modelId);
  if (!fs.existsSync(model.path)) throw new Error(`the base model ${model.path} is missing; exports need it`);
  const resolved = path.resolve(out);
  if (resolved === path.resolve(model.path)) throw new Error('the output path is the base model itself; choose another file (the model is never modified)');
  if (fs.existsSync(resolved)) throw new Error(`${resolved} exists; choose another --out (exports never overwrite a file)`);
  const dir = path.dirname(resolved);
  if (!fs.existsSync(dir)) throw new Error(`the folder ${dir} does not exist`);
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    throw new Error(`the folder ${dir} is not writable`);
  }
  const stack = enabledStack(db, workspace);
  const timings = { check: 0, write: 0, verify: 0, hash: 0 };
  let t = performance.now();
  const lap = (k: keyof typeof timings) => { const now = performance.now(); timings[k] += (now - t) / 1000; t = now; };
  if (format === 'gguf' || format === 'lora') {
    const sha = await sha256OfFile(model.path);
    if (sha !== model.sha256) throw new Error(`${model.path} changed since the edits were recorded (sha256 ${sha.slice(0, 12)}… ≠ ${model.sha256.slice(0, 12)}…); the edits belong to the old file`);
  }
  // A temporary name in the same folder: nothing appears under the final name until the file
  // is complete and verified.
  const tmp = path.join(dir, `.${path.basename(resolved)}.graft-${process.pid}-${Date.now()}.tmp${format === 'lora' || format === 'gguf' ? '.gguf' : ''}`);
  let verification: ExportResult['verification'] = null;
  lap('check');
  try {
    if (format === 'lora') writeStackAdapter(native, tmp, model.arch, stack);
    else if (format === 'gguf') {
      await writePatchedGguf(native, model.path, tmp, stack, {
        base_sha256: model.sha256, edit_ids: stack.map((e) => e.record.id).join(','),
        methods: [...new Set(stack.map((e) => e.record.method))].join(','), date: new Date().toISOString(),
      });
    } else {
      fs.writeFileSync(tmp, format === 'log' ? editLog(db, stack) : modelCard(path.basename(model.path), model.sha256, stack));
      const fd = fs.openSync(tmp, 'r+');
      fs.fsyncSync(fd);
      fs.closeSync(fd);
    }
    lap('write');
    if (format === 'lora' || format === 'gguf') {
      const tolerance = format === 'gguf' ? 2e-3 : 1e-3;
      const v = await verify(native, model.path, tmp, format, stack);
      verification = { verified: v.maxDifference <= tolerance, maxDifference: v.maxDifference, tolerance, prompts: v.prompts };
      if (!verification.verified) {
        throw new Error(`the exported ${format} does not reproduce the edits in node-llama-cpp (next-token probabilities differ by ${v.maxDifference.toExponential(2)} > ${tolerance}); nothing was written`);
      }
    }
    lap('verify');
    fs.renameSync(tmp, resolved);
  } catch (error) {
    fs.rmSync(tmp, { force: true });
    throw error;
  }
  const sha256 = await sha256OfFile(resolved);
  lap('hash');
  const id = recordExport(db, { workspaceId: workspace.id, kind: format, path: resolved, sha256, verification, editIds: stack.map((e) => e.record.id) });
  return { id, format, path: resolved, sha256, edits: stack.map((e) => e.record.id), verification, timings };
}
