// A workspace's enabled edits as one stack: each layer's factors concatenated in stack order
// (ranks add up), so ΔW_L = Σ_edits Σ_j u_j v_jᵀ is exact — the form every export and the
// combined adapter are built from.
import { createHash } from 'node:crypto';

import type Database from 'better-sqlite3';

import type { GraftNative } from '../native/binding.ts';
import type { GraphOverlay } from '../native/graphTypes.ts';
import { getEdit, listEdits, type EditRecord, type WorkspaceRecord } from '../store/repository.ts';
import { writeLoraAdapter } from './loraAdapter.ts';

export interface StackEdit {
  record: EditRecord;
  factors: { layer: number; rank: number; u: Float32Array; v: Float32Array }[];
}

export function enabledStack(db: Database.Database, workspace: WorkspaceRecord): StackEdit[] {
  return listEdits(db, workspace.id).filter((e) => e.enabled && e.status === 'done').map((e) => ({ record: e, factors: getEdit(db, e.id).factors }));
}

export interface LayerFactors {
  layer: number;
  u: Float32Array[];
  v: Float32Array[];
}

export function layerFactors(stack: StackEdit[]): LayerFactors[] {
  return layerFactorsOf(overlaysOf(stack));
}

export function layerFactorsOf(overlays: GraphOverlay[]): LayerFactors[] {
  const byLayer = new Map<number, LayerFactors>();
  for (const f of overlays) {
    const entry = byLayer.get(f.layer) ?? { layer: f.layer, u: [], v: [] };
    const nEmbd = f.u.length / f.rank, nFf = f.v.length / f.rank, scale = f.scale ?? 1;
    for (let j = 0; j < f.rank; j++) {
      const uj = f.u.subarray(j * nEmbd, (j + 1) * nEmbd);
      entry.u.push(scale === 1 ? uj : uj.map((x) => x * scale));
      entry.v.push(f.v.subarray(j * nFf, (j + 1) * nFf));
    }
    byLayer.set(f.layer, entry);
  }
  return [...byLayer.values()].sort((a, b) => a.layer - b.layer);
}

/** One overlay per layer holding every factor of that layer: the graph runs one low-rank product per layer however many edits are stacked. */
export function mergedOverlays(overlays: GraphOverlay[]): GraphOverlay[] {
  return layerFactorsOf(overlays).map(({ layer, u, v }) => {
    const rank = u.length, nEmbd = u[0]!.length, nFf = v[0]!.length;
    const mu = new Float32Array(rank * nEmbd), mv = new Float32Array(rank * nFf);
    u.forEach((uj, j) => mu.set(uj, j * nEmbd));
    v.forEach((vj, j) => mv.set(vj, j * nFf));
    return { layer, rank, u: mu, v: mv };
  });
}

export function overlaysOf(stack: StackEdit[]): GraphOverlay[] {
  return stack.flatMap((e) => e.factors.map((f) => ({ layer: f.layer, rank: f.rank, u: f.u, v: f.v })));
}

/** Identifies the stack's ΔW exactly: the architecture and every factor's bytes, in order. */
export function stackContentHash(arch: string, stack: StackEdit[]): string {
  const hash = createHash('sha256').update(arch);
  for (const { layer, u, v } of layerFactors(stack)) {
    hash.update(`|${layer}:${u.length}`);
    for (const x of [...u, ...v]) hash.update(new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
  }
  return hash.digest('hex');
}

export function writeStackAdapter(native: GraftNative, file: string, arch: string, stack: StackEdit[]): void {
  writeOverlayAdapter(native, file, arch, overlaysOf(stack), `graft edits ${stack.map((e) => e.record.id).join(',')}`);
}

export function writeOverlayAdapter(native: GraftNative, file: string, arch: string, overlays: GraphOverlay[], name: string): void {
  const factors = layerFactorsOf(overlays).map(({ layer, u, v }) => {
    const rank = u.length, nEmbd = u[0]!.length, nFf = v[0]!.length;
    const a = new Float32Array(rank * nFf);
    v.forEach((vj, j) => a.set(vj, j * nFf));
    const b = new Float32Array(nEmbd * rank);  // B[e][j] = u_j[e]
    u.forEach((uj, j) => { for (let e = 0; e < nEmbd; e++) b[e * rank + j] = uj[e]!; });
    return { base: `blk.${layer}.ffn_down.weight`, nIn: nFf, nOut: nEmbd, rank, a, b };
  });
  writeLoraAdapter(native, file, { architecture: arch, name, factors });
}
