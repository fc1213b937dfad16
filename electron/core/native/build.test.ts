import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';

import { tempDir } from '../testing/fixtures.ts';
import { nativeBuildDir } from './binding.ts';

const script = path.resolve(nativeBuildDir, '..', '..', 'scripts', 'build.mjs');

test('a machine without compiler, cmake, make or git is told which apt packages to install', () => {
  const r = spawnSync(process.execPath, [script, '--force'], { encoding: 'utf8', env: { ...process.env, PATH: tempDir() } });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /missing build tools: cmake, g\+\+, git, make/);
  assert.match(r.stderr, /sudo apt-get install -y cmake g\+\+ git make/);
});
