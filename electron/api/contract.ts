// The one typed contract between the renderer and a backend (Electron main over IPC, or the web
// server over WebSocket). Types only and no imports, so every side can depend on it.
//
// Wire format (the same on both transports, JSON strings):
//   request   { "id": 7, "method": "listModels", "params": [ … ] }
//   reply     { "id": 7, "result": … }  or  { "id": 7, "error": { "message": "…", "code"?: "…" } }
//   push      { "event": "jobProgress", "data": { … } }
// Long work (loading a model, an edit, probes, an export, a causal trace) starts a job and
// returns its id at once; progress and the end arrive as events, and `listJobs` gives every
// job with its last progress and result, so a reloaded renderer picks them up again.

export type Verdict = 'ok' | 'degraded' | 'collapsed';

export interface ModelRow {
  id: number;
  path: string;
  fileName: string;
  sha256: string;
  architecture: string | null;
  parameterCount: number;
  fileType: string | null;
  sizeBytes: number;
  contextLength: number | null;
  layers: number | null;
  nEmbd: number | null;
  nFf: number | null;
  vocabSize: number | null;
  editable: boolean;
  notEditableReason: string | null;
  /** false when the file is gone or changed since it was imported */
  available: boolean;
}

export interface LoadEstimate {
  gpuLayers: number;
  totalLayers: number;
  cpuRamBytes: number;
  gpuVramBytes: number;
  /** what the machine has now */
  freeRamBytes: number;
  freeVramBytes: number;
  fits: boolean;
}

export interface LoadedModel {
  modelId: number;
  path: string;
  fileName: string;
  /** cpu, cuda, vulkan, metal */
  backend: string;
  gpuLayers: number;
  totalLayers: number;
  memoryBytes: number;
  workspace: string;
}

export interface EditRequestInput {
  prompt: string;
  subject: string;
  targetNew: string;
  targetTrue?: string;
  paraphrases?: string[];
  neighbours?: string[];
}

export interface EditOptions {
  layer?: number;
  vSteps?: number;
  vLr?: number;
  klFactor?: number;
  mom2Adjustment?: boolean;
  /** run the post-edit probes (default true) */
  probes?: boolean;
  autoDisable?: boolean;
  seed?: number;
}

/** A problem in a request document, for an editor marker (1-based lines and columns). */
export interface DocumentProblem {
  message: string;
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
}

export interface EditRow {
  id: number;
  position: number;
  createdAt: string;
  method: string;
  layers: number[];
  status: 'running' | 'done' | 'failed' | 'cancelled';
  enabled: boolean;
  request: EditRequestInput;
  efficacy: number | null;
  paraphrase: number | null;
  neighbourhood: number | null;
  deltaPerplexity: number | null;
  klMean: number | null;
  verdict: Verdict | null;
  error: string | null;
  tags: string[];
}

export interface EditDetail extends EditRow {
  hparams: Record<string, unknown>;
  templates: string[];
  preflight: Record<string, unknown> | null;
  metrics: Record<string, unknown> | null;
  timings: Record<string, number> | null;
  computedOn: number[];
  notes: { id: number; body: string; createdAt: string }[];
  probeRuns: ProbeRunRow[];
}

export interface ProbeRunRow {
  id: number;
  editId: number | null;
  editSet: number[];
  createdAt: string;
  verdict: Verdict | null;
  sentencePpl: number;
  corpusPpl: number | null;
  klMean: number | null;
  klP99: number | null;
  top1Agreement: number | null;
  /** signal → [degraded, collapsed] thresholds used */
  thresholds: Record<string, [number, number]> | null;
  reasons: { signal: string; value: number; level: Verdict }[];
}

export interface HardCaseRow {
  id: string;
  title: string;
  why: string;
  edits: number;
  sentencePplRatio: number | null;
  klMean: number | null;
  top1Agreement: number | null;
  verdict: Verdict | null;
  error: string | null;
}

export interface TraceGrid {
  kind: string;
  /** layers × tokens */
  probabilities: number[][];
}

export interface TraceResult {
  tokens: string[];
  answer: string;
  cleanProbability: number;
  corruptedProbability: number;
  grids: TraceGrid[];
  suggestedLayer: number;
}

export interface ExportRow {
  id: number;
  kind: 'lora' | 'gguf' | 'log' | 'card';
  path: string;
  sha256: string;
  createdAt: string;
  editIds: number[];
  verified: boolean | null;
  maxDifference: number | null;
  warning: string | null;
}

export type JobKind = 'load' | 'edit' | 'trace' | 'probe' | 'hard-cases' | 'export' | 'compare';
export type JobState = 'running' | 'done' | 'failed' | 'cancelled';

