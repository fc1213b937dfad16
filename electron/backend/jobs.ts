// Long work as jobs: each has an id, a state, its last progress, the v* curve so far, and its
// result or error, and is pushed as a jobUpdate on every change. Jobs run one at a time (they
// share one engine, one loaded model and one history), in the order they were started; a job
// waiting its turn says so. Finished jobs stay listed, so a reloaded renderer finds them.
import { randomUUID } from 'node:crypto';

import type { Job, JobKind, JobProgress } from '../api/contract.ts';
import type { EventHub } from './events.ts';

type Step = Job['steps'][number];

export interface JobControl {
  id: string;
  signal: AbortSignal;
  progress(p: { fraction?: number | null; phase?: string }): void;
  step(s: Step): void;
}

/** Thrown (or rejected with) by work that stopped because its job was cancelled. */
export class CancelledError extends Error {
  constructor(message = 'cancelled') {
    super(message);
    this.name = 'CancelledError';
  }
}

interface Entry {
  job: Job;
  controller: AbortController;
  timer: NodeJS.Timeout | null;
  lastEmit: number;
}

export class JobRegistry {
  private entries = new Map<string, Entry>();
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly events: EventHub,
    private readonly onFailure: (job: Job) => void = () => {},
    /** at most one progress push per this many ms; state changes are pushed at once */
    private readonly throttleMs = 100,
    /** finished jobs kept in memory (the oldest finished ones go first) */
    private readonly keep = 200,
  ) {}

  start<T>(kind: JobKind, title: string, work: (control: JobControl) => Promise<T>): string {
    const id = randomUUID();
    const entry: Entry = {
      job: { id, kind, title, state: 'running', startedAt: new Date().toISOString(), progress: { fraction: 0, phase: 'waiting for the engine' }, steps: [], result: null, error: null },
      controller: new AbortController(), timer: null, lastEmit: 0,
    };
    this.entries.set(id, entry);
    this.prune();
    this.flush(entry);
    const control: JobControl = {
      id,
      signal: entry.controller.signal,
      progress: (p) => {
        if (entry.job.state !== 'running') return;
        entry.job.progress = { ...entry.job.progress, ...p } as JobProgress;
        delete entry.job.progress.step;
        this.throttled(entry);
      },
      step: (s) => {
        if (entry.job.state !== 'running') return;
        entry.job.steps.push(s);
        entry.job.progress = { ...entry.job.progress, step: s };
        this.throttled(entry);
      },
    };
    const run = this.queue.then(async () => {
      if (entry.controller.signal.aborted) throw new CancelledError();
      control.progress({ phase: 'starting' });
      return work(control);
    });
    // the next job waits for this one whatever its outcome
    this.queue = run.then(() => undefined, () => undefined);
    run.then(
      (result) => this.finish(entry, 'done', result, null),
      (error: unknown) => {
        if (entry.controller.signal.aborted) this.finish(entry, 'cancelled', null, 'cancelled');
        else this.finish(entry, 'failed', null, error instanceof Error ? error.message : String(error));
      },
    );
    return id;
  }

  /** Runs `fn` between jobs (e.g. unloading the model), never during one. */
  exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.then(() => undefined, () => undefined);
    return run;
  }

  cancel(id: string): void {
    const entry = this.entries.get(id);
    if (!entry) throw new Error(`there is no job ${id}`);
    if (entry.job.state !== 'running') return;
    entry.controller.abort();
    entry.job.progress = { ...entry.job.progress, phase: 'cancelling' };
    this.flush(entry);
  }

  list(): Job[] {
    return [...this.entries.values()].map((e) => structuredClone(e.job));
  }

  get(id: string): Job | undefined {
    const e = this.entries.get(id);
    return e ? structuredClone(e.job) : undefined;
  }

  /** Waits for every started job to end (closing the backend). */
  async idle(): Promise<void> {
    for (const e of this.entries.values()) if (e.job.state === 'running') e.controller.abort();
    await this.queue;
  }

  private finish(entry: Entry, state: Job['state'], result: unknown, error: string | null): void {
    // an update still waiting for its throttle window goes out first: the last progress of a
    // quick job (its phase, its last v* step) is not swallowed by the final state
    if (entry.timer) this.flush(entry);
    entry.job.state = state;
    entry.job.result = result === undefined ? null : result;
    entry.job.error = error;
    if (state === 'done') entry.job.progress = { ...entry.job.progress, fraction: 1, phase: 'done' };
    else entry.job.progress = { ...entry.job.progress, phase: state };
    this.flush(entry);
    if (state === 'failed') this.onFailure(structuredClone(entry.job));
  }

  private throttled(entry: Entry): void {
    const wait = entry.lastEmit + this.throttleMs - Date.now();
    if (wait <= 0) {
      this.flush(entry);
      return;
    }
    // the last update inside a window is pushed at its end, so the final numbers always arrive
    entry.timer ??= setTimeout(() => this.flush(entry), wait);
  }

  private flush(entry: Entry): void {
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = null;
    entry.lastEmit = Date.now();
    this.events.emit('jobUpdate', structuredClone(entry.job));
  }

  private prune(): void {
    const finished = [...this.entries.values()].filter((e) => e.job.state !== 'running');
    for (const e of finished.slice(0, Math.max(0, finished.length - this.keep))) this.entries.delete(e.job.id);
  }
}
