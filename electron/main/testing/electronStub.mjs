// A stand-in for the `electron` module, so the built main bundle can start under plain Node
// (the Electron binary cannot be downloaded on the development machines). It implements only
// what electron/main/index.ts calls and records what the bundle asked for in globalThis.electronStub.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const paths = new Map();
const listeners = new Map();
let resolveReady;
const state = globalThis.electronStub = {
  windows: [],
  protocolHandlers: new Map(),
  listeners,
  /** Resolves once the whenReady callback has run (the backend exists and the window was created). */
  started: new Promise((resolve) => { resolveReady = resolve; }),
};

export const app = {
  setPath: (name, value) => { paths.set(name, value); },
  getPath: (name) => {
    if (!paths.has(name)) throw new Error(`electron stub: no path set for '${name}'`);
    return paths.get(name);
  },
  on: (event, fn) => { listeners.set(event, fn); },
  whenReady: () => Promise.resolve().then(() => { queueMicrotask(() => setImmediate(resolveReady)); }),
  quit: () => {},
  exit: () => {},
};

export class BrowserWindow {
  static getAllWindows() { return state.windows; }
  constructor(options) { this.options = options; state.windows.push(this); }
  loadURL(url) { this.url = url; return Promise.resolve(); }
}

export const ipcMain = { on: () => {} };
export const shell = { openExternal: () => Promise.resolve() };
// no window ever asks for a file here; the bundle only needs the name to link
export const dialog = { showOpenDialog: () => Promise.resolve({ canceled: true, filePaths: [] }) };
export const protocol = {
  registerSchemesAsPrivileged: () => {},
  handle: (scheme, handler) => { state.protocolHandlers.set(scheme, handler); },
};
// Electron's net.fetch reads file:// URLs; Node's fetch does not, so read the file here.
export const net = {
  fetch: async (url) => {
    const file = fileURLToPath(url);
    return fs.existsSync(file) ? new Response(fs.readFileSync(file)) : new Response(`missing ${path.basename(file)}`, { status: 404 });
  },
};

export default { app, BrowserWindow, dialog, ipcMain, shell, protocol, net };
