// `graft start` / `npm start`: the Electron app where an Electron binary exists, otherwise the
// web mode (building the renderer first if needed), saying which and why on stderr.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import { appRoot as root } from '../../core/appPaths.ts';
import { defaultDatabasePath } from '../../core/store/database.ts';
import { builtRendererDir, defaultPort, serve } from './serve.ts';

/** Why Electron cannot start here, or null when its binary exists. */
export function electronUnavailable(): string | null {
  if (process.env.ELECTRON_OVERRIDE_DIST_PATH) {
    return fs.existsSync(process.env.ELECTRON_OVERRIDE_DIST_PATH) ? null : `ELECTRON_OVERRIDE_DIST_PATH (${process.env.ELECTRON_OVERRIDE_DIST_PATH}) does not exist`;
  }
  let pkg: string;
  try {
    pkg = createRequire(import.meta.url).resolve('electron/package.json');
  } catch {
    return 'the electron package is not installed';
  }
  // requiring 'electron' without path.txt would try to download the binary
  return fs.existsSync(path.join(path.dirname(pkg), 'path.txt')) ? null : 'the Electron binary was never downloaded: node_modules/electron/path.txt is missing, and `npx install-electron` fetches it where the network allows';
}

function build(why: string): void {
  process.stderr.write(`${why}: building with \`npx electron-vite build\`…\n`);
  const r = spawnSync('npx', ['electron-vite', 'build'], { cwd: root, stdio: ['ignore', process.stderr, process.stderr] });
  if (r.status !== 0) throw new Error(`\`npx electron-vite build\` failed (exit ${r.status ?? r.signal}); see its output above`);
}

export async function runStart(): Promise<void> {
  const unavailable = electronUnavailable();
  if (unavailable === null) {
    if (!fs.existsSync(path.join(root, 'out', 'main', 'index.js'))) build('the app is not built');
    const electron = createRequire(import.meta.url)('electron') as unknown as string;
    const child = spawn(electron, [root], { stdio: 'inherit' });
    await new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => (code === 0 || code === null ? resolve() : reject(new Error(`Electron exited with code ${code}`))));
    });
    return;
  }
  process.stderr.write(`Electron cannot start here (${unavailable}); starting the web mode instead.\n`);
  if (!fs.existsSync(path.join(builtRendererDir, 'index.html'))) build('the renderer is not built (out/renderer)');
  await serve({
    port: defaultPort, host: '127.0.0.1', dataDir: path.dirname(defaultDatabasePath()),
    ...(process.env.GRAFT_TOKEN ? { token: process.env.GRAFT_TOKEN } : {}),
  });
}
