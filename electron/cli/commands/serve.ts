// `graft serve`: the web mode (electron/server) until Ctrl-C. The one line on stdout is the
// URL with the access token, so scripts and tests can read it; everything else goes to stderr.
import path from 'node:path';

import { appRoot } from '../../core/appPaths.ts';
import { defaultDatabasePath } from '../../core/store/database.ts';
import { startServer } from '../../server/index.ts';
import { integerOption, parseCommandArgs } from '../args.ts';
import { UsageError } from '../errors.ts';

export const serveUsage = 'graft serve [--port N] [--host H] [--data DIR] [--token T] [--demo-model DIR|none]  (port 0: any free port; token also from GRAFT_TOKEN; the demo model offered to the data folder: default the shipped one)';

export const defaultPort = 5317;

/** out/renderer of this checkout, where `npx electron-vite build` writes the renderer. */
export const builtRendererDir = path.join(appRoot, 'out', 'renderer');

export async function runServe(argv: string[]): Promise<void> {
  const { values, positionals } = parseCommandArgs(argv, {
    port: { type: 'string' }, host: { type: 'string' }, data: { type: 'string' }, token: { type: 'string' }, 'demo-model': { type: 'string' },
  }, serveUsage);
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'\nusage: ${serveUsage}`);
  const port = integerOption(values.port, '--port', defaultPort);
  if (port < 0 || port > 65535) throw new UsageError(`--port must be from 0 to 65535, got ${port}`);
  const demo = values['demo-model'];
  if (demo !== undefined && demo.trim() === '') throw new UsageError(`--demo-model needs a folder, or 'none'\nusage: ${serveUsage}`);
  await serve({
    port, host: values.host ?? '127.0.0.1', dataDir: path.resolve(values.data ?? path.dirname(defaultDatabasePath())),
    ...(demo !== undefined ? { demoModelDir: demo === 'none' ? null : path.resolve(demo) } : {}),
    ...(values.token ?? process.env.GRAFT_TOKEN ? { token: values.token ?? process.env.GRAFT_TOKEN! } : {}),
  });
}

/** Runs the web mode until SIGINT or SIGTERM, then closes it (jobs cancelled, history closed). */
export async function serve(o: { port: number; host: string; dataDir: string; token?: string; demoModelDir?: string | null }): Promise<void> {
  const server = await startServer({ ...o, rendererDir: builtRendererDir });
  for (const w of server.warnings) process.stderr.write(`warning: ${w}\n`);
  process.stderr.write(`data folder ${o.dataDir}; Ctrl-C stops the server\n`);
  process.stdout.write(`Graft is running at ${server.url}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.stderr.write('stopping…\n');
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await server.close();
}
