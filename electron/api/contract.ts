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
  /** the fact-world demo model shipped with Graft (its facts are known: see demoExamples) */
  demo: boolean;
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

/** The demo model's ready-made requests, and ROME's settings for it (the layer causal tracing found its facts at). */
export interface DemoExamples {
  settings: { layer: number; vSteps: number } | null;
  examples: EditRequestInput[];
}

export interface EditRequestInput {
  prompt: string;
  subject: string;
  targetNew: string;
  targetTrue?: string;
  paraphrases?: string[];
  neighbours?: string[];
}

export type EditMethod = 'rome' | 'memit' | 'emmet' | 'alphaedit';

/** Blank (absent) numbers mean the method's default for the loaded model. */
export interface EditOptions {
  /** default 'rome' */
  method?: EditMethod;
  /** ROME's one layer */
  layer?: number;
  /** MEMIT, EMMET and AlphaEdit: the edited layers, ascending */
  layers?: number[];
  vSteps?: number;
  vLr?: number;
  klFactor?: number;
  /** ROME only */
  mom2Adjustment?: boolean;
  /** λ: MEMIT and EMMET (AlphaEdit takes it too) */
  mom2UpdateWeight?: number;
  /** AlphaEdit */
  nullspaceThreshold?: number;
  /** AlphaEdit */
  l2?: number;
  /** tokens the model samples for the second moments when none are cached (default 8192) */
  statisticsTokens?: number;
  /** scale an update down so no edited matrix grows past this ‖W + ΔW‖/‖W‖ (above 1) */
  normCap?: number;
  /** run the post-edit probes (default true) */
  probes?: boolean;
  autoDisable?: boolean;
  seed?: number;
}

/** Several requests as one batch or a sequence of batches: a list, or a request file on the backend's machine. */
export interface BatchEditInput {
  method: EditMethod;
  /** exactly one of requests and requestsPath */
  requests?: EditRequestInput[];
  /** .json, .jsonl, .yaml or .yml (Graft requests or CounterFact records) */
  requestsPath?: string;
  /** requests per edit; default all of them (ROME: 1) */
  batchSize?: number;
  /** each batch computed on the model the earlier ones edited */
  sequential: boolean;
  /** after each batch, the efficacy of every request so far and the perplexity ratio */
  curve?: boolean;
  options: Omit<EditOptions, 'method'>;
}

/** One request's scores: probability comparison (null without a true target) and token accuracy. */
export interface RequestScores {
  pNew: number;
  pTrue: number | null;
  efficacy: number | null;
  paraphrase: number | null;
  neighbourhood: number | null;
  efficacyAccuracy: number | null;
  paraphraseAccuracy: number | null;
  neighbourhoodAccuracy: number | null;
}

export interface RequestResult {
  request: EditRequestInput;
  before: RequestScores;
  after: RequestScores;
}

/** Means over the requests; the published tables' columns. */
export interface ResultSummary extends Omit<RequestScores, 'pNew' | 'pTrue'> {
  requests: number;
}

/** After a batch of a run: the requests edited so far, measured on the stack as it then stood. */
export interface CurvePoint {
  edits: number;
  /** share of the requests so far whose prompt prefers the new target */
  efficacy: number;
  /** mean P(new) over them */
  pNew: number;
  /** sentence perplexity ÷ the base model's (null when the run measured no probes) */
  sentencePplRatio: number | null;
  /** largest ‖W + ΔW‖/‖W‖ over the edited layers */
  normGrowth: number | null;
}

export interface BatchEditResult {
  runId: number;
  /** an interrupted run of the same requests and settings was continued */
  resumed: boolean;
  method: EditMethod;
  batches: { index: number; editId: number; requestIndices: number[]; resumed: boolean; verdict: Verdict | null; autoDisabled: boolean; normGrowth: number | null }[];
  /** every request, measured right after its own batch, in order */
  results: RequestResult[];
  summary: ResultSummary;
  /** per batch (with `curve`), the points of an interrupted earlier attempt included */
  curve: CurvePoint[];
}

/** A batch or sequential run of the loaded model's workspace (the app's or `graft edit --requests`), with its stored curve. */
export interface BatchRunRow {
  id: number;
  method: EditMethod;
  /** the request file's name (a list run from the editor is kept as a file named by its content) */
  fileName: string;
  requestCount: number;
  batchSize: number;
  sequential: boolean;
  status: 'running' | 'done' | 'failed' | 'cancelled';
  error: string | null;
  createdAt: string;
  finishedAt: string | null;
  batches: number;
  batchesDone: number;
  /** one point per measured batch, in batch order; none when the run was made without `curve` */
  curve: (CurvePoint & { batchIndex: number })[];
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
  /** the first request of a batch edit */
  request: EditRequestInput;
  /** 1 for ROME; a batch edit's number of requests */
  requestCount: number;
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
  requests: EditRequestInput[];
  /** per request, before → after (empty while running or failed) */
  results: RequestResult[];
  summary: ResultSummary | null;
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
  /** the same for a request file (.json, .jsonl, .yaml, .yml) of a batch run */
  chooseRequestFile(): Promise<string | null>;
  estimateLoad(modelId: number, gpuLayers: number | 'auto' | 'max'): Promise<LoadEstimate>;
  /** starts a 'load' job; the result is a LoadedModel */
  loadModel(modelId: number, gpuLayers: number | 'auto' | 'max'): Promise<{ jobId: string }>;
  unloadModel(): Promise<void>;
  loadedModel(): Promise<LoadedModel | null>;
  /** true facts of the demo world to rewrite and where to edit, when the loaded model is the demo model; else none */
  demoExamples(): Promise<DemoExamples>;

  checkRequestDocument(text: string, format: 'json' | 'yaml'): Promise<{ requests: EditRequestInput[]; problems: DocumentProblem[] }>;
  editRequestSchema(): Promise<unknown>;
  /** starts an 'edit' job on the loaded model's workspace; the result is an EditDetail */
  startEdit(request: EditRequestInput, options: EditOptions): Promise<{ jobId: string }>;
  /** starts an 'edit' job running several requests as batches; the result is a BatchEditResult */
  startBatchEdit(input: BatchEditInput): Promise<{ jobId: string }>;
  /** starts a 'trace' job; the result is a TraceResult */
  startTrace(prompt: string, subject: string, samples?: number): Promise<{ jobId: string }>;

  listEdits(): Promise<EditRow[]>;
  getEdit(id: number): Promise<EditDetail>;
  setEnabled(id: number, enabled: boolean): Promise<{ warning: string | null }>;
  moveEdit(id: number, position: number): Promise<{ warning: string | null }>;
  addNote(editId: number, body: string): Promise<void>;
  setTags(editId: number, tags: string[]): Promise<void>;

  listProbeRuns(): Promise<ProbeRunRow[]>;
  /** the workspace's batch and sequential runs, oldest first, each with its curve */
  listBatchRuns(): Promise<BatchRunRow[]>;
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
