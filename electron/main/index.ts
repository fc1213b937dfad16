// Thin Electron shell: one window with secure defaults and nothing else yet. The 'rpc' IPC
// adapter over electron/api/contract.ts (birpc, app-notes §2) arrives with the app issue.
import { app, BrowserWindow, net, protocol, shell } from 'electron';
import { join, normalize, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

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

app.whenReady().then(() => {
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
