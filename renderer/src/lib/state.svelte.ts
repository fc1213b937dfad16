// The renderer's state as Svelte 5 runes: what the backend has (models, the loaded model, edits,
// probe runs, batch runs, exports, settings, jobs, logs) mirrored from its lists and kept fresh by its events.
// Screens read `app` and call `app.api`; only this module subscribes to the transport.
import type {
  Api, BatchRunRow, CompareToken, EditRow, ExportRow, Job, JobKind, LoadedModel, LogLine, ModelRow, ProbeRunRow, Settings,
} from '../../../electron/api/contract.ts';
import { connect, type ConnectionStatus } from './transport.ts';
import { justFinished, latestJob, mergeJob } from './jobs.ts';
import { errorText } from './format.ts';

const MAX_LOGS = 2000;

export interface CompareStream {
  base: CompareToken[];
  edited: CompareToken[];
}

class AppState {
  connection = $state<{ status: ConnectionStatus; retryInMs: number | null }>({ status: 'connecting', retryInMs: null });
  mode = $state<'electron' | 'web' | null>(null);
  models = $state<ModelRow[]>([]);
  loaded = $state<LoadedModel | null>(null);
  jobs = $state<Job[]>([]);
  edits = $state<EditRow[]>([]);
  probeRuns = $state<ProbeRunRow[]>([]);
  batchRuns = $state<BatchRunRow[]>([]);
  exports = $state<ExportRow[]>([]);
  settings = $state<Settings | null>(null);
  logs = $state<LogLine[]>([]);
  compare = $state<Record<string, CompareStream>>({});
  /** the last background reload that failed, shown until the next one succeeds */
  problem = $state<string | null>(null);
  /** true once the first full load after connecting has arrived, so screens can tell "empty" from "not yet known" */
  ready = $state(false);

  readonly api: Api;
  private waiters = new Map<string, ((job: Job) => void)[]>();

  constructor() {
    const client = connect({
      status: (status, retryInMs) => {
        this.connection = { status, retryInMs };
      },
      opened: () => void this.reloadAll(),
    });
    this.api = client.api;
    client.on('jobUpdate', (job) => this.applyJob(job));
    client.on('compareToken', (jobId, token) => {
      const stream = (this.compare[jobId] ??= { base: [], edited: [] });
      const side = stream[token.side];
      // Tokens may repeat after a reconnect; the index keeps each side in order without twins.
      side[token.index] = token;
    });
    client.on('log', (line) => {
      this.logs.push(line);
      if (this.logs.length > MAX_LOGS) this.logs.splice(0, this.logs.length - MAX_LOGS);
    });
    client.on('historyChanged', () => void this.reloadHistory());
  }

  latestJob(kind: JobKind): Job | undefined {
    return latestJob(this.jobs, kind);
  }

  /** A collapse-watch signal's [degraded, collapsed] thresholds in the current settings. */
  thresholdsOf(signal: string): [number, number] | null {
    const t = this.settings?.thresholds[signal];
    return t ? [t.degraded, t.collapsed] : null;
  }

  job(id: string | null | undefined): Job | undefined {
    return id ? this.jobs.find((j) => j.id === id) : undefined;
  }

  /** Resolves with the job once it has ended (done, failed or cancelled). */
  finished(id: string): Promise<Job> {
    const known = this.job(id);
    if (known && known.state !== 'running') return Promise.resolve(known);
    return new Promise((resolve) => this.waiters.set(id, [...(this.waiters.get(id) ?? []), resolve]));
  }

  /** Everything, after every (re)connect: a reloaded or reconnected page shows jobs still running. */
  async reloadAll(): Promise<void> {
    await this.guard(async () => {
      const [version, models, loaded, jobs, settings, logs] = await Promise.all([
        this.api.version(), this.api.listModels(), this.api.loadedModel(), this.api.listJobs(),
        this.api.getSettings(), this.api.recentLogs(),
      ]);
      this.mode = version.mode;
      this.models = models;
      this.loaded = loaded;
      this.jobs = jobs.reduce<Job[]>((list, j) => mergeJob(list, j), []);
      // Jobs that ended while the connection was down end their waiters now.
      for (const j of this.jobs) if (j.state !== 'running') this.settle(j);
      this.settings = settings;
      this.logs = logs.slice(-MAX_LOGS);
      await Promise.all([this.reloadHistory(), this.reloadExports()]);
      this.ready = true;
    });
  }

  async reloadModels(): Promise<void> {
    await this.guard(async () => {
      [this.models, this.loaded] = await Promise.all([this.api.listModels(), this.api.loadedModel()]);
    });
  }

  /** Edits, probe runs and batch runs belong to the loaded model's workspace; without one there are none. */
  async reloadHistory(): Promise<void> {
    await this.guard(async () => {
      [this.edits, this.probeRuns, this.batchRuns] = await Promise.all([this.api.listEdits(), this.api.listProbeRuns(), this.api.listBatchRuns()]);
    });
  }

  async reloadExports(): Promise<void> {
    await this.guard(async () => {
      this.exports = await this.api.listExports();
    });
  }

  private applyJob(job: Job): void {
    const previous = this.jobs.find((j) => j.id === job.id);
    this.jobs = mergeJob(this.jobs, job);
    if (!justFinished(previous, job)) return;
    this.settle(job);
    if (job.kind === 'load') void this.reloadModels().then(() => this.reloadHistory());
    if (job.kind === 'edit' || job.kind === 'probe') void this.reloadHistory();
    if (job.kind === 'export') void this.reloadExports();
  }

  private settle(job: Job): void {
    for (const resolve of this.waiters.get(job.id) ?? []) resolve(job);
    this.waiters.delete(job.id);
  }

  private async guard(work: () => Promise<void>): Promise<void> {
    try {
      await work();
      this.problem = null;
    } catch (e) {
      // A lost connection is already shown by the banner, and the reconnect reloads everything.
      if ((e as { code?: string }).code !== 'disconnected') this.problem = errorText(e);
    }
  }
}

export const app = new AppState();

export type Screen = 'models' | 'edit' | 'history' | 'probes' | 'compare' | 'export' | 'settings';
export const screens: { id: Screen; label: string }[] = [
  { id: 'models', label: 'Models' },
  { id: 'edit', label: 'Edit' },
  { id: 'history', label: 'History' },
  { id: 'probes', label: 'Probes' },
  { id: 'compare', label: 'Compare' },
  { id: 'export', label: 'Export' },
  { id: 'settings', label: 'Settings' },
];

function screenFromHash(): Screen {
  const id = location.hash.replace(/^#\/?/, '');
  return screens.some((s) => s.id === id) ? (id as Screen) : 'models';
}

/** Which screen is shown, and the log drawer; the screen lives in the address's #fragment so a reload keeps it. */
class Ui {
  screen = $state<Screen>(screenFromHash());
  logsOpen = $state(false);
  /** an edit picked elsewhere (e.g. Probes → hard cases) to open in History */
  historyEdit = $state<number | null>(null);

  constructor() {
    window.addEventListener('hashchange', () => {
      this.screen = screenFromHash();
    });
  }

  go(screen: Screen): void {
    this.screen = screen;
    history.replaceState(null, '', `${location.pathname}${location.search}#/${screen}`);
  }
}

export const ui = new Ui();
