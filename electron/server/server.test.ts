// The web mode as a browser and the renderer meet it: the token, the cookie, the Host and
// Origin checks, and the whole contract over a real WebSocket against a real backend and a
// generated model (import, estimate, load, edit, history, export, cancel, compare, reconnect).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import WebSocket from 'ws';

import type { CompareToken, EditDetail, ExportRow, Job, LoadedModel } from '../api/contract.ts';
import { rpcClient } from '../api/rpc.ts';
import { loadNative } from '../core/native/binding.ts';
import { generatedModel, tempDir } from '../core/testing/fixtures.ts';
import { startServer, type RunningServer } from './index.ts';

function get(server: RunningServer, pathAndQuery: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: server.port, path: pathAndQuery, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
    }).on('error', reject);
  });
}

/** The WebSocket's answer to the upgrade: 'open', or the HTTP status it was refused with. */
function upgrade(url: string, headers: Record<string, string> = {}): Promise<'open' | number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => { ws.close(); resolve('open'); });
    ws.once('unexpected-response', (_req, res) => { resolve(res.statusCode!); ws.terminate(); });
    ws.once('error', (e) => { if (!/Unexpected server response/.test(e.message)) reject(e); });
  });
}

interface Client {
  api: ReturnType<typeof rpcClient>['api'];
  jobs: Map<string, Job[]>;
  tokens: Map<string, CompareToken[]>;
  events: string[];
  done(id: string): Promise<Job>;
  close(): void;
}

async function connect(server: RunningServer): Promise<Client> {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/rpc?token=${server.token}`);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  const rpc = rpcClient((m) => ws.send(m));
  ws.on('message', (d) => rpc.receive(d.toString()));
  const jobs = new Map<string, Job[]>();
  const tokens = new Map<string, CompareToken[]>();
  const events: string[] = [];
  const waiting = new Map<string, (job: Job) => void>();
  rpc.on('jobUpdate', (job) => {
    jobs.set(job.id, [...(jobs.get(job.id) ?? []), job]);
    if (job.state !== 'running') waiting.get(job.id)?.(job);
  });
  rpc.on('compareToken', (id, t) => tokens.set(id, [...(tokens.get(id) ?? []), t]));
  rpc.on('historyChanged', () => events.push('historyChanged'));
  return {
    api: rpc.api, jobs, tokens, events,
    done: (id) => {
      const last = jobs.get(id)?.at(-1);
      if (last && last.state !== 'running') return Promise.resolve(last);
      return new Promise((resolve) => waiting.set(id, resolve));
    },
    close: () => ws.close(),
  };
}

describe('graft serve: access control', () => {
  let server: RunningServer;
  let dir: string;
  before(async () => {
    // tempDir() registers its cleanup with the hook, which would remove the folder right away
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'graft-serve-'));
    const renderer = path.join(dir, 'renderer');
    fs.mkdirSync(renderer);
    fs.writeFileSync(path.join(renderer, 'index.html'), '<!doctype html><title>Graft test page</title>');
    server = await startServer({ port: 0, dataDir: path.join(dir, 'data'), rendererDir: renderer, demoModelDir: null });
  });
  after(async () => {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('pages need the token: none or a wrong one is a 401 with a reason; the right one serves index.html and sets the cookie', async () => {
    const none = await get(server, '/');
    assert.equal(none.status, 401);
    assert.match(none.body, /^an access token is needed; open the URL graft serve printed.*\n$/);
    const wrong = await get(server, `/?token=${'0'.repeat(64)}`);
    assert.equal(wrong.status, 401);
    assert.match(wrong.body, /wrong access token/);
    assert.equal(server.token.length, 64, '32 random bytes, hex');
    assert.equal(server.url, `http://127.0.0.1:${server.port}/?token=${server.token}`);
    const ok = await get(server, `/?token=${server.token}`);
    assert.equal(ok.status, 200);
    assert.equal(ok.body, '<!doctype html><title>Graft test page</title>');
    const cookie = ok.headers['set-cookie']![0]!;
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    // the cookie alone opens the page afterwards, and other files
    const byCookie = await get(server, '/index.html', { cookie: cookie.split(';')[0]! });
    assert.equal(byCookie.status, 200);
    assert.equal((await get(server, '/../../etc/passwd', { cookie: cookie.split(';')[0]! })).status, 404);
  });

  test('a foreign Host header is refused even with the token (DNS rebinding)', async () => {
    const r = await get(server, `/?token=${server.token}`, { host: `evil.example:${server.port}` });
    assert.equal(r.status, 403);
    assert.match(r.body, /Host 'evil\.example:\d+' is not this server/);
    assert.equal((await get(server, `/?token=${server.token}`, { host: `localhost:${server.port}` })).status, 200);
  });

  test('the WebSocket needs the token, this origin and this host', async () => {
    const base = `ws://127.0.0.1:${server.port}/rpc`;
    assert.equal(await upgrade(base), 401);
    assert.equal(await upgrade(`${base}?token=nope-nope-nope`), 401);
    assert.equal(await upgrade(`${base}?token=${server.token}`, { origin: 'http://evil.example' }), 403);
    assert.equal(await upgrade(`${base}?token=${server.token}`, { host: 'evil.example' }), 403);
    assert.equal(await upgrade(`${base}?token=${server.token}`, { origin: `http://127.0.0.1:${server.port}` }), 'open');
  });

  test('a missing renderer build is named with the command that builds it', async () => {
    const dir = tempDir();
    const bare = await startServer({ port: 0, dataDir: dir, rendererDir: path.join(dir, 'nothing'), demoModelDir: null });
    try {
      assert.match(bare.warnings.join('\n'), /the renderer is not built .*npx electron-vite build/);
      const r = await get(bare, `/?token=${bare.token}`);
      assert.equal(r.status, 503);
      assert.match(r.body, /npx electron-vite build/);
    } finally {
      await bare.close();
    }
  });
});

