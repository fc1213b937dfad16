// The built main bundle must find its runtime files away from the checkout, as it must inside
// a packaged app.asar: the test builds with electron-vite into a scratch app folder (out/,
// package.json and node_modules, but no migrations/ or sources), starts out/main/index.js
// under Node with a stand-in `electron` module, and checks that the backend's database
// reached the latest schema and the window got the bundled preload and renderer.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { appRoot } from '../core/appPaths.ts';
import { loadMigrations } from '../core/store/migrate.ts';

const testing = path.join(appRoot, 'electron', 'main', 'testing');
let scratch: string;
let app: string;

before(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'graft-bundle-'));
  app = path.join(scratch, 'app');
  fs.mkdirSync(app);
  const build = spawnSync('npx', ['electron-vite', 'build', '--outDir', path.join(app, 'out'), '--logLevel', 'error'], { cwd: appRoot, encoding: 'utf8' });
  assert.equal(build.status, 0, `electron-vite build failed:\n${build.stdout}\n${build.stderr}`);
  fs.copyFileSync(path.join(appRoot, 'package.json'), path.join(app, 'package.json'));
  fs.symlinkSync(path.join(appRoot, 'node_modules'), path.join(app, 'node_modules'), 'dir');
});

after(() => fs.rmSync(scratch, { recursive: true, force: true }));

test('the main bundle migrates its database and serves its renderer without the checkout', () => {
  assert.equal(fs.existsSync(path.join(app, 'migrations')), false);
  const userData = path.join(scratch, 'profile');
  const r = spawnSync(process.execPath, ['--import', path.join(testing, 'registerElectronStub.mjs'), path.join(testing, 'startBundle.mjs'), app], {
    cwd: scratch, encoding: 'utf8', env: { ...process.env, GRAFT_USER_DATA: userData }, timeout: 60_000,
  });
  assert.equal(r.status, 0, `the bundle did not start:\n${r.stdout}\n${r.stderr}`);
  const found = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
  assert.deepEqual(found, {
    schemaVersion: loadMigrations().length,
    preload: path.join('out', 'preload', 'index.cjs'),
    preloadExists: true,
    windowUrl: 'app://graft/index.html',
    indexStatus: 200,
    indexHasRoot: true,
  });
});
