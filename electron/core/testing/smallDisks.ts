// Real full and read-only file systems for the tests of disk errors: small tmpfs mounts. They
// need mount rights (root in a container or VM, as on CI); elsewhere the test skips and says so.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { tempDir } from './fixtures.ts';

function canMount(): boolean {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return false;
  const probe = tempDir('graft-mount-probe-');
  const ok = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe]).status === 0;
  if (ok) spawnSync('umount', [probe]);
  fs.rmSync(probe, { recursive: true, force: true });
  return ok;
}

export const mountSkip: string | false = canMount() ? false : 'needs permission to mount a small tmpfs (root on Linux) to make a real full or read-only disk';

/** A folder on its own small file system, unmounted afterwards. */
export async function withSmallDisk<T>(options: { sizeKb: number; readOnly?: boolean }, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = tempDir('graft-disk-');
  const opts = [`size=${options.sizeKb}k`, ...(options.readOnly ? ['ro'] : [])].join(',');
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mount failed: ${r.stderr}`);
  try {
    return await fn(dir);
  } finally {
    spawnSync('umount', [dir]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Writes a file until the disk refuses: afterwards the file system is full. */
export function fillDisk(dir: string): void {
  const fd = fs.openSync(path.join(dir, 'filler'), 'w');
  const block = Buffer.alloc(4096, 1);
  try {
    for (;;) fs.writeSync(fd, block);
  } catch (error) {
    if ((error as { code?: string }).code !== 'ENOSPC') throw error;
  } finally {
    fs.closeSync(fd);
  }
}
