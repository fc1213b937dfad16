import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { appRoot, findAppRoot, unpackedPath } from './appPaths.ts';

test('from source the app root is the checkout', () => {
  assert.ok(fs.existsSync(path.join(appRoot, 'migrations')));
  assert.ok(fs.existsSync(path.join(appRoot, 'electron', 'core', 'appPaths.ts')));
});

test('the root is the nearest folder above with a package.json (out/main → the app folder)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'graft-approot-'));
  try {
    fs.mkdirSync(path.join(dir, 'out', 'main'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'package.json'), '{}');
    assert.equal(findAppRoot(path.join(dir, 'out', 'main')), dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('paths inside app.asar map to app.asar.unpacked; others are unchanged', () => {
  const res = path.join(path.sep, 'opt', 'Graft', 'resources');
  assert.equal(unpackedPath(path.join(res, 'app.asar', 'native', 'build', 'Release')), path.join(res, 'app.asar.unpacked', 'native', 'build', 'Release'));
  assert.equal(unpackedPath(path.join(path.sep, 'src', 'graft', 'native')), path.join(path.sep, 'src', 'graft', 'native'));
  // a folder merely named like the archive's prefix is not the archive
  assert.equal(unpackedPath(path.join(path.sep, 'x', 'app.asarish', 'a')), path.join(path.sep, 'x', 'app.asarish', 'a'));
});
