import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { getSharedLlama } from '../models/llama.ts';
import { generatedModel, tempDir } from '../testing/fixtures.ts';
import { withModel } from '../models/nodeLlamaProbe.ts';
import { loadNative, nativeBuildDir } from './binding.ts';

const repoRoot = path.resolve(nativeBuildDir, '..', '..', '..');

function loadedLibraries(): string[] {
  const maps = fs.readFileSync('/proc/self/maps', 'utf8').split('\n');
  return [...new Set(maps.map((l) => l.split(/\s+/).slice(5).join(' ')).filter((p) => /lib(ggml|llama)[^/]*\.so/.test(p)))];
}

test('the addon shares node-llama-cpp\'s ggml and llama libraries: one copy of each in the process', { skip: process.platform !== 'linux' && 'reads /proc/self/maps' }, async () => {
  const native = await loadNative();
  const dir = tempDir();
  // Make node-llama-cpp load a model (and its backend) while the addon is loaded too.
  await withModel(generatedModel(native, dir, { arch: 'llama', type: 'q8_0' }), async () => {
    const libs = loadedLibraries();
    const byName = new Map<string, string[]>();
    for (const lib of libs) {
      const name = path.basename(lib);
      byName.set(name, [...(byName.get(name) ?? []), lib]);
    }
    for (const [name, paths] of byName) assert.equal(paths.length, 1, `${name} is loaded from ${paths.join(' and ')}`);
    const info = native.buildInfo();
    for (const lib of [info.ggmlBaseLibrary, info.ggmlLibrary, info.llamaLibrary]) {
      assert.ok(libs.includes(fs.realpathSync(lib)), `${lib} is not among the libraries node-llama-cpp loaded: ${libs.join(', ')}`);
    }
    const llama = await getSharedLlama();
    assert.equal(info.addonFile.endsWith(`graft_native-${llama.gpu === false ? 'cpu' : llama.gpu}.node`), true);
  });
});

test('the addon was built from the llama.cpp commit node-llama-cpp 3.21.1 ships', async () => {
  const native = await loadNative();
  const pinned = fs.readFileSync(path.join(repoRoot, 'native', 'LLAMA_CPP_COMMIT'), 'utf8').trim();
  assert.equal(native.buildInfo().llamaCppCommit, pinned);
  const bundle = path.join(repoRoot, 'node_modules', 'node-llama-cpp', 'llama', 'gitRelease.bundle');
  const heads = execFileSync('git', ['bundle', 'list-heads', bundle], { encoding: 'utf8' });
  assert.ok(heads.split('\n').some((line) => line.startsWith(pinned)), `bundle heads: ${heads}`);
  const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'node_modules', 'node-llama-cpp', 'package.json'), 'utf8'));
  assert.equal(pkg.version, '3.21.1');
});
