// Thin Electron shell: one window with secure defaults, and the backend
// (electron/backend) behind the contract on the single 'rpc' IPC channel, answering only
// pages served from app://graft/.
import { app, BrowserWindow, dialog, ipcMain, net, protocol, shell, type WebContents } from 'electron';
import { join, normalize, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { rpcServer } from '../api/rpc.ts';
import { createBackend, type Backend } from '../backend/index.ts';
import { shippedDemoModelDir } from '../core/demo/demoModel.ts';
import { defaultThreads } from '../core/models/llama.ts';

// Tests and side-by-side installs need their own profile, and Electron fixes the profile
// path at 'ready', so this must run first.
if (process.env.GRAFT_USER_DATA) app.setPath('userData', process.env.GRAFT_USER_DATA);

// out/main/index.js → out/preload/index.cjs and out/renderer/ (electron.vite.config.ts).
const here = fileURLToPath(new URL('.', import.meta.url));
const rendererDir = join(here, '..', 'renderer');
const preload = join(here, '..', 'preload', 'index.cjs');

// A privileged app:// origin instead of file://: a real origin for module workers and for
// checking IPC senders, and no access to the rest of the disk. Must be registered before ready.
protocol.registerSchemesAsPrivileged([
  { scheme: 'app', privileges: { standard: true, secure: true, supportFetchAPI: true } },
]);

function serveRenderer(request: Request): Promise<Response> | Response {
  const url = new URL(request.url);
  const file = normalize(join(rendererDir, decodeURIComponent(url.pathname)));
  // Refuse anything that resolves outside out/renderer (e.g. encoded ../ segments).
  if (url.host !== 'graft' || !file.startsWith(rendererDir + sep)) {
    return new Response('not found', { status: 404 });
  }
  return net.fetch(pathToFileURL(file).toString());
}

// Applies to every webContents, including any a future feature creates.
app.on('web-contents-created', (_event, contents) => {
  contents.setWindowOpenHandler(({ url }) => {
    if (/^https?:\/\//.test(url)) void shell.openExternal(url);
    return { action: 'deny' };
  });
  // The renderer is a single page; any navigation is unexpected, so none is allowed.
  contents.on('will-navigate', (event) => event.preventDefault());
});

function createWindow(): void {
  const win = new BrowserWindow({
    width: 1200,
    height: 800,
    title: 'Graft',
    webPreferences: { preload, contextIsolation: true, sandbox: true, nodeIntegration: false },
  });
  void win.loadURL('app://graft/index.html');
}

const CHANNEL = 'rpc';
let backend: Backend | null = null;

// One protocol endpoint per renderer, created on its first message, gone with it.
const endpoints = new Map<number, ReturnType<typeof rpcServer>>();

function endpointFor(contents: WebContents): ReturnType<typeof rpcServer> {
  let endpoint = endpoints.get(contents.id);
  if (endpoint) return endpoint;
  const post = (message: string) => { if (!contents.isDestroyed()) contents.send(CHANNEL, message); };
  // the requests only the desktop shell can answer: a native file dialog over this window
  const chooseFile = async (title: string, filter: { name: string; extensions: string[] }): Promise<string | null> => {
    const window = BrowserWindow.fromWebContents(contents);
    const options = { title, properties: ['openFile' as const], filters: [filter] };
    const picked = window ? await dialog.showOpenDialog(window, options) : await dialog.showOpenDialog(options);
    return picked.canceled ? null : picked.filePaths[0] ?? null;
  };
  const chooseModelFile = () => chooseFile('Open a GGUF model', { name: 'GGUF models', extensions: ['gguf'] });
  const chooseRequestFile = () => chooseFile('Open a request file', { name: 'Edit requests', extensions: ['json', 'jsonl', 'yaml', 'yml'] });
  const rpc = rpcServer({ ...backend!.rpcSurface(), chooseModelFile, chooseRequestFile }, post);
  const unsubscribe = backend!.subscribe((event, ...data) => rpc.emit(event, ...data));
  contents.once('destroyed', () => {
    unsubscribe();
    endpoints.delete(contents.id);
  });
  endpoint = rpc;
  endpoints.set(contents.id, endpoint);
  return endpoint;
}

ipcMain.on(CHANNEL, (event, message: unknown) => {
  // only Graft's own pages may drive the backend (not a frame that navigated elsewhere)
  const url = event.senderFrame?.url ?? '';
  if (!url.startsWith('app://graft/') || typeof message !== 'string' || !backend) return;
  void endpointFor(event.sender).handle(message);
});

app.whenReady().then(() => {
  backend = createBackend({
    dataDir: app.getPath('userData'), threads: defaultThreads(), gpu: process.env.GRAFT_GPU === 'off' ? 'off' : 'auto', mode: 'electron',
    // tests that start from an empty profile say GRAFT_DEMO_MODEL=none, as `graft serve --demo-model none`
    demoModelDir: process.env.GRAFT_DEMO_MODEL === 'none' ? null : process.env.GRAFT_DEMO_MODEL || shippedDemoModelDir(),
  });
  protocol.handle('app', serveRenderer);
  createWindow();
  // macOS keeps the app alive without windows; re-open one from the dock.
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow();
  });
});

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit();
});

// Jobs are cancelled and the history closed before the process ends.
let closing = false;
app.on('before-quit', (event) => {
  if (!backend || closing) return;
  closing = true;
  event.preventDefault();
  void backend.close().finally(() => app.exit(0));
});
