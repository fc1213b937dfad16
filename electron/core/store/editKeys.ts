// The MLP keys each edit was computed for, per layer. AlphaEdit keeps later updates out of the
// span of the keys earlier edits wrote, so a sequence needs the keys of the stack as it stands:
// enabled, completed edits only, in stack order.
import type Database from 'better-sqlite3';

export function recordEditKeys(db: Database.Database, editId: number, layer: number, keys: Float32Array[]): void {
  if (keys.length === 0) throw new Error(`edit ${editId}, layer ${layer}: no keys to record`);
  const nFf = keys[0]!.length;
  if (nFf === 0) throw new Error(`edit ${editId}, layer ${layer}: the keys are empty vectors`);
  const bad = keys.findIndex((k) => k.length !== nFf);
  if (bad >= 0) throw new Error(`edit ${editId}, layer ${layer}: key ${bad} has ${keys[bad]!.length} values, key 0 has ${nFf}`);
  const packed = new Float32Array(keys.length * nFf);
  keys.forEach((k, i) => packed.set(k, i * nFf));
  db.prepare('INSERT INTO edit_keys (edit_id, layer, count, n_ff, keys) VALUES (?, ?, ?, ?, ?)')
    .run(editId, layer, keys.length, nFf, Buffer.from(packed.buffer, packed.byteOffset, packed.byteLength));
}

/** Keys of the workspace's enabled, completed edits at `layer`, in stack order (each edit's in the order recorded). */
export function preservedKeys(db: Database.Database, workspaceId: number, layer: number): Float32Array[] {
  const rows = db.prepare(`SELECT k.count, k.n_ff, k.keys FROM edit_keys k JOIN edits e ON e.id = k.edit_id
                           WHERE e.workspace_id = ? AND e.enabled = 1 AND e.status = 'done' AND k.layer = ? ORDER BY e.position`)
    .all(workspaceId, layer) as { count: number; n_ff: number; keys: Buffer }[];
  return rows.flatMap((r) => {
    // a copy: the Buffer's memory may be shared with others from the pool
    const all = new Float32Array(r.keys.buffer.slice(r.keys.byteOffset, r.keys.byteOffset + r.keys.byteLength));
    return Array.from({ length: r.count }, (_, i) => all.subarray(i * r.n_ff, (i + 1) * r.n_ff));
  });
}
