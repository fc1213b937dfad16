#!/usr/bin/env node
// Runs every *.test.ts under electron/, renderer/, bench/ and scripts/ with node's test runner (through tsx),
// one file at a time: ggml is single-threaded here by design and the machines have 2 cores.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const filter = process.argv.slice(2);

function findTests(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : findTests(full);
    return entry.name.endsWith('.test.ts') ? [full] : [];
  });
}

const files = ['electron', 'renderer', 'bench', 'scripts'].flatMap((d) => findTests(path.join(root, d)))
  .filter((f) => filter.length === 0 || filter.some((p) => f.includes(p)))
  .sort();
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const result = spawnSync(process.execPath, [
  '--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec',
  ...files.map((f) => path.relative(root, f)),
], { cwd: root, stdio: 'inherit', env: { GRAFT_THREADS: '1', ...process.env } });
process.exit(result.status ?? 1);
