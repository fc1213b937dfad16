// The real web mode for the `web` project: `graft serve` on a free port with a throwaway data
// folder and a known token (the models to import are in ../models.ts). Nothing is mocked: the page
// talks to the same backend the app uses.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type Browser, type Page } from '@playwright/test';
import { importModel, loadModel } from '../flows.ts';
import { makeTinyModel, root } from '../models.ts';

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

export interface GraftOptions {
  /**
   * false: start as a data folder would without the shipped demo model (`--demo-model none`), for
   * specs that import and load models of their own; default: the checkout's demo-model/, as
   * `npm start` offers it
   */
  demoModel?: boolean;
}

export async function startGraft(options: GraftOptions = {}): Promise<GraftServer> {
  if (!existsSync(join(root, 'out', 'renderer', 'index.html'))) {
    throw new Error('out/renderer is missing: run `npx electron-vite build` before the web e2e tests');
  }
  const workDir = mkdtempSync(join(tmpdir(), 'graft-e2e-'));
  const dataDir = join(workDir, 'data');
  const token = `e2e-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
  const demo = options.demoModel === false ? ['--demo-model', 'none'] : [];
  const child = spawn(process.execPath, [graft, 'serve', '--port', '0', '--data', dataDir, '--token', token, ...demo], {
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

/** A server on an empty data folder (no demo model) with a tiny model of the spec's own imported and loaded in a new page. */
async function startWithTinyModel(browser: Browser, viewportHeight: number): Promise<{ server: GraftServer; page: Page }> {
  const server = await startGraft({ demoModel: false });
  const model = makeTinyModel(join(server.workDir, 'tiny-llama.gguf'));
  const page = await browser.newPage({ viewport: { width: 1400, height: viewportHeight } });
  await page.goto(server.url);
  await importModel(page, model);
  await loadModel(page, 'tiny-llama.gguf');
  return { server, page };
}

/**
 * A serial spec's shared server and page: started with a tiny model before the spec's tests and
 * stopped after them; `ready` receives them once they are up.
 */
export function withTinyModel(viewportHeight: number, ready: (started: { server: GraftServer; page: Page }) => void): void {
  test.describe.configure({ mode: 'serial' });
  let started: { server: GraftServer; page: Page } | undefined;
  test.beforeAll(async ({ browser }) => {
    started = await startWithTinyModel(browser, viewportHeight);
    ready(started);
  });
  test.afterAll(async () => {
    await started?.page.close();
    await started?.server.stop();
  });
}

/** Three made-up facts about three subjects, in CounterFact's field names: a small MEMIT batch. */
export const threeFacts = [
  { prompt: '{} is located in the city of', subject: 'Graftonia', target_new: 'Paris', target_true: 'Rome' },
  { prompt: 'The capital of {} is', subject: 'Lilliput', target_new: 'Berlin', target_true: 'Mildendo' },
  { prompt: '{} plays the sport of', subject: 'Gulliver', target_new: 'chess', target_true: 'tennis' },
];
