// The app's backend: the contract (electron/api/contract.ts) over one data folder, for any
// transport (Electron IPC or the web mode's WebSocket). Plain Node, no `electron` import.
import fs from 'node:fs';
import path from 'node:path';

import type {
  Api, BatchEditInput, BatchRunRow, DemoExamples, DocumentProblem, EditDetail, EditOptions, EditRequestInput, EditRow, ExportRow, Job, LoadEstimate, LoadedModel, LogLine, Method,
  ModelRow, ProbeRunRow, Settings,
} from '../api/contract.ts';
import { appRoot } from '../core/appPaths.ts';
import { configureSharedLlama } from '../core/models/llama.ts';
import { loadNative, type GraftNative } from '../core/native/binding.ts';
import { openDatabase } from '../core/store/database.ts';
import { startCompare } from './compare.ts';
import type { BackendContext } from './context.ts';
import { demoExamples, offerDemoModel } from './demo.ts';
import { checkRequestDocument, editRequestSchema, startBatchEdit, startEdit, startTrace } from './edits.ts';
import { EventHub, type EventListener } from './events.ts';
import { listExports, startExport } from './exports.ts';
import { addNote, getEdit, listBatchRuns, listEdits, listProbeRuns, moveEdit, setEnabled, setTags } from './history.ts';
import { JobRegistry } from './jobs.ts';
import { LogBuffer, levelOfLlama } from './logs.ts';
import { disposeLoaded, estimateLoad, importModel, listModels, loadedModel, loadModel } from './models.ts';
import { startHardCases, startProbes } from './probes.ts';
import { SettingsStore } from './settings.ts';

export interface BackendOptions {
  dataDir: string;
  /** defaults for a data folder without settings.json (its values win once it exists) */
  threads: number;
  gpu: 'auto' | 'off';
  mode: 'electron' | 'web';
  /**
   * the folder of the demo model to offer this data folder (the app passes
   * shippedDemoModelDir()); null offers none, as library tests want
   */
  demoModelDir: string | null;
}

