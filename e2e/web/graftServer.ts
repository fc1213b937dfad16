// The real web mode for the `web` project: `graft serve` on a free port with a throwaway data
// folder and a known token, and small generated models to import. Nothing is mocked: the page
// talks to the same backend the app uses.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const graft = join(root, 'bin', 'graft.js');

export interface GraftServer {
  /** the printed address, token included */
  url: string;
  token: string;
  dataDir: string;
  /** a folder the test may write models and exports into; removed with the server */
  workDir: string;
  stop(): Promise<void>;
}

export async function startGraft(): Promise<GraftServer> {
  if (!existsSync(join(root, 'out', 'renderer', 'index.html'))) {
    throw new Error('out/renderer is missing: run `npx electron-vite build` before the web e2e tests');
  }
  const workDir = mkdtempSync(join(tmpdir(), 'graft-e2e-'));
  const dataDir = join(workDir, 'data');
  const token = `e2e-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
  const child = spawn(process.execPath, [graft, 'serve', '--port', '0', '--data', dataDir, '--token', token], {
    cwd: root,
    env: { ...process.env, GRAFT_THREADS: process.env.GRAFT_THREADS ?? '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const url = await printedUrl(child);
  return {
    url, token, dataDir, workDir,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      rmSync(workDir, { recursive: true, force: true });
    },
  };
}

/** Waits for `Graft is running at http://HOST:PORT/?token=TOKEN`, the one line serve prints when ready. */
function printedUrl(child: ChildProcess): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => fail(`graft serve printed no address within 60 s`), 60_000);
    const fail = (why: string) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${why}\nstdout: ${out}\nstderr: ${err}`));
    };
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /Graft is running at (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolvePromise(m[1]!);
      }
    });
    child.once('exit', (code) => fail(`graft serve exited with code ${code} before it was ready`));
  });
}

/** A 2-layer random-weight llama: big enough to edit, load and export, small enough for CPU CI. */
export function makeTinyModel(file: string): string {
  const r = spawnSync(process.execPath, [
    graft, 'make-model', '--arch', 'llama', '--layers', '2', '--embd', '64', '--ff', '128', '--heads', '4',
    '--kv-heads', '2', '--vocab', '320', '--type', 'f32', '--seed', '3', '--out', file,
  ], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`make-model failed: ${r.stderr || r.stdout}`);
  return file;
}
