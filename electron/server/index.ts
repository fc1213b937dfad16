// The web mode: the built renderer and the contract over a WebSocket (/rpc), for browsers on
// this machine or, through an SSH tunnel, on another. Bound to 127.0.0.1 unless told
// otherwise. Every request needs the access token, in the URL once (GET /?token=T, which sets
// a cookie) or in that cookie afterwards. The Host header must name this server (a DNS-
// rebinding page cannot pass) and a browser's WebSocket must come from this origin.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

import { WebSocketServer, type WebSocket } from 'ws';

import { rpcServer } from '../api/rpc.ts';
import { createBackend, type Backend } from '../backend/index.ts';
import { shippedDemoModelDir } from '../core/demo/demoModel.ts';
import { defaultThreads } from '../core/models/llama.ts';

export interface ServerOptions {
  port: number;
  host?: string;
  dataDir: string;
  /** default: 32 random bytes, hex */
  token?: string;
  /** the built renderer (out/renderer) */
  rendererDir: string;
  /** default: a backend on dataDir, closed with the server */
  backend?: Backend;
  /** the demo model that backend offers; default shippedDemoModelDir(), null for none */
  demoModelDir?: string | null;
}

export interface RunningServer {
  url: string;
  host: string;
  port: number;
  token: string;
  backend: Backend;
  /** things the person starting the server should know (a missing renderer, a public address) */
  warnings: string[];
  close(): Promise<void>;
}

const types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.json': 'application/json', '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon', '.woff2': 'font/woff2', '.ttf': 'font/ttf', '.wasm': 'application/wasm',
};

// the renderer's policy in Electron too (app-notes §1); Monaco needs inline styles
const csp = "default-src 'self'; script-src 'self'; worker-src 'self' blob:; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'";

export function rendererMissingMessage(rendererDir: string): string {
  return `the renderer is not built (${path.join(rendererDir, 'index.html')} is missing); build it with \`npx electron-vite build\`, which writes out/renderer`;
}

function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === 'localhost' || host === '::1' || host.startsWith('127.');
}

function sameToken(given: string | null | undefined, token: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given), b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function cookieValue(header: string | undefined, name: string): string | null {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return null;
}

export async function startServer(o: ServerOptions): Promise<RunningServer> {
  const host = o.host ?? '127.0.0.1';
  const token = o.token ?? randomBytes(32).toString('hex');
  if (token.length < 8) throw new Error('the access token must be at least 8 characters long');
  const rendererDir = path.resolve(o.rendererDir);
  const warnings: string[] = [];
  if (!fs.existsSync(path.join(rendererDir, 'index.html'))) warnings.push(rendererMissingMessage(rendererDir));
  if (!isLoopback(host)) {
    warnings.push(`listening on ${host}, which other machines may reach: anyone with the URL can edit models here. The intended remote use is an SSH tunnel to 127.0.0.1 (ssh -L PORT:127.0.0.1:PORT server)`);
  }
  const backend = o.backend ?? createBackend({
    dataDir: o.dataDir, threads: defaultThreads(), gpu: process.env.GRAFT_GPU === 'off' ? 'off' : 'auto', mode: 'web',
    demoModelDir: o.demoModelDir === undefined ? shippedDemoModelDir() : o.demoModelDir,
  });
  let port = o.port;
  // cookies ignore ports, so each server's cookie is named after its port
  const cookieName = () => `graft_token_${port}`;

  /** null when allowed, else why not (one line) with the status to answer */
  const refusal = (req: http.IncomingMessage, url: URL): [number, string] | null => {
    const hostHeader = req.headers.host ?? '';
    const allowed = new Set([host, 'localhost', '127.0.0.1', '[::1]'].map((h) => `${h.includes(':') && !h.startsWith('[') ? `[${h}]` : h}:${port}`));
    if (!allowed.has(hostHeader.toLowerCase())) return [403, `Host '${hostHeader}' is not this server; open it as http://127.0.0.1:${port}/`];
    if (!sameToken(url.searchParams.get('token'), token) && !sameToken(cookieValue(req.headers.cookie, cookieName()), token)) {
      return [401, url.searchParams.has('token') ? 'wrong access token; use the URL graft serve printed' : 'an access token is needed; open the URL graft serve printed (…/?token=…)'];
    }
    return null;
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://placeholder');
    const refused = refusal(req, url);
    if (refused) {
      res.writeHead(refused[0], { 'content-type': 'text/plain; charset=utf-8' }).end(`${refused[1]}\n`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain; charset=utf-8', allow: 'GET, HEAD' }).end('only GET and HEAD\n');
      return;
    }
    const headers: Record<string, string> = { 'content-security-policy': csp, 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'x-frame-options': 'DENY' };
    if (sameToken(url.searchParams.get('token'), token)) headers['set-cookie'] = `${cookieName()}=${token}; HttpOnly; SameSite=Strict; Path=/`;
    const relative = decodeURIComponent(url.pathname === '/' ? '/index.html' : url.pathname);
    const file = path.normalize(path.join(rendererDir, relative));
    if (!file.startsWith(rendererDir + path.sep)) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    fs.stat(file, (error, stat) => {
      if (error || !stat.isFile()) {
        const missing = relative === '/index.html';
        res.writeHead(missing ? 503 : 404, { 'content-type': 'text/plain; charset=utf-8', ...headers }).end(`${missing ? rendererMissingMessage(rendererDir) : 'not found'}\n`);
        return;
      }
      res.writeHead(200, {
        ...headers, 'content-type': types[path.extname(file)] ?? 'application/octet-stream', 'content-length': String(stat.size),
        'cache-control': relative === '/index.html' ? 'no-store' : 'no-cache',
      });
      if (req.method === 'HEAD') res.end();
      else fs.createReadStream(file).pipe(res);
    });
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 << 20 });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://placeholder');
    let refused = url.pathname === '/rpc' ? refusal(req, url) : [404, 'the only WebSocket endpoint is /rpc'] as [number, string];
    // browsers always send Origin; a page of another origin must not drive the backend with a stolen cookie
    const origin = req.headers.origin;
    if (!refused && origin !== undefined && origin !== `http://${req.headers.host}`) refused = [403, `Origin '${origin}' is not this server`];
    if (refused) {
      socket.end(`HTTP/1.1 ${refused[0]} ${http.STATUS_CODES[refused[0]]}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${refused[1]}\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => connect(ws));
  });

  const api = backend.rpcSurface();
  const connect = (ws: WebSocket) => {
    const rpc = rpcServer(api, (message) => { if (ws.readyState === ws.OPEN) ws.send(message); });
    const unsubscribe = backend.subscribe((event, ...data) => rpc.emit(event, ...data));
    ws.on('message', (data) => { void rpc.handle(data.toString()); });
    ws.on('close', unsubscribe);
    ws.on('error', unsubscribe);
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => reject(error.code === 'EADDRINUSE' ? new Error(`port ${o.port} on ${host} is in use; choose another --port (0 = any free port)`) : error));
    server.listen(o.port, host, () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}/?token=${token}`, host, port, token, backend, warnings,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      if (!o.backend) await backend.close();
    },
  };
}
