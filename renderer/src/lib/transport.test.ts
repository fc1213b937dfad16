// The transport's reconnect loop against a scripted WebSocket, and the job-list bookkeeping.
// Run: node --import tsx --test renderer/src/lib/transport.test.ts
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffMs, connect, socketUrl, type ConnectionStatus } from './transport.ts';
import { justFinished, latestJob, mergeJob } from './jobs.ts';
import type { Job } from '../../../electron/api/contract.ts';

class FakeSocket {
  static all: FakeSocket[] = [];
  sent: string[] = [];
  private handlers = new Map<string, ((e: { data?: unknown }) => void)[]>();
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  addEventListener(type: string, fn: (e: { data?: unknown }) => void): void {
    this.handlers.set(type, [...(this.handlers.get(type) ?? []), fn]);
  }
  send(m: string): void {
    this.sent.push(m);
  }
  fire(type: string, data?: unknown): void {
    for (const fn of this.handlers.get(type) ?? []) fn({ data });
  }
}

test('the socket address keeps the scheme family and passes the token on', () => {
  assert.equal(socketUrl({ protocol: 'http:', host: '127.0.0.1:5317', search: '?token=a b' }), 'ws://127.0.0.1:5317/rpc?token=a%20b');
  assert.equal(socketUrl({ protocol: 'https:', host: 'h', search: '' }), 'wss://h/rpc');
});

test('backoff doubles from 500 ms and stops at 10 s', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 9].map(backoffMs), [500, 1000, 2000, 4000, 8000, 10000, 10000]);
});

test('a lost connection fails calls in flight, reconnects, and reports each open', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const g = globalThis as Record<string, unknown>;
  g.window = { location: { protocol: 'http:', host: 'x', search: '' } };
  g.WebSocket = FakeSocket;
  t.after(() => {
    delete g.window;
    delete g.WebSocket;
  });
  const statuses: ConnectionStatus[] = [];
  let opened = 0;
  const client = connect({ status: (s) => statuses.push(s), opened: () => opened++ });

  await assert.rejects(client.api.listModels(), /not connected/);
  const first = FakeSocket.all.at(-1)!;
  first.fire('open');
  assert.equal(opened, 1);
  const call = client.api.listModels();
  first.fire('message', JSON.stringify({ id: JSON.parse(first.sent[0]!).id, result: [] }));
  assert.deepEqual(await call, []);

  const pending = client.api.listJobs();
  first.fire('close');
  await assert.rejects(pending, /lost/);
  assert.equal(statuses.at(-1), 'reconnecting');
  const before = FakeSocket.all.length;
  t.mock.timers.tick(backoffMs(0));
  assert.equal(FakeSocket.all.length, before + 1, 'a new socket after the backoff');
  FakeSocket.all.at(-1)!.fire('open');
  assert.equal(opened, 2, 'the reopen is reported so the lists reload');
  assert.equal(statuses.at(-1), 'open');
});

function job(id: string, startedAt: string, state: Job['state'] = 'running'): Job {
  return { id, kind: 'edit', title: id, state, startedAt, progress: { fraction: null, phase: '' }, steps: [], result: null, error: null };
}

test('jobs: newest first, replaced by id, finished exactly once', () => {
  let list = mergeJob([], job('a', '2026-01-01T00:00:00Z'));
  list = mergeJob(list, job('b', '2026-01-02T00:00:00Z'));
  list = mergeJob(list, job('a', '2026-01-01T00:00:00Z', 'done'));
  assert.deepEqual(list.map((j) => [j.id, j.state]), [['b', 'running'], ['a', 'done']]);
  assert.equal(latestJob(list, 'edit')?.id, 'b');
  assert.equal(justFinished(job('a', 't'), job('a', 't', 'done')), true);
  assert.equal(justFinished(job('a', 't', 'done'), job('a', 't', 'done')), false);
  assert.equal(justFinished(undefined, job('a', 't', 'running')), false);
});
