#!/usr/bin/env node
// `npm run bench -- NAME [--json]`: runs bench/NAME.ts (through tsx). Each benchmark
// measures against a baseline in the same run and prints a ratio, since these machines are
// too noisy for absolute timings.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const [name, ...rest] = process.argv.slice(2);
const available = fs.readdirSync(here).filter((f) => f.endsWith('.bench.ts')).map((f) => f.replace(/\.bench\.ts$/, ''));
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- NAME [--json]\navailable: ${available.join(', ')}`);
  process.exit(2);
}
const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(here, `${name}.bench.ts`), ...rest], {
  stdio: 'inherit', env: { GRAFT_THREADS: '1', ...process.env },
});
process.exit(r.status ?? 1);