describe('the contract over a real WebSocket', () => {
  test('import, estimate, load, edit, history, export, cancel, compare; a later client sees the finished jobs', async () => {
    const dir = tempDir();
    const server = await startServer({ port: 0, dataDir: path.join(dir, 'data'), rendererDir: path.join(dir, 'no-renderer'), token: 'test-token-123456', demoModelDir: null });
    const a = await connect(server);
    try {
      assert.deepEqual(await a.api.version(), { app: '0.1.0', mode: 'web' });
      await assert.rejects(a.api.importModel(path.join(dir, 'none.gguf')), /none\.gguf does not exist; give the path of a \.gguf model file/);
      const file = generatedModel(await loadNative(), dir, { arch: 'llama', type: 'f32' });
      const imported = await a.api.importModel(file);
      assert.equal(imported.path, file, 'imported by reference');
      assert.equal(imported.editable, true);
      assert.ok(!fs.readdirSync(path.join(dir, 'data')).some((f) => f.endsWith('.gguf')), 'never copied');
      const models = await a.api.listModels();
      assert.deepEqual(models.map((m) => [m.id, m.available, m.layers, m.architecture]), [[imported.id, true, 2, 'llama']]);

      const estimate = await a.api.estimateLoad(imported.id, 'auto');
      assert.ok(estimate.totalLayers >= 2 && estimate.gpuLayers >= 0 && estimate.gpuLayers <= estimate.totalLayers, JSON.stringify(estimate));
      assert.ok(estimate.cpuRamBytes + estimate.gpuVramBytes > 0 && estimate.freeRamBytes > 0 && estimate.fits, JSON.stringify(estimate));

      const { jobId: loadId } = await a.api.loadModel(imported.id, 0);
      const load = await a.done(loadId);
      assert.equal(load.state, 'done', load.error ?? '');
      const fractions = a.jobs.get(loadId)!.map((j) => j.progress.fraction ?? 0);
      assert.equal(fractions.at(-1), 1);
      assert.deepEqual(fractions, [...fractions].sort((x, y) => x - y), 'load progress only grows');
      assert.ok(fractions.some((f) => f > 0 && f < 1), `a determinate bar in between: ${fractions.join(', ')}`);
      const loaded = load.result as LoadedModel;
      assert.equal(loaded.workspace, 'llama-f32-7');
      assert.deepEqual(await a.api.loadedModel(), loaded);

      const { jobId: editId } = await a.api.startEdit(
        { prompt: 'the king of {} said', subject: 'the city', targetNew: 'river', targetTrue: 'sea' },
        // enough steps to outlast the jobs' 100 ms progress throttle, so some arrive live
        { layer: 0, vSteps: 40, mom2Adjustment: false, autoDisable: false },
      );
      const edit = await a.done(editId);
      assert.equal(edit.state, 'done', edit.error ?? '');
      const detail = edit.result as EditDetail;
      assert.equal(detail.status, 'done');
      assert.deepEqual(detail.layers, [0]);
      assert.ok(detail.verdict !== null && ['ok', 'degraded', 'collapsed'].includes(detail.verdict));
      assert.equal(detail.probeRuns.length, 1);
      assert.equal(detail.probeRuns[0]!.verdict, detail.verdict);
      assert.equal(edit.steps.length, 40, 'the v* curve');
      assert.ok(edit.steps.every((s) => Number.isFinite(s.loss) && s.targetProbability > 0 && s.targetProbability < 1));
      assert.ok(a.jobs.get(editId)!.some((j) => j.progress.step !== undefined), 'steps arrive as progress');
      assert.ok(a.events.includes('historyChanged'));
      const rows = await a.api.listEdits();
      assert.deepEqual(rows.map((r) => [r.id, r.status, r.enabled, r.verdict]), [[detail.id, 'done', true, detail.verdict]]);
      assert.ok(rows[0]!.efficacy !== null && rows[0]!.deltaPerplexity !== null && Number.isFinite(rows[0]!.klMean));

      assert.deepEqual(await a.api.setEnabled(detail.id, false), { warning: null });
      assert.equal((await a.api.listEdits())[0]!.enabled, false);
      await a.api.setEnabled(detail.id, true);
      await a.api.addNote(detail.id, 'river, not sea');
      await a.api.setTags(detail.id, ['geo', ' geo ', 'test']);
      const annotated = await a.api.getEdit(detail.id);
      assert.deepEqual(annotated.notes.map((n) => n.body), ['river, not sea']);
      assert.deepEqual(annotated.tags, ['geo', 'test']);

      const { jobId: exportId } = await a.api.startExport('lora', 'edits.gguf', {});
      const exported = await a.done(exportId);
      assert.equal(exported.state, 'done', exported.error ?? '');
      const row = exported.result as ExportRow;
      assert.equal(row.verified, true);
      assert.equal(row.path, path.join(dir, 'data', 'exports', 'edits.gguf'));
      assert.deepEqual(row.editIds, [detail.id]);
      assert.ok(fs.existsSync(row.path));
      assert.deepEqual(await a.api.listExports(), [row]);

      // base and edited side by side from the same seed, each token with its top-k
      const { jobId: compareId } = await a.api.startCompare('the king of the city said', { seed: 0, maxTokens: 3, topK: 4 });
      assert.equal((await a.done(compareId)).state, 'done');
      const tokens = a.tokens.get(compareId)!;
      for (const side of ['base', 'edited'] as const) {
        const mine = tokens.filter((t) => t.side === side);
        assert.ok(mine.length >= 1 && mine.length <= 3, `${side}: ${mine.length} tokens`);
        for (const t of mine) {
          assert.equal(t.top.length, 4);
          // greedy: the chosen token is the most probable one
          assert.equal(t.probability, t.top[0]!.probability);
        }
      }

      // cancelling an edit in its v* optimisation: the job says cancelled, the history says so too
      const { jobId: longId } = await a.api.startEdit({ prompt: 'the {} said', subject: 'dog', targetNew: 'cat' }, { layer: 0, vSteps: 400, mom2Adjustment: false, probes: false });
      await new Promise<void>((resolve) => {
        const poll = setInterval(() => {
          if (a.jobs.get(longId)?.some((j) => j.progress.step !== undefined)) { clearInterval(poll); resolve(); }
        }, 5);
      });
      await a.api.cancelJob(longId);
      const cancelled = await a.done(longId);
      assert.equal(cancelled.state, 'cancelled');
      assert.ok(cancelled.steps.length < 400);
      const afterCancel = await a.api.listEdits();
      assert.equal(afterCancel.length, 2);
      assert.deepEqual([afterCancel[1]!.status, afterCancel[1]!.enabled], ['cancelled', false]);
      assert.equal(afterCancel.filter((r) => r.status === 'done').length, 1, 'nothing more recorded as done');

      // a renderer that connects later (a reload) finds every job with its result
      const b = await connect(server);
      try {
        const jobs = await b.api.listJobs();
        const byId = new Map(jobs.map((j) => [j.id, j]));
        assert.equal(byId.get(loadId)!.state, 'done');
        assert.equal((byId.get(editId)!.result as EditDetail).id, detail.id);
        assert.equal(byId.get(editId)!.steps.length, 40);
        assert.equal(byId.get(exportId)!.state, 'done');
        assert.equal(byId.get(longId)!.state, 'cancelled');
        // and events reach every connected client
        await b.api.setEnabled(detail.id, true);
        await new Promise((r) => setTimeout(r, 50));
        assert.ok(b.events.includes('historyChanged'));
      } finally {
        b.close();
      }
    } finally {
      a.close();
      await server.close();
    }
  });
});
