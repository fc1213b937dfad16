// Pure bookkeeping of the job list, kept apart from the reactive state so it can be unit-tested
// without Svelte.
import type { Job, JobKind } from '../../../electron/api/contract.ts';

/** The list with `job` replacing its older copy (or added), newest first. */
export function mergeJob(jobs: readonly Job[], job: Job): Job[] {
  const rest = jobs.filter((j) => j.id !== job.id);
  return [job, ...rest].sort((a, b) => b.startedAt.localeCompare(a.startedAt));
}

/** True when this update is the one that ends the job: the moment to reload what it changed. */
export function justFinished(previous: Job | undefined, job: Job): boolean {
  return job.state !== 'running' && (previous === undefined || previous.state === 'running');
}

export function latestJob(jobs: readonly Job[], kind: JobKind): Job | undefined {
  return jobs.find((j) => j.kind === kind);
}

export function isRunning(job: Job | undefined): job is Job {
  return job?.state === 'running';
}
