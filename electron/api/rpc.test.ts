// The wire protocol both transports carry: calls round-trip with their results and errors,
// unknown methods and malformed messages are refused, events reach subscribers, and calls in
// flight fail when the connection drops.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { Api } from './contract.ts';
import { RpcError, rpcClient, rpcServer } from './rpc.ts';

class FakeApi {
  async version() { return { app: '1.2.3', mode: 'web' as const }; }
  async importModel(path: string) { if (path === '') throw Object.assign(new Error('give a path'), { code: 'bad-path' }); return { path }; }
  async unloadModel() { return undefined; }
}

function pair() {
  const api = new FakeApi() as unknown as Api;
  let server: ReturnType<typeof rpcServer>;
  const client = rpcClient((m) => { void server.handle(m); });
  server = rpcServer(api, (m) => client.receive(m));
  return { client, server };
}

describe('rpc', () => {
  test('calls return results, errors keep message and code, void becomes null', async () => {
    const { client } = pair();
    assert.deepEqual(await client.api.version(), { app: '1.2.3', mode: 'web' });
    assert.deepEqual(await client.api.importModel('/m.gguf'), { path: '/m.gguf' });
    assert.equal(await client.api.unloadModel(), null);
    await assert.rejects(client.api.importModel(''), (e: unknown) => e instanceof RpcError && e.message === 'give a path' && e.code === 'bad-path');
  });

  test('unknown methods, bad params and garbage are refused without crashing the server', async () => {
    const sent: string[] = [];
    const server = rpcServer(new FakeApi() as unknown as Api, (m) => sent.push(m));
    await server.handle(JSON.stringify({ id: 1, method: 'deleteEverything', params: [] }));
    await server.handle(JSON.stringify({ id: 2, method: 'version', params: 'x' }));
    await server.handle(JSON.stringify({ id: 3, method: 'constructor', params: [] }));
    await server.handle('not json');
    await server.handle(JSON.stringify({ method: 'version', params: [] }));
    assert.deepEqual(sent.map((s) => JSON.parse(s)), [
      { id: 1, error: { message: "unknown method 'deleteEverything'", code: 'unknown-method' } },
      { id: 2, error: { message: 'version: params must be an array', code: 'bad-params' } },
      { id: 3, error: { message: "unknown method 'constructor'", code: 'unknown-method' } },
    ]);
  });

  test('events reach their subscribers until unsubscribed; a disconnect fails calls in flight', async () => {
    const { client, server } = pair();
    const seen: string[] = [];
    const off = client.on('historyChanged', () => seen.push('changed'));
    server.emit('historyChanged');
    off();
    server.emit('historyChanged');
    assert.deepEqual(seen, ['changed']);
    const lost = rpcClient(() => undefined);
    const call = lost.api.version();
    lost.disconnected('the backend went away');
    await assert.rejects(call, /the backend went away/);
  });
});