export interface JobProgress {
  /** 0…1 when the job knows how far it is */
  fraction: number | null;
  phase: string;
  /** e.g. the v* step: loss and target probability, for the live curves */
  step?: { index: number; loss: number; targetProbability: number };
}

export interface Job {
  id: string;
  kind: JobKind;
  title: string;
  state: JobState;
  startedAt: string;
  progress: JobProgress;
  /** the v* curve so far (edit jobs) */
  steps: { index: number; loss: number; targetProbability: number }[];
  result: unknown;
  error: string | null;
}

export interface CompareToken {
  side: 'base' | 'edited';
  index: number;
  text: string;
  probability: number;
  top: { text: string; probability: number }[];
}

export interface Settings {
  dataFolder: string;
  threads: number;
  gpu: 'auto' | 'off';
  thresholds: Record<string, { degraded: number; collapsed: number }>;
}

export interface LogLine {
  time: string;
  level: 'debug' | 'info' | 'warn' | 'error';
  source: 'llama.cpp' | 'engine' | 'app';
  text: string;
}

/** Calls the renderer makes; every call is async because it crosses a process boundary. */
export interface Api {
  version(): Promise<{ app: string; mode: 'electron' | 'web' }>;

  listModels(): Promise<ModelRow[]>;
  importModel(path: string): Promise<ModelRow>;
  /** the desktop app's file dialog (null when dismissed); the web mode refuses it: type the path there */
  chooseModelFile(): Promise<string | null>;
  estimateLoad(modelId: number, gpuLayers: number | 'auto' | 'max'): Promise<LoadEstimate>;
  /** starts a 'load' job; the result is a LoadedModel */
  loadModel(modelId: number, gpuLayers: number | 'auto' | 'max'): Promise<{ jobId: string }>;
  unloadModel(): Promise<void>;
  loadedModel(): Promise<LoadedModel | null>;

  checkRequestDocument(text: string, format: 'json' | 'yaml'): Promise<{ requests: EditRequestInput[]; problems: DocumentProblem[] }>;
  editRequestSchema(): Promise<unknown>;
  /** starts an 'edit' job on the loaded model's workspace; the result is an EditDetail */
  startEdit(request: EditRequestInput, options: EditOptions): Promise<{ jobId: string }>;
  /** starts a 'trace' job; the result is a TraceResult */
  startTrace(prompt: string, subject: string, samples?: number): Promise<{ jobId: string }>;

  listEdits(): Promise<EditRow[]>;
  getEdit(id: number): Promise<EditDetail>;
  setEnabled(id: number, enabled: boolean): Promise<{ warning: string | null }>;
  moveEdit(id: number, position: number): Promise<{ warning: string | null }>;
  addNote(editId: number, body: string): Promise<void>;
  setTags(editId: number, tags: string[]): Promise<void>;

  listProbeRuns(): Promise<ProbeRunRow[]>;
  /** starts a 'probe' job on the workspace's enabled edits; the result is a ProbeRunRow */
  startProbes(options: { corpus?: string; kl?: boolean }): Promise<{ jobId: string }>;
  /** starts a 'hard-cases' job from an edit; the result is HardCaseRow[] */
  startHardCases(editId: number): Promise<{ jobId: string }>;

  /** starts a 'compare' job: base and edited generate side by side, tokens arrive as compareToken events */
  startCompare(prompt: string, options: { seed: number; maxTokens: number; topK: number }): Promise<{ jobId: string }>;

  listExports(): Promise<ExportRow[]>;
  /** starts an 'export' job; the result is an ExportRow */
  startExport(format: ExportRow['kind'], out: string, options: { requantize?: string }): Promise<{ jobId: string }>;

  listJobs(): Promise<Job[]>;
  cancelJob(id: string): Promise<void>;

  getSettings(): Promise<Settings>;
  setSettings(settings: Partial<Omit<Settings, 'dataFolder'>>): Promise<Settings>;
  recentLogs(): Promise<LogLine[]>;
}

/** Pushes from the backend to the renderer; fire-and-forget, hence `void`. */
export interface Events {
  jobUpdate(job: Job): void;
  compareToken(jobId: string, token: CompareToken): void;
  log(line: LogLine): void;
  /** the history changed (an edit recorded, toggled, auto-disabled…): lists should reload */
  historyChanged(): void;
}

export type Method = keyof Api;
export type EventName = keyof Events;

export interface RequestMessage { id: number; method: Method; params: unknown[] }
export interface ReplyMessage { id: number; result?: unknown; error?: { message: string; code?: string } }
export interface PushMessage { event: EventName; data: unknown[] }
