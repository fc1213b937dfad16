// The renderer's one door to a backend (DESIGN §2): the contract's JSON strings travel through
// the Electron preload's `window.bridge` when it exists, else over a WebSocket to the web mode's
// /rpc on the page's own host. One rpcClient outlives every socket, so event subscriptions made
// once keep working after a reconnect.
import { RpcError, rpcClient } from '../../../electron/api/rpc.ts';

export interface Bridge {
  post(message: string): void;
  on(callback: (message: string) => void): void;
}

declare global {
  interface Window {
    bridge?: Bridge;
  }
}

export type ConnectionStatus = 'connecting' | 'open' | 'reconnecting';

export interface ConnectionObserver {
  status(status: ConnectionStatus, retryInMs: number | null): void;
  /** every time a connection opens, the first one included: lists should be (re)loaded */
  opened(): void;
}

/** Delay before reconnect attempt `attempt` (0-based): doubling from 500 ms, capped at 10 s. */
export function backoffMs(attempt: number): number {
  return Math.min(10_000, 500 * 2 ** Math.min(attempt, 5));
}

/** The WebSocket address: same host and scheme family as the page, the page's token passed on. */
export function socketUrl(location: Pick<Location, 'protocol' | 'host' | 'search'>): string {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  // The server's HttpOnly cookie normally authenticates the socket; the token from the page's
  // own address is a fallback for browsers that did not keep the cookie (e.g. a private window).
  const token = new URLSearchParams(location.search).get('token');
  return `${scheme}://${location.host}/rpc${token ? `?token=${encodeURIComponent(token)}` : ''}`;
}

export function connect(observer: ConnectionObserver) {
  let send: ((message: string) => void) | null = null;
  const client = rpcClient((message) => {
    // Throwing here rejects the call at once instead of leaving it pending until a reconnect.
    if (!send) throw new RpcError('not connected to the backend; reconnecting', 'disconnected');
    send(message);
  });

  const bridge = typeof window !== 'undefined' ? window.bridge : undefined;
  if (bridge) {
    bridge.on((message) => client.receive(message));
    send = (message) => bridge.post(message);
    observer.status('open', null);
    queueMicrotask(() => observer.opened());
    return client;
  }

  let attempt = 0;
  const open = () => {
    observer.status(attempt === 0 ? 'connecting' : 'reconnecting', null);
    const ws = new WebSocket(socketUrl(window.location));
    ws.addEventListener('open', () => {
      attempt = 0;
      send = (message) => ws.send(message);
      observer.status('open', null);
      observer.opened();
    });
    ws.addEventListener('message', (e) => {
      if (typeof e.data === 'string') client.receive(e.data);
    });
    // 'close' follows 'error' in every case, so only 'close' schedules the retry.
    ws.addEventListener('close', () => {
      send = null;
      client.disconnected('the connection to the backend was lost');
      const delay = backoffMs(attempt++);
      observer.status('reconnecting', delay);
      setTimeout(open, delay);
    });
  };
  open();
  return client;
}

export type Client = ReturnType<typeof connect>;
