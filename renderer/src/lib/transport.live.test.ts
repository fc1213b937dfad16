// The renderer's transport against the real web mode: `startServer` on a throwaway data folder and
// the `ws` package standing in for the browser's WebSocket (same addEventListener API; node 20 has
// no global one). Covers the token refusal and the reconnect loop with real sockets and real timers.
// Run: node scripts/run-tests.mjs transport.live
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { WebSocket as NodeWebSocket } from 'ws';

import { startServer, type RunningServer } from '../../../electron/server/index.ts';
import { createBackend, type Backend } from '../../../electron/backend/index.ts';
import type { Api } from '../../../electron/api/contract.ts';
import { backoffMs, connect, type ConnectionStatus } from './transport.ts';

const g = globalThis as Record<string, unknown>;
let dir: string;
let backend: Backend;
/** calls to this method never answer, so one is surely in flight when the socket drops */
let hanging = 0;

// The transport retries for ever (a page never stops wanting its backend); at the end its pending
// retries are cleared and any socket it still opens is a dead one, so the test process can exit.
const realSetTimeout = globalThis.setTimeout;
const timers = new Set<ReturnType<typeof setTimeout>>();
let stopped = false;
/** `new WebSocket(url)` as the transport calls it: a `ws` socket (with the browser's quiet errors) */
function BrowserLikeSocket(url: string): unknown {
  if (stopped) return { addEventListener() {}, send() {} };
  const ws = new NodeWebSocket(url);
  ws.on('error', () => {});  // a browser reports a refused upgrade as error + close; 'close' is what the transport uses
  return ws;
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'graft-transport-'));
  fs.mkdirSync(path.join(dir, 'renderer'));
  fs.writeFileSync(path.join(dir, 'renderer', 'index.html'), '<!doctype html><title>t</title>');
  backend = createBackend({ dataDir: path.join(dir, 'data'), threads: 1, gpu: 'off', mode: 'web', demoModelDir: null });
  g.WebSocket = BrowserLikeSocket;
  g.setTimeout = ((fn: () => void, ms?: number) => {
    const t = realSetTimeout(fn, ms);
    timers.add(t);
    return t;
  }) as typeof setTimeout;
});
after(async () => {
  stopped = true;
  for (const t of timers) clearTimeout(t);
  g.setTimeout = realSetTimeout;
  delete g.WebSocket;
  delete g.window;
  await backend.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The real backend, except listJobs, which never answers. */
function withHangingCall(b: Backend): Backend {
  const surface: Api = { ...b.rpcSurface(), listJobs: () => { hanging++; return new Promise<never>(() => {}); } };
  return Object.assign(Object.create(b) as Backend, { rpcSurface: () => surface });
}

function serve(port = 0, token = 'transport-test-token'): Promise<RunningServer> {
  return startServer({ port, token, dataDir: path.join(dir, 'data'), rendererDir: path.join(dir, 'renderer'), backend: withHangingCall(backend) });
}

/** The page's address as the transport reads it: the token in the query, like the printed URL. */
function pageAt(server: RunningServer, search: string): void {
  g.window = { location: { protocol: 'http:', host: `127.0.0.1:${server.port}`, search } };
}

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('without the token the socket is refused: no open, calls fail, the client keeps retrying with backoff', async () => {
  const server = await serve();
  const opened: number[] = [];
  const statuses: { status: ConnectionStatus; retryInMs: number | null }[] = [];
  pageAt(server, '');
  const client = connect({ status: (status, retryInMs) => statuses.push({ status, retryInMs }), opened: () => opened.push(Date.now()) });
  try {
    // the first refusal and the retry after it, then a second refusal with a doubled delay
    await until('two refusals', () => statuses.filter((s) => s.retryInMs !== null).length >= 2);
    assert.equal(opened.length, 0, 'a refused socket never counts as open');
    assert.equal(statuses[0]!.status, 'connecting');
    assert.deepEqual(statuses.filter((s) => s.retryInMs !== null).slice(0, 2).map((s) => [s.status, s.retryInMs]), [
      ['reconnecting', backoffMs(0)], ['reconnecting', backoffMs(1)],
    ]);
    assert.ok(!statuses.some((s) => s.status === 'open'));
    await assert.rejects(client.api.version(), (e: Error & { code?: string }) => e.code === 'disconnected' && /not connected/.test(e.message));

    // the same server with a wrong token: refused as well
    const wrong: ConnectionStatus[] = [];
    pageAt(server, '?token=not-the-right-one');
    let wrongOpened = 0;
    connect({ status: (s) => wrong.push(s), opened: () => wrongOpened++ });
    await until('a refusal with a wrong token', () => wrong.includes('reconnecting'));
    assert.equal(wrongOpened, 0);

    // and the right token opens, answering calls (the control: the refusals above are the token's doing)
    pageAt(server, `?token=${server.token}`);
    let ok = 0;
    const good = connect({ status: () => {}, opened: () => ok++ });
    await until('the open with the token', () => ok === 1);
    assert.equal((await good.api.version()).mode, 'web');
  } finally {
    await server.close();  // terminates the sockets; the clients' retries then find nothing listening
  }
});

test('a dropped server: calls in flight fail, the client backs off, reconnects to the restarted server and reports the open', async () => {
  let server = await serve();
  const port = server.port;
  pageAt(server, `?token=${server.token}`);
  const statuses: { status: ConnectionStatus; retryInMs: number | null; at: number }[] = [];
  const opened: number[] = [];
  const client = connect({ status: (status, retryInMs) => statuses.push({ status, retryInMs, at: Date.now() }), opened: () => opened.push(Date.now()) });
  await until('the first open', () => opened.length === 1);
  assert.deepEqual(statuses.map((s) => s.status), ['connecting', 'open']);
  assert.deepEqual(await client.api.listModels(), []);

  // a call the server never answers is in flight when the server goes away
  const before = hanging;
  const inFlight = client.api.listJobs();
  await until('the hanging call to reach the server', () => hanging === before + 1);
  const downAt = Date.now();
  await server.close();
  await assert.rejects(inFlight, (e: Error & { code?: string }) => e.code === 'disconnected' && /lost/.test(e.message));
  await assert.rejects(client.api.version(), /not connected/, 'a call made while down fails at once');

  // down for a while: the retries back off (500 ms, 1 s, 2 s…)
  await until('three failed retries', () => statuses.filter((s) => s.retryInMs !== null).length >= 3, 15_000);
  const delays = statuses.filter((s) => s.retryInMs !== null).map((s) => s.retryInMs);
  assert.deepEqual(delays.slice(0, 3), [backoffMs(0), backoffMs(1), backoffMs(2)]);
  assert.equal(opened.length, 1);

  server = await serve(port);
  try {
    await until('the reconnect', () => opened.length === 2, 15_000);
    // at least the three waits it announced before the restart
    assert.ok(opened[1]! - downAt >= backoffMs(0) + backoffMs(1) + backoffMs(2) - 50, `reconnected after ${opened[1]! - downAt} ms`);
    assert.equal(statuses.at(-1)!.status, 'open');
    assert.equal(statuses.at(-1)!.retryInMs, null);
    // the same client works again, and a later drop starts the backoff from the beginning
    assert.deepEqual(await client.api.listModels(), []);
  } finally {
    await server.close();
  }
  await until('the retry after the second drop', () => statuses.at(-1)!.retryInMs !== null);
  assert.equal(statuses.at(-1)!.retryInMs, backoffMs(0), 'the backoff restarts after a successful open');
});
