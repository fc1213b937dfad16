// Merging edits in the history: the chosen enabled edits (default: the whole enabled stack) are
// replaced by one edit holding their truncated-SVD factors, placed at the end of the stack, and
// switched off in the same transaction. Nothing is deleted, so toggling the merge off and its
// edits on again restores the stack exactly.
import type Database from 'better-sqlite3';

import { beginEdit, finishEdit, getEdit, listEdits, setEnabled, type EditFactors } from '../store/repository.ts';
import { layerFactors, type StackEdit } from './editStack.ts';
import { mergeLayer, type MergeTarget } from './mergeStack.ts';

export interface LayerMerge {
  layer: number;
  rankBefore: number;
  rankAfter: number;
  relativeError: number;
}

export interface MergeResult {
  /** the new edit */
  editId: number;
  /** the edits it replaces, in stack order, now switched off */
  merged: number[];
  layers: LayerMerge[];
}

function packed(vectors: Float32Array[]): Float32Array {
  const out = new Float32Array(vectors.reduce((n, x) => n + x.length, 0));
  let at = 0;
  for (const x of vectors) {
    out.set(x, at);
    at += x.length;
  }
  return out;
}

function chosenEdits(db: Database.Database, workspaceId: number, editIds?: number[]): StackEdit[] {
  const enabled = listEdits(db, workspaceId).filter((e) => e.enabled && e.status === 'done');
  if (editIds !== undefined) {
    for (const id of editIds) {
      const e = getEdit(db, id);
      if (e.workspaceId !== workspaceId) throw new Error(`edit ${id} belongs to another workspace`);
      if (!enabled.some((x) => x.id === id)) throw new Error(`edit ${id} is ${e.status === 'done' ? 'switched off' : e.status}; only enabled, completed edits can be merged`);
    }
  }
  const chosen = editIds === undefined ? enabled : enabled.filter((e) => editIds.includes(e.id));
  if (chosen.length === 0) throw new Error('nothing to merge: the workspace has no enabled, completed edits');
  return chosen.map((e) => ({ record: e, factors: getEdit(db, e.id).factors }));
}

export function mergeEdits(db: Database.Database, workspaceId: number, options: MergeTarget & { editIds?: number[] } = {}): MergeResult {
  if (options.rank !== undefined && options.tolerance !== undefined) throw new Error('give either a rank or a tolerance, not both');
  // recorded with the merge, so it says how it was made
  const target: MergeTarget = options.rank !== undefined ? { rank: options.rank } : { tolerance: options.tolerance ?? 0 };
  return db.transaction(() => {
    const stack = chosenEdits(db, workspaceId, options.editIds);
    const ids = stack.map((e) => e.record.id);
    const layers = layerFactors(stack).map((f) => mergeLayer(f, target));
    const kept = layers.filter((l) => l.rankAfter > 0);
    const report = layers.map(({ layer, rankBefore, rankAfter, relativeError }) => ({ layer, rankBefore, rankAfter, relativeError }));
    const editId = beginEdit(db, workspaceId, { method: 'merge', request: { merged: ids }, layers: kept.map((l) => l.layer), hparams: target, seed: 0, computedOn: ids });
    const factors: EditFactors[] = kept.map((l) => ({ layer: l.layer, rank: l.rankAfter, u: packed(l.u), v: packed(l.v) }));
    finishEdit(db, editId, {
      templates: [], factors, timings: null, preflight: null, adapterPath: null,
      metrics: { layers: report.map((r, i) => ({ ...r, singularValues: layers[i]!.singularValues })) },
    });
    for (const id of ids) setEnabled(db, id, false);
    return { editId, merged: ids, layers: report };
  })();
}
