// The models the e2e specs work on: a generated tiny llama (always), and the real stories260K
// when $GRAFT_TEST_MODELS names a folder that has it.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const graft = join(root, 'bin', 'graft.js');

/** A 2-layer random-weight llama: big enough to edit, load and export, small enough for CPU CI. */
export function makeTinyModel(file: string): string {
  const r = spawnSync(process.execPath, [
    graft, 'make-model', '--arch', 'llama', '--layers', '2', '--embd', '64', '--ff', '128', '--heads', '4',
    '--kv-heads', '2', '--vocab', '320', '--type', 'f32', '--seed', '3', '--out', file,
  ], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`make-model failed: ${r.stderr || r.stdout}`);
  return file;
}

/** stories260K-F32.gguf under $GRAFT_TEST_MODELS, or why it cannot be used (the reason to skip with). */
export function storiesModel(): { file: string } | { skip: string } {
  const dir = process.env.GRAFT_TEST_MODELS;
  if (!dir) return { skip: 'GRAFT_TEST_MODELS is unset: the stories260K flow needs it (e.g. GRAFT_TEST_MODELS=/work/shared/models)' };
  const file = resolve(dir, 'stories260K-F32.gguf');
  if (!existsSync(file)) return { skip: `${file} is missing: the stories260K flow needs it` };
  return { file };
}
