// What every part of the backend shares: the data folder and its history, the engine, the
// loaded model (one at a time, like the CLI's one model per command), jobs, logs and settings.
import type Database from 'better-sqlite3';
import type { LlamaModel } from 'node-llama-cpp';

import type { ModelInfo } from '../core/models/modelInfo.ts';
import type { GraftNative } from '../core/native/binding.ts';
import type { NativeGraphModel } from '../core/native/graphTypes.ts';
import type { ModelRecord, WorkspaceRecord } from '../core/store/repository.ts';
import type { EventHub } from './events.ts';
import type { JobRegistry } from './jobs.ts';
import type { LogBuffer } from './logs.ts';
import type { SettingsStore } from './settings.ts';

export interface LoadedState {
  record: ModelRecord;
  info: ModelInfo;
  model: LlamaModel;
  /** Graft's own graph, for edits and traces; null when the architecture cannot be edited */
  graph: NativeGraphModel | null;
  workspace: WorkspaceRecord;
  backend: string;
  totalLayers: number;
}

export interface BackendContext {
  dataDir: string;
  db: Database.Database;
  native: () => Promise<GraftNative>;
  events: EventHub;
  jobs: JobRegistry;
  logs: LogBuffer;
  settings: SettingsStore;
  loaded: LoadedState | null;
}

/** The loaded model, or a message that says what to do first. */
export function requireLoaded(ctx: BackendContext, forWhat: string): LoadedState {
  if (!ctx.loaded) throw Object.assign(new Error(`load a model first (Models screen) to ${forWhat}`), { code: 'no-model' });
  return ctx.loaded;
}

/** A queued job's model may have been unloaded or replaced before its turn came. */
export function stillLoaded(ctx: BackendContext, loaded: LoadedState): void {
  if (ctx.loaded !== loaded) throw new Error(`${loaded.info.fileName} was unloaded before this job could start; load it again`);
}
