// Child process of durability.test.ts: records edits and exports in a loop, announcing on
// stdout each one the moment its call returned, until the parent kills it with SIGKILL.
import { createHash } from 'node:crypto';
import path from 'node:path';

import { exportStack } from '../export/stackExport.ts';
import { loadNative } from '../native/binding.ts';
import { SeededRandom } from '../util/seededRandom.ts';
import { openDatabase } from './database.ts';
import { beginEdit, finishEdit, listWorkspaces } from './repository.ts';

const [dbFile, outDir, seedText, nEmbdText, nFfText] = process.argv.slice(2) as [string, string, string, string, string];
const rng = new SeededRandom(Number(seedText));
const nEmbd = Number(nEmbdText), nFf = Number(nFfText);
const db = openDatabase(dbFile);
const native = await loadNative();
const workspace = listWorkspaces(db)[0]!;
const say = (line: string) => process.stdout.write(`${line}\n`);

export function factorHash(u: Float32Array, v: Float32Array): string {
  return createHash('sha256').update(new Uint8Array(u.buffer, u.byteOffset, u.byteLength)).update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)).digest('hex');
}

for (let i = 0; ; i++) {
  const u = Float32Array.from({ length: nEmbd }, () => (rng.next() - 0.5) * 1e-3);
  const v = Float32Array.from({ length: nFf }, () => rng.next() - 0.5);
  const id = beginEdit(db, workspace.id, { method: 'rome', request: { prompt: '{} went to the', subject: 'Lily', targetNew: ' moon' }, layers: [0], hparams: {}, seed: i });
  finishEdit(db, id, { templates: ['{}'], factors: [{ layer: 0, rank: 1, u, v }], timings: {}, preflight: {}, metrics: {}, adapterPath: null });
  say(`saved ${id} ${factorHash(u, v)}`);
  if (i % 3 === 2) {
    const format = (['log', 'lora', 'card', 'gguf'] as const)[(((i / 3) | 0) + Number(seedText)) % 4]!;
    const file = path.join(outDir, `export-${seedText}-${i}.${format === 'log' ? 'jsonl' : format === 'card' ? 'md' : 'gguf'}`);
    const r = await exportStack(native, db, workspace, format, file);
    say(`exported ${r.path} ${r.sha256}`);
  }
}
