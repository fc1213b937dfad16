// SIGKILL at random moments while edits are recorded and exports written (50 child
// processes): the database stays intact, every edit reported saved is there with exactly its
// factors, and every file under an export's final name is complete (exports appear only
// after verification).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';

import { sha256OfFile } from '../models/modelInfo.ts';
import { loadNative } from '../native/binding.ts';
import { generatedModel, tempDir } from '../testing/fixtures.ts';
import { SeededRandom } from '../util/seededRandom.ts';
import { openDatabase } from './database.ts';
import { getEdit, listEdits, upsertModel, workspaceFor } from './repository.ts';

const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'durabilityChild.ts');

/**
 * Runs the child until it has announced `lines` results, then kills it `delayMs` later — a
 * random moment inside the next edit or export whatever this machine's speed (a fixed clock
 * would, on a busy machine, kill every child before its first export).
 */
function runAndKill(args: string[], lines: number, delayMs: number): Promise<string> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GRAFT_NATIVE_VARIANT: 'cpu' } });
    let out = '';
    let armed = false;
    const kill = () => p.kill('SIGKILL');
    const arm = () => {
      if (armed) return;
      armed = true;
      setTimeout(kill, delayMs);
    };
    const safety = setTimeout(kill, 120_000);
    if (lines === 0) arm();
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.split('\n').length - 1 >= lines) arm();
    });
    p.on('exit', () => { clearTimeout(safety); resolve(out); });
  });
}

describe('durability', () => {
  test('50 SIGKILLs during edits and exports: integrity ok, every saved edit intact, no partial export', async () => {
    const native = await loadNative();
    const dir = tempDir();
    const model = generatedModel(native, dir, { arch: 'llama', type: 'f32' });
    const modelHash = await sha256OfFile(model);
    const dbFile = path.join(dir, 'history.sqlite');
    const out = path.join(dir, 'exports');
    fs.mkdirSync(out);
    const db0 = openDatabase(dbFile);
    const m = upsertModel(db0, { path: model, sha256: modelHash, arch: 'llama', nLayer: 2, nEmbd: 64, nFf: 128, nVocab: 320, fileType: 'F32', sizeBytes: fs.statSync(model).size });
    workspaceFor(db0, 'w', m.id);
    db0.close();

    const rng = new SeededRandom(99);
    const saved = new Map<number, string>();
    const exported = new Map<string, string>();
    for (let trial = 0; trial < 50; trial++) {
      const text = await runAndKill([dbFile, out, String(trial), '64', '128'], Math.floor(rng.next() * 9), Math.floor(rng.next() * 400));
      for (const line of text.split('\n')) {
        const [kind, a, b] = line.split(' ');
        if (kind === 'saved') saved.set(Number(a), b!);
        if (kind === 'exported') exported.set(a!, b!);
      }
    }
    assert.ok(saved.size >= 50, `only ${saved.size} edits were reported saved; the kills came too early to test anything`);
    assert.ok(exported.size >= 5, `only ${exported.size} exports completed`);
    assert.ok([...exported.keys()].some((f) => f.endsWith('.gguf') && native.inspect(f).kv.some((k) => k.key === 'graft.base_sha256')), 'no patched GGUF export completed');

    const db = openDatabase(dbFile);
    try {
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
      assert.equal((db.pragma('foreign_key_check') as unknown[]).length, 0);
      const left = listEdits(db).filter((e) => e.status === 'running');
      assert.deepEqual(left.map((e) => e.id), [], 'edits of killed processes are marked interrupted, not left running');
      for (const [id, hash] of saved) {
        const e = getEdit(db, id);
        assert.equal(e.status, 'done');
        const f = e.factors[0]!;
        const got = createHash('sha256').update(new Uint8Array(f.u.buffer, f.u.byteOffset, f.u.byteLength)).update(new Uint8Array(f.v.buffer, f.v.byteOffset, f.v.byteLength)).digest('hex');
        assert.equal(got, hash, `edit ${id} lost or changed its factors`);
      }
      for (const file of fs.readdirSync(out)) {
        const full = path.join(out, file);
        assert.ok(!file.includes('.graft-') || !file.startsWith('export-'), `${file}: a temporary file under a final name`);
        if (file.startsWith('.')) continue;  // a killed export's temporary file, never under a final name
        if (file.endsWith('.gguf')) assert.doesNotThrow(() => native.inspect(full), `${file} is not a complete GGUF`);
        if (file.endsWith('.jsonl')) for (const line of fs.readFileSync(full, 'utf8').trim().split('\n')) JSON.parse(line);
        if (file.endsWith('.md')) assert.match(fs.readFileSync(full, 'utf8'), /## Known risks/);
      }
      for (const [file, hash] of exported) {
        assert.equal(createHash('sha256').update(fs.readFileSync(file)).digest('hex'), hash, `${file} changed after it was reported`);
      }
      assert.equal(await sha256OfFile(model), modelHash, 'the base model is never modified');
    } finally {
      db.close();
    }
  });
});
