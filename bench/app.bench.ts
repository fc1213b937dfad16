// The workbench's startup: (a) what the renderer makes a browser download before the first
// screen, gzipped (goal ≤ 2 MB, with Monaco only fetched when an editor opens), and (b) the
// time from starting the web mode (`graft serve`) to an interactive Models screen in Debian
// Chromium, median of 3, against baselines measured in the same rounds: node's own startup
// (`node -e 0`) and Chromium loading a small static file from the same server.
// Needs out/renderer (`npx electron-vite build`) and /usr/bin/chromium (or $GRAFT_CHROMIUM).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

import { chromium, type Browser } from 'playwright-core';

import { inScratchDir, log, median, report, round } from './support.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const rendererDir = path.join(root, 'out', 'renderer');
const goalBytes = 2 * 1024 * 1024;
const rounds = 3;

if (!fs.existsSync(path.join(rendererDir, 'index.html'))) {
  console.error('out/renderer is missing: run `npx electron-vite build` first');
  process.exit(1);
}

const gzipSize = (file: string) => zlib.gzipSync(fs.readFileSync(file), { level: 9 }).length;

/**
 * The files index.html loads and, transitively, the chunks the entry imports statically:
 * what must arrive before the app runs. Dynamic import() targets are left out (lazy).
 */
function initialFiles(): string[] {
  const html = fs.readFileSync(path.join(rendererDir, 'index.html'), 'utf8');
  const queue = [...html.matchAll(/<(?:script[^>]*\ssrc|link[^>]*\srel="(?:stylesheet|modulepreload)"[^>]*\shref)="([^"]+)"/g)]
    .map((m) => path.resolve(rendererDir, m[1]!));
  const seen = new Set<string>();
  while (queue.length > 0) {
    const file = queue.shift()!;
    if (seen.has(file)) continue;
    seen.add(file);
    if (!file.endsWith('.js')) continue;
    // static imports are statements at the start of a line in Vite's output; import("…") is not matched
    for (const m of fs.readFileSync(file, 'utf8').matchAll(/^\s*(?:import|export)\s*(?:[\w*${},\s]+?\s*from\s*)?["'](\.{1,2}\/[^"']+)["']/gm)) {
      queue.push(path.resolve(path.dirname(file), m[1]!));
    }
  }
  return [...seen];
}

function bundleSizes() {
  const initial = initialFiles();
  const assets = path.join(rendererDir, 'assets');
  const lazy = fs.readdirSync(assets).map((f) => path.join(assets, f))
    .filter((f) => /\.(js|css)$/.test(f) && !initial.includes(f));
  const sum = (files: string[]) => files.reduce((s, f) => s + gzipSize(f), 0);
  const initialGzip = sum(initial);
  return {
    initialFiles: initial.map((f) => path.relative(rendererDir, f)),
    initialGzipBytes: initialGzip,
    initialRawBytes: initial.reduce((s, f) => s + fs.statSync(f).size, 0),
    goalGzipBytes: goalBytes,
    withinGoal: initialGzip <= goalBytes,
    // Vite's output keeps module path comments, so a Monaco module in an initial chunk shows
    monacoInInitial: initial.some((f) => f.endsWith('.js') && fs.readFileSync(f, 'utf8').includes('node_modules/monaco-editor/')),
    lazyFiles: lazy.length,
    lazyGzipBytes: sum(lazy),
  };
}

function timeNodeStart(): Promise<number> {
  const t = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', () => resolve(Number(process.hrtime.bigint() - t) / 1e9));
  });
}

interface Round { serverReadyS: number; interactiveS: number; totalS: number; staticPageS: number; nodeStartS: number; requested: string[] }

async function oneRound(browser: Browser, dataDir: string): Promise<Round> {
  const nodeStartS = await timeNodeStart();
  const token = `bench${Math.random().toString(36).slice(2)}`;
  const t0 = process.hrtime.bigint();
  const since = () => Number(process.hrtime.bigint() - t0) / 1e9;
  const child = spawn(process.execPath, [path.join(root, 'bin', 'graft.js'), 'serve', '--port', '0', '--data', dataDir, '--token', token], {
    cwd: root, stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d;
        const m = /Graft is running at (\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.stderr.on('data', (d: Buffer) => { err += d; });
      child.once('exit', (code) => reject(new Error(`graft serve exited (${code}) before printing its address:\n${err}`)));
    });
    const serverReadyS = since();
    // a fresh context: nothing cached, as on a first visit
    const context = await browser.newContext();
    const page = await context.newPage();
    const requested: string[] = [];
    page.on('request', (r) => requested.push(new URL(r.url()).pathname));
    await page.goto(url);
    await page.getByRole('heading', { level: 2, name: 'Models', exact: true }).waitFor();
    // shown only once the backend answered over the WebSocket (app.ready and the model list)
    await page.getByText('No model is open yet.').waitFor();
    const totalS = since();
    await context.close();

    const staticContext = await browser.newContext();
    const staticPage = await staticContext.newPage();
    const css = fs.readdirSync(path.join(rendererDir, 'assets')).find((f) => f.startsWith('index-') && f.endsWith('.css'))!;
    const ts = process.hrtime.bigint();
    await staticPage.goto(new URL(`/assets/${css}?token=${token}`, url).href);
    const staticPageS = Number(process.hrtime.bigint() - ts) / 1e9;
    await staticContext.close();
    return { serverReadyS, interactiveS: totalS - serverReadyS, totalS, staticPageS, nodeStartS, requested };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode === null ? child.once('exit', r) : r(null)));
  }
}

const bundle = bundleSizes();
log(`initial load ${(bundle.initialGzipBytes / 1024).toFixed(0)} KiB gzipped (${bundle.initialFiles.join(', ')}); lazy ${(bundle.lazyGzipBytes / 1024).toFixed(0)} KiB`);

const executablePath = process.env.GRAFT_CHROMIUM ?? '/usr/bin/chromium';
const browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
const results: Round[] = [];
try {
  for (let i = 0; i < rounds; i++) {
    const r = await inScratchDir('app', (dir) => oneRound(browser, path.join(dir, 'data')));
    log(`round ${i + 1}: server ready ${r.serverReadyS.toFixed(2)} s, interactive ${r.totalS.toFixed(2)} s; node -e 0 ${r.nodeStartS.toFixed(3)} s, static page ${r.staticPageS.toFixed(3)} s`);
    results.push(r);
  }
} finally {
  await browser.close();
}

const m = (k: keyof Omit<Round, 'requested'>) => median(results.map((r) => r[k]));
// what the browser actually fetched before the screen was interactive, as a check of the static analysis
const fetched = [...new Set(results[0]!.requested.filter((p) => /\.(js|css)$/.test(p)))];
report({
  bench: 'app',
  bundle: { ...bundle, fetchedAtStartup: fetched.map((p) => p.replace(/^\//, '')), fetchedGzipBytes: fetched.reduce((s, p) => s + gzipSize(path.join(rendererDir, p)), 0) },
  startup: {
    rounds,
    chromium: executablePath,
    serverReadyS: round(m('serverReadyS')),
    pageInteractiveS: round(m('interactiveS')),
    totalS: round(m('totalS')),
    baselineNodeStartS: round(m('nodeStartS')),
    baselineStaticPageS: round(m('staticPageS')),
    serverReadyVsNodeStart: round(m('serverReadyS') / m('nodeStartS'), 2),
    pageInteractiveVsStaticPage: round(m('interactiveS') / m('staticPageS'), 2),
    totalVsBaselines: round(m('totalS') / (m('nodeStartS') + m('staticPageS')), 2),
  },
});