const appVersion = (() => {
  try {
    return (JSON.parse(fs.readFileSync(path.join(appRoot, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();

// Every method of the contract, checked complete by the compiler: what a transport may call.
const contractMethods: Record<Method, true> = {
  version: true, listModels: true, importModel: true, chooseModelFile: true, chooseRequestFile: true, estimateLoad: true, loadModel: true, unloadModel: true, loadedModel: true, demoExamples: true,
  checkRequestDocument: true, editRequestSchema: true, startEdit: true, startBatchEdit: true, startTrace: true,
  listEdits: true, getEdit: true, setEnabled: true, moveEdit: true, addNote: true, setTags: true,
  listProbeRuns: true, listBatchRuns: true, startProbes: true, startHardCases: true, startCompare: true, listExports: true, startExport: true,
  listJobs: true, cancelJob: true, getSettings: true, setSettings: true, recentLogs: true,
};

function noDialog(what: string): Error {
  return Object.assign(new Error(`a file dialog needs the desktop app; in the web mode type the path of ${what}`), { code: 'not-available' });
}

export class Backend implements Api {
  private readonly ctx: BackendContext;
  private closed = false;
  /** the demo model's import and load job: lists wait for it so the first page already shows them */
  private readonly started: Promise<void>;

  constructor(private readonly options: BackendOptions) {
    fs.mkdirSync(options.dataDir, { recursive: true });
    const events = new EventHub();
    const logs = new LogBuffer(events);
    const settings = new SettingsStore(path.resolve(options.dataDir), { threads: options.threads, gpu: options.gpu });
    const current = settings.get();
    if (!configureSharedLlama({ gpu: current.gpu === 'off' ? false : 'auto', threads: current.threads, logger: (level, text) => logs.push(levelOfLlama(level), 'llama.cpp', text) })) {
      logs.push('warn', 'app', 'node-llama-cpp was started before the backend; its GPU mode and threads stay as they were');
    }
    let native: Promise<GraftNative> | undefined;
    this.ctx = {
      dataDir: settings.dataDir, db: openDatabase(path.join(settings.dataDir, 'graft.sqlite')),
      native: () => (native ??= loadNative()),
      events, logs, settings, loaded: null,
      jobs: new JobRegistry(events, (job) => logs.push('error', 'app', `${job.title}: ${job.error}`)),
    };
    logs.push('info', 'app', `Graft ${appVersion} (${options.mode} mode), data folder ${settings.dataDir}`);
    this.started = offerDemoModel(this.ctx, options.demoModelDir);
  }

  /** Pushes for a transport to forward; returns the unsubscribe function. */
  subscribe(listener: EventListener): () => void {
    return this.ctx.events.subscribe(listener);
  }

  /** Only the contract's methods, bound: what a transport exposes (never `close` or `subscribe`). */
  rpcSurface(): Api {
    return Object.fromEntries(Object.keys(contractMethods).map((m) => [m, (this as unknown as Record<string, (...a: unknown[]) => unknown>)[m]!.bind(this)])) as unknown as Api;
  }

  /** Cancels running jobs, waits for them, unloads the model and closes the history. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.started;
    await this.ctx.jobs.idle();
    await disposeLoaded(this.ctx);
    this.ctx.db.close();
  }

  async version(): Promise<{ app: string; mode: 'electron' | 'web' }> {
    return { app: appVersion, mode: this.options.mode };
  }

  async listModels(): Promise<ModelRow[]> {
    await this.started;
    return listModels(this.ctx);
  }
  async importModel(file: string): Promise<ModelRow> { return importModel(this.ctx, file); }
  /** Electron main answers this itself with a native dialog; a browser page has none to offer. */
  async chooseModelFile(): Promise<string | null> {
    throw noDialog('the .gguf file');
  }
  async chooseRequestFile(): Promise<string | null> {
    throw noDialog('the request file');
  }
  async estimateLoad(modelId: number, gpuLayers: number | 'auto' | 'max'): Promise<LoadEstimate> { return estimateLoad(this.ctx, modelId, gpuLayers); }
  async loadModel(modelId: number, gpuLayers: number | 'auto' | 'max'): Promise<{ jobId: string }> { return loadModel(this.ctx, modelId, gpuLayers); }
  async unloadModel(): Promise<void> {
    await this.ctx.jobs.exclusive(() => disposeLoaded(this.ctx));
    this.ctx.events.emit('historyChanged');
  }
  async loadedModel(): Promise<LoadedModel | null> {
    await this.started;
    return loadedModel(this.ctx);
  }
  async demoExamples(): Promise<DemoExamples> { return demoExamples(this.ctx); }

  async checkRequestDocument(text: string, format: 'json' | 'yaml'): Promise<{ requests: EditRequestInput[]; problems: DocumentProblem[] }> { return checkRequestDocument(text, format); }
  async editRequestSchema(): Promise<unknown> { return editRequestSchema(); }
  async startEdit(request: EditRequestInput, options: EditOptions): Promise<{ jobId: string }> { return startEdit(this.ctx, request, options ?? {}); }
  async startBatchEdit(input: BatchEditInput): Promise<{ jobId: string }> { return startBatchEdit(this.ctx, input); }
  async startTrace(prompt: string, subject: string, samples?: number): Promise<{ jobId: string }> { return startTrace(this.ctx, prompt, subject, samples); }

  async listEdits(): Promise<EditRow[]> { return listEdits(this.ctx); }
  async getEdit(id: number): Promise<EditDetail> { return getEdit(this.ctx, id); }
  async setEnabled(id: number, enabled: boolean): Promise<{ warning: string | null }> { return setEnabled(this.ctx, id, enabled); }
  async moveEdit(id: number, position: number): Promise<{ warning: string | null }> { return moveEdit(this.ctx, id, position); }
  async addNote(editId: number, body: string): Promise<void> { addNote(this.ctx, editId, body); }
  async setTags(editId: number, tags: string[]): Promise<void> { setTags(this.ctx, editId, tags); }

  async listProbeRuns(): Promise<ProbeRunRow[]> { return listProbeRuns(this.ctx); }
  async listBatchRuns(): Promise<BatchRunRow[]> { return listBatchRuns(this.ctx); }
  async startProbes(options: { corpus?: string; kl?: boolean }): Promise<{ jobId: string }> { return startProbes(this.ctx, options ?? {}); }
  async startHardCases(editId: number): Promise<{ jobId: string }> { return startHardCases(this.ctx, editId); }

  async startCompare(prompt: string, options: { seed: number; maxTokens: number; topK: number }): Promise<{ jobId: string }> { return startCompare(this.ctx, prompt, options); }

  async listExports(): Promise<ExportRow[]> { return listExports(this.ctx); }
  async startExport(format: ExportRow['kind'], out: string, options: { requantize?: string }): Promise<{ jobId: string }> { return startExport(this.ctx, format, out, options ?? {}); }

  async listJobs(): Promise<Job[]> {
    await this.started;
    return this.ctx.jobs.list();
  }
  async cancelJob(id: string): Promise<void> { this.ctx.jobs.cancel(id); }

  async getSettings(): Promise<Settings> { return this.ctx.settings.get(); }
  async setSettings(change: Partial<Omit<Settings, 'dataFolder'>>): Promise<Settings> {
    const before = this.ctx.settings.get();
    const after = this.ctx.settings.set(change ?? {});
    if (after.gpu !== before.gpu || after.threads !== before.threads) {
      this.ctx.logs.push('info', 'app', 'GPU mode and threads apply to models loaded from now on; llama.cpp keeps its GPU backend until Graft restarts');
    }
    return after;
  }
  async recentLogs(): Promise<LogLine[]> { return this.ctx.logs.recent(); }
}

export function createBackend(options: BackendOptions): Backend {
  return new Backend(options);
}
