// The contract's wire protocol, independent of the transport: the backend side dispatches
// requests to an Api implementation and pushes events; the renderer side turns the Api into
// async calls. Electron IPC and the web mode's WebSocket both carry these JSON strings.
import type { Api, EventName, Events, Method, PushMessage, ReplyMessage, RequestMessage } from './contract.ts';

export class RpcError extends Error {
  constructor(message: string, readonly code?: string) {
    super(message);
    this.name = 'RpcError';
  }
}

function parse(message: string): unknown {
  try {
    return JSON.parse(message);
  } catch {
    return undefined;
  }
}

/**
 * The backend end of one connection: `handle` answers a request string through `post`;
 * `emit` pushes an event. Errors thrown by the implementation travel as messages, never as
 * stacks.
 */
export function rpcServer(api: Api, post: (message: string) => void, describe: (error: unknown) => string = (e) => (e instanceof Error ? e.message : String(e))) {
  const methods = new Set<string>(Object.getOwnPropertyNames(Object.getPrototypeOf(api)).concat(Object.keys(api)).filter((k) => k !== 'constructor' && typeof (api as unknown as Record<string, unknown>)[k] === 'function'));
  const reply = (r: ReplyMessage) => post(JSON.stringify(r));
  return {
    async handle(message: string): Promise<void> {
      const m = parse(message) as Partial<RequestMessage> | undefined;
      if (!m || typeof m !== 'object' || typeof m.id !== 'number') return;  // not a request: nothing to answer
      if (typeof m.method !== 'string' || !methods.has(m.method)) {
        reply({ id: m.id, error: { message: `unknown method '${String(m.method)}'`, code: 'unknown-method' } });
        return;
      }
      if (!Array.isArray(m.params)) {
        reply({ id: m.id, error: { message: `${m.method}: params must be an array`, code: 'bad-params' } });
        return;
      }
      try {
        const fn = (api as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>)[m.method]!;
        const result = await fn.apply(api, m.params);
        reply({ id: m.id, result: result === undefined ? null : result });
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        reply({ id: m.id, error: { message: describe(error), ...(typeof code === 'string' ? { code } : {}) } });
      }
    },
    emit<E extends EventName>(event: E, ...data: Parameters<Events[E]>): void {
      post(JSON.stringify({ event, data } satisfies PushMessage));
    },
  };
}

export type EventHandlers = { [E in EventName]?: Events[E] };

/** The renderer end: an Api whose calls travel through `post`, and event subscriptions. */
export function rpcClient(post: (message: string) => void) {
  let next = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const listeners = new Map<EventName, Set<(...args: unknown[]) => void>>();
  const api = new Proxy({} as Api, {
    get: (_target, method: string) => (...params: unknown[]) => new Promise((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve, reject });
      post(JSON.stringify({ id, method: method as Method, params } satisfies RequestMessage));
    }),
  });
  return {
    api,
    /** feed every message that arrives from the backend */
    receive(message: string): void {
      const m = parse(message) as Partial<ReplyMessage & PushMessage> | undefined;
      if (!m || typeof m !== 'object') return;
      if (typeof m.event === 'string') {
        for (const fn of listeners.get(m.event as EventName) ?? []) fn(...(Array.isArray(m.data) ? m.data : []));
        return;
      }
      if (typeof m.id !== 'number') return;
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      if (m.error) p.reject(new RpcError(m.error.message, m.error.code));
      else p.resolve(m.result);
    },
    on<E extends EventName>(event: E, fn: Events[E]): () => void {
      const set = listeners.get(event) ?? new Set();
      set.add(fn as (...args: unknown[]) => void);
      listeners.set(event, set);
      return () => set.delete(fn as (...args: unknown[]) => void);
    },
    /** the connection is gone: every call in flight fails (the caller may retry after reconnecting) */
    disconnected(reason: string): void {
      for (const p of pending.values()) p.reject(new RpcError(reason, 'disconnected'));
      pending.clear();
    },
  };
}
