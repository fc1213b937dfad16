// The app's settings in <data folder>/settings.json, written atomically (a temporary file,
// fsynced, then renamed) so a crash never leaves half a file. Thresholds are the collapse
// watch's overrides, validated the way the CLI validates --thresholds.
import fs from 'node:fs';
import path from 'node:path';

import type { Settings } from '../api/contract.ts';
import { thresholdsWith, type Thresholds } from '../core/probes/verdict.ts';

type Stored = Omit<Settings, 'dataFolder'>;

export class SettingsStore {
  private current: Stored;
  readonly file: string;

  constructor(readonly dataDir: string, defaults: { threads: number; gpu: Settings['gpu'] }) {
    this.file = path.join(dataDir, 'settings.json');
    this.current = { threads: defaults.threads, gpu: defaults.gpu, thresholds: {} };
    if (fs.existsSync(this.file)) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(fs.readFileSync(this.file, 'utf8'));
      } catch (error) {
        throw new Error(`${this.file} is not valid JSON (${(error as Error).message}); fix or delete it`);
      }
      this.current = this.validated({ ...this.current, ...(parsed as Partial<Stored>) });
    }
  }

  /** The effective settings: every threshold the watch uses, defaults included, so the screen can show them. */
  get(): Settings {
    return { dataFolder: this.dataDir, threads: this.current.threads, gpu: this.current.gpu, thresholds: { ...this.thresholds() } };
  }

  /** The collapse watch's thresholds: the defaults with the researcher's overrides. */
  thresholds(): Thresholds {
    return thresholdsWith(this.current.thresholds);
  }

  set(change: Partial<Stored>): Settings {
    const next = this.validated({ ...this.current, ...change });
    const tmp = `${this.file}.tmp-${process.pid}`;
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeSync(fd, `${JSON.stringify(next, null, 2)}\n`);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.file);
    this.current = next;
    return this.get();
  }

  private validated(s: Stored): Stored {
    if (!Number.isInteger(s.threads) || s.threads < 1) throw new Error(`threads must be a whole number of at least 1, got ${JSON.stringify(s.threads)}`);
    if (s.gpu !== 'auto' && s.gpu !== 'off') throw new Error(`gpu must be 'auto' or 'off', got ${JSON.stringify(s.gpu)}`);
    if (typeof s.thresholds !== 'object' || s.thresholds === null || Array.isArray(s.thresholds)) throw new Error('thresholds must be an object of {degraded, collapsed} per signal');
    thresholdsWith(s.thresholds);  // throws naming the bad threshold
    return { threads: s.threads, gpu: s.gpu, thresholds: s.thresholds };
  }
}
