// Child process of bundle.test.ts: `node --import ./registerElectronStub.mjs startBundle.mjs APP_DIR`
// starts APP_DIR/out/main/index.js as Electron would (with GRAFT_USER_DATA as its profile)
// and prints, as one JSON line, what the running bundle found: the database's schema version
// after its migrations, whether the preload exists, and what app://graft/index.html serves.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import Database from 'better-sqlite3';

const appDir = process.argv[2];
await import(pathToFileURL(path.join(appDir, 'out', 'main', 'index.js')).href);
const stub = globalThis.electronStub;
await stub.started;

const db = new Database(path.join(process.env.GRAFT_USER_DATA, 'graft.sqlite'), { readonly: true });
const schemaVersion = db.pragma('user_version', { simple: true });
db.close();
const preload = stub.windows[0]?.options.webPreferences.preload;
const page = await stub.protocolHandlers.get('app')(new Request('app://graft/index.html'));
console.log(JSON.stringify({
  schemaVersion,
  preload: preload && path.relative(appDir, preload),
  preloadExists: Boolean(preload && fs.existsSync(preload)),
  windowUrl: stub.windows[0]?.url,
  indexStatus: page.status,
  indexHasRoot: (await page.text()).includes('<script'),
}));
process.exit(0);
