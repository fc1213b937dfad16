// The renderer's store (state.svelte.ts) as the app runs it: the module is compiled the way Vite
// does (esbuild strips the types, Svelte's compileModule turns the runes into signals) and
// imported with Svelte's real client runtime. Its backend is the contract's real rpcServer behind a
// stand-in Electron bridge, over a scripted Api that counts calls; events are pushed as the
// backend pushes them. Each test imports a fresh copy of the module (a fresh `app`).
// Run: node scripts/run-tests.mjs renderer/src/lib/state
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { transform } from 'esbuild';
import { compileModule } from 'svelte/compiler';

import { rpcServer } from '../../../electron/api/rpc.ts';
import type { Api, EditRow, ExportRow, Job, LoadedModel, LogLine, ModelRow } from '../../../electron/api/contract.ts';

const libDir = path.dirname(fileURLToPath(import.meta.url));
const g = globalThis as Record<string, unknown>;
let compiled: string;
let tmp: string;
let copies = 0;

before(async () => {
  const source = fs.readFileSync(path.join(libDir, 'state.svelte.ts'), 'utf8');
  const js = (await transform(source, { loader: 'ts', format: 'esm', target: 'es2022' })).code;
  let code = compileModule(js, { filename: 'state.svelte.js', generate: 'client', dev: false }).js.code;
  // the compiled file lives in a temporary folder: point its imports back at the sources
  code = code.replace(/from (['"])(\.[^'"]+)\1/g, (_m, _q, spec: string) => `from ${JSON.stringify(pathToFileURL(path.resolve(libDir, spec)).href)}`);
  code = code.replace(/from (['"])(svelte[^'"]*)\1/g, (_m, _q, spec: string) => `from ${JSON.stringify(import.meta.resolve(spec))}`);
  assert.match(code, /\$\.state\(/, 'the runes were compiled into signals');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'graft-state-'));
  compiled = path.join(tmp, 'state.svelte.mjs');
  fs.writeFileSync(compiled, code);
});
after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
  for (const k of ['window', 'location', 'history']) delete g[k];
});

const model: ModelRow = {
  id: 1, path: '/m/tiny.gguf', fileName: 'tiny.gguf', sha256: 'x', architecture: 'llama', parameterCount: 1, fileType: 'F32', sizeBytes: 1,
  contextLength: 128, layers: 2, nEmbd: 64, nFf: 128, vocabSize: 320, editable: true, notEditableReason: null, available: true,
};
const loaded: LoadedModel = { modelId: 1, path: model.path, fileName: model.fileName, backend: 'cpu', gpuLayers: 0, totalLayers: 3, memoryBytes: 1, workspace: 'w' };

function job(id: string, startedAt: string, kind: Job['kind'] = 'edit', state: Job['state'] = 'running', phase = ''): Job {
  return { id, kind, title: id, state, startedAt, progress: { fraction: null, phase }, steps: [], result: null, error: null };
}
function edit(id: number, subject: string): EditRow {
  return {
    id, position: id, createdAt: 't', method: 'rome', layers: [0], status: 'done', enabled: true, request: { prompt: '{} is in', subject, targetNew: ' Paris' }, requestCount: 1,
    efficacy: 1, paraphrase: null, neighbourhood: null, deltaPerplexity: null, klMean: null, verdict: 'ok', error: null, tags: [],
  };
}

/** What the scripted backend answers; tests change it between calls. */
interface World { models: ModelRow[]; loaded: LoadedModel | null; jobs: Job[]; edits: EditRow[]; exports: ExportRow[]; logs: LogLine[]; failEdits: string | null }

interface Harness {
  app: {
    ready: boolean; mode: string | null; problem: string | null; models: ModelRow[]; loaded: LoadedModel | null; jobs: Job[]; edits: EditRow[];
    exports: ExportRow[]; logs: LogLine[]; compare: Record<string, { base: unknown[]; edited: unknown[] }>; connection: { status: string };
    latestJob(kind: Job['kind']): Job | undefined; finished(id: string): Promise<Job>; reloadAll(): Promise<void>;
  };
  ui: { screen: string; go(screen: string): void };
  world: World;
  calls: Map<string, number>;
  push: ReturnType<typeof rpcServer>['emit'];
}

/** A fresh store connected through a stand-in Electron bridge to the real rpcServer over a scripted Api. */
async function harness(hash = ''): Promise<Harness> {
  const world: World = { models: [model], loaded: null, jobs: [], edits: [], exports: [], logs: [], failEdits: null };
  const calls = new Map<string, number>();
  const count = (m: string) => calls.set(m, (calls.get(m) ?? 0) + 1);
  const answers: Partial<Api> = {
    version: async () => ({ app: 'test', mode: 'electron' }),
    listModels: async () => world.models,
    loadedModel: async () => world.loaded,
    listJobs: async () => world.jobs,
    getSettings: async () => ({ dataFolder: '/d', threads: 1, gpu: 'off', thresholds: {} }),
    recentLogs: async () => world.logs,
    listEdits: async () => {
      if (world.failEdits) throw new Error(world.failEdits);
      return world.edits;
    },
    listProbeRuns: async () => [],
    listBatchRuns: async () => [],
    listExports: async () => world.exports,
  };
  const api = Object.fromEntries(Object.entries(answers).map(([method, answer]) => [method, (...args: unknown[]) => {
    count(method);
    return (answer as (...a: unknown[]) => unknown)(...args);
  }])) as unknown as Api;
  let toRenderer: (message: string) => void = () => {};
  const server = rpcServer(api, (message) => toRenderer(message));
  const location = { hash, pathname: '/', search: '' };
  const history = { replaceState: (_s: unknown, _t: string, url: string) => void (location.hash = url.slice(url.indexOf('#'))) };
  g.location = location;
  g.history = history;
  g.window = {
    location, history, addEventListener: () => {},
    bridge: { post: (message: string) => void server.handle(message), on: (cb: (m: string) => void) => void (toRenderer = cb) },
  };
  const module = (await import(`${pathToFileURL(compiled).href}?copy=${++copies}`)) as { app: Harness['app']; ui: Harness['ui'] };
  await until('the first full load', () => module.app.ready);
  return { app: module.app, ui: module.ui, world, calls, push: server.emit.bind(server) as Harness['push'] };
}

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
const settled = () => new Promise((r) => setTimeout(r, 20));

test('connecting loads everything once and marks the store ready; jobs arrive newest first', async () => {
  const h = await harness();
  assert.equal(h.app.mode, 'electron');
  assert.equal(h.app.connection.status, 'open');
  assert.deepEqual(h.app.models.map((m) => m.fileName), ['tiny.gguf']);
  assert.equal(h.app.loaded, null);
  for (const m of ['version', 'listModels', 'loadedModel', 'listJobs', 'getSettings', 'recentLogs', 'listEdits', 'listProbeRuns', 'listBatchRuns', 'listExports']) {
    assert.equal(h.calls.get(m), 1, `${m} once`);
  }
  assert.equal(h.app.problem, null);
});

test('jobUpdate events merge into the job list by id; a finished job stays and resolves its waiters', async () => {
  const h = await harness();
  h.push('jobUpdate', job('a', '2026-01-01T00:00:00Z', 'edit', 'running', 'key'));
  h.push('jobUpdate', job('b', '2026-01-02T00:00:00Z', 'trace'));
  await settled();
  assert.deepEqual(h.app.jobs.map((j) => j.id), ['b', 'a'], 'newest first');
  const waiting = h.app.finished('a');
  h.push('jobUpdate', job('a', '2026-01-01T00:00:00Z', 'edit', 'running', 'value'));
  await settled();
  assert.equal(h.app.jobs.length, 2, 'an update replaces its job');
  assert.equal(h.app.jobs.find((j) => j.id === 'a')!.progress.phase, 'value');
  h.push('jobUpdate', job('a', '2026-01-01T00:00:00Z', 'edit', 'done'));
  assert.equal((await waiting).state, 'done');
  assert.deepEqual(h.app.jobs.map((j) => [j.id, j.state]), [['b', 'running'], ['a', 'done']], 'the finished job is kept');
  assert.equal(h.app.latestJob('edit')?.id, 'a');
  assert.equal((await h.app.finished('a')).state, 'done', 'a job already ended resolves at once');
});

test('a finished edit reloads the history once; a repeated end does not reload again', async () => {
  const h = await harness();
  h.world.edits = [edit(1, 'Graftonia')];
  h.push('jobUpdate', job('e', '2026-01-01T00:00:00Z', 'edit'));
  await settled();
  assert.equal(h.calls.get('listEdits'), 1, 'a running job reloads nothing');
  h.push('jobUpdate', job('e', '2026-01-01T00:00:00Z', 'edit', 'done'));
  await until('the history reload', () => h.app.edits.length === 1);
  assert.equal(h.calls.get('listEdits'), 2);
  assert.equal(h.calls.get('listProbeRuns'), 2);
  h.push('jobUpdate', job('e', '2026-01-01T00:00:00Z', 'edit', 'done'));
  await settled();
  assert.equal(h.calls.get('listEdits'), 2, 'the same end twice (e.g. after a reconnect) reloads once');
});

test('historyChanged reloads edits, probe runs and batch runs', async () => {
  const h = await harness();
  assert.deepEqual(h.app.edits, []);
  h.world.edits = [edit(1, 'Graftonia'), edit(2, 'Lily')];
  h.push('historyChanged');
  await until('the reload', () => h.app.edits.length === 2);
  assert.deepEqual(h.app.edits.map((e) => e.request.subject), ['Graftonia', 'Lily']);
  assert.equal(h.calls.get('listProbeRuns'), 2);
  assert.equal(h.calls.get('listBatchRuns'), 2);
});

test('a finished load reloads the models, the loaded model and then its history; an export reloads the exports', async () => {
  const h = await harness();
  h.world.loaded = loaded;
  h.world.edits = [edit(3, 'Lily')];
  h.push('jobUpdate', job('l', '2026-01-01T00:00:00Z', 'load', 'done'));
  await until('the loaded model', () => h.app.loaded?.fileName === 'tiny.gguf' && h.app.edits.length === 1);
  assert.equal(h.calls.get('loadedModel'), 2);

  const row: ExportRow = { id: 1, kind: 'lora', path: '/o.lora.gguf', sha256: 's', createdAt: 't', editIds: [3], verified: true, maxDifference: 0, warning: null };
  h.world.exports = [row];
  h.push('jobUpdate', job('x', '2026-01-02T00:00:00Z', 'export', 'failed'));
  await until('the exports reload', () => h.app.exports.length === 1);
  assert.equal(h.calls.get('listExports'), 2, 'a failed export reloads too (it may have been recorded)');
});

test('a failing reload is shown as the problem until the next one succeeds', async () => {
  const h = await harness();
  h.world.failEdits = 'the workspace database is locked';
  h.push('historyChanged');
  await until('the problem', () => h.app.problem !== null);
  assert.equal(h.app.problem, 'the workspace database is locked');
  h.world.failEdits = null;
  h.push('historyChanged');
  await until('the problem to clear', () => h.app.problem === null);
});

test('jobs that ended while the page was away resolve their waiters on the next full reload', async () => {
  const h = await harness();
  h.push('jobUpdate', job('r', '2026-01-01T00:00:00Z', 'probe'));
  await settled();
  const waiting = h.app.finished('r');
  h.world.jobs = [job('r', '2026-01-01T00:00:00Z', 'probe', 'cancelled')];
  await h.app.reloadAll();
  assert.equal((await waiting).state, 'cancelled');
  assert.equal(h.app.jobs.length, 1);
});

test('compare tokens fill each side by index, without twins when a token repeats', async () => {
  const h = await harness();
  const token = (side: 'base' | 'edited', index: number, text: string) => ({ side, index, text, probability: 0.5, top: [] });
  h.push('compareToken', 'c', token('base', 1, ' park'));
  h.push('compareToken', 'c', token('base', 0, ' the'));
  h.push('compareToken', 'c', token('edited', 0, ' the'));
  h.push('compareToken', 'c', token('base', 1, ' park'));
  await settled();
  assert.deepEqual(h.app.compare.c!.base.map((t) => (t as { text: string }).text), [' the', ' park']);
  assert.equal(h.app.compare.c!.edited.length, 1);
});

test('log lines are appended and capped at the last 2000', async () => {
  const h = await harness();
  for (let i = 0; i < 2005; i++) h.push('log', { time: 't', level: 'info', source: 'engine', text: `line ${i}` });
  await settled();
  assert.equal(h.app.logs.length, 2000);
  assert.equal(h.app.logs[0]!.text, 'line 5');
  assert.equal(h.app.logs.at(-1)!.text, 'line 2004');
});

test('the screen follows the address fragment and going to one writes it back', async () => {
  const h = await harness('#/history');
  assert.equal(h.ui.screen, 'history');
  h.ui.go('export');
  assert.equal(h.ui.screen, 'export');
  assert.equal((g.location as { hash: string }).hash, '#/export');
  const unknown = await harness('#/nowhere');
  assert.equal(unknown.ui.screen, 'models');
});
