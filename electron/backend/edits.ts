// The Edit screen: request documents checked with positions, one edit (ROME, or one request by
// a batch method) as a job, several requests as batches or a sequence of them, each with phases,
// the v*/z optimisation curve, then metrics and the collapse verdict; and causal tracing.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import type {
  BatchEditInput, BatchEditResult, DocumentProblem, EditMethod, EditOptions, EditRequestInput, TraceResult, Verdict,
} from '../api/contract.ts';
import { editRequestSchema as schema } from '../api/editRequestSchema.ts';
import { batchMethods, type BatchHparams, type BatchProgress } from '../core/edits/batchEdit.ts';
import { batchPlan, runBatchFile } from '../core/edits/batchRun.ts';
import { causalTrace } from '../core/edits/causalTrace.ts';
import { editHparams, type HparamChoices } from '../core/edits/editHparams.ts';
import { recordedEdit, type EditSpec, type RecordedEditOptions } from '../core/edits/recordedEdit.ts';
import { checkRequestDocument as checkDocument } from '../core/edits/requestDocument.ts';
import { readRequestFile } from '../core/edits/requestFile.ts';
import { markSubject, parseEditRequest, type EditRequest } from '../core/edits/request.ts';
import type { RomeHparams } from '../core/edits/rome.ts';
import type { RomeProgress } from '../core/edits/romeEdit.ts';
import { probeConfig } from '../core/probes/probeConfig.ts';
import { requireLoaded, stillLoaded, type BackendContext, type LoadedState } from './context.ts';
import type { JobControl } from './jobs.ts';
import { editDetail, requestInput, requestResults, resultSummary } from './history.ts';

export function checkRequestDocument(text: string, format: 'json' | 'yaml'): { requests: EditRequestInput[]; problems: DocumentProblem[] } {
  if (format !== 'json' && format !== 'yaml') throw new Error(`the format must be 'json' or 'yaml', got ${JSON.stringify(format)}`);
  if (typeof text !== 'string') throw new Error('the document must be text');
  const { requests, problems } = checkDocument(text, format);
  return { requests: requests.map(requestInput), problems };
}

export function editRequestSchema(): unknown {
  return schema;
}

/** The form's request in the parser's terms, so the app and batch files are checked alike. */
function parsedRequest(r: EditRequestInput, where = 'request'): EditRequest {
  if (typeof r !== 'object' || r === null) throw new Error(`${where} must be an object`);
  return parseEditRequest({
    prompt: typeof r.prompt === 'string' && typeof r.subject === 'string' ? markSubject(r.prompt, r.subject) : r.prompt,
    subject: r.subject, target_new: r.targetNew,
    ...(r.targetTrue !== undefined && r.targetTrue !== '' ? { target_true: r.targetTrue } : {}),
    paraphrase_prompts: (r.paraphrases ?? []).filter((p) => p.trim() !== ''),
    neighborhood_prompts: (r.neighbours ?? []).filter((p) => p.trim() !== ''),
  }, where);
}

function methodOf(method: unknown): EditMethod {
  const m = method ?? 'rome';
  if (m !== 'rome' && !(batchMethods as readonly unknown[]).includes(m)) throw new Error(`the method must be rome, memit, emmet or alphaedit, got ${JSON.stringify(m)}`);
  return m as EditMethod;
}

// the form's labels, so a refused value is named as the user sees it
const optionLabel: Record<keyof HparamChoices, string> = {
  layer: 'layer', layers: 'layers', vLr: 'v* learning rate', vSteps: 'v* steps', klFactor: 'KL factor', vWeightDecay: 'v* weight decay',
  clampNormFactor: 'clamp norm factor', mom2Adjustment: 'the second-moment adjustment', mom2Ridge: 'second-moment ridge', seed: 'seed',
  mom2UpdateWeight: 'λ (mom2UpdateWeight)', emmetLambda: 'EMMET λ', nullspaceThreshold: 'null-space threshold', l2: 'L2',
};

function hparamsOf(loaded: LoadedState, method: EditMethod, o: EditOptions): RomeHparams | BatchHparams {
  const choices: HparamChoices = {
    layer: o.layer, layers: o.layers, vSteps: o.vSteps, vLr: o.vLr, klFactor: o.klFactor, mom2Adjustment: o.mom2Adjustment, seed: o.seed,
    mom2UpdateWeight: o.mom2UpdateWeight, nullspaceThreshold: o.nullspaceThreshold, l2: o.l2,
  };
  // the form keeps ROME's checkbox whatever the method: only ROME reads it
  if (method !== 'rome') delete choices.mom2Adjustment;
  return editHparams(method, loaded.record, choices, (k) => optionLabel[k]);
}

/** The options the recorded-edit flow takes as they are, checked before a job starts. */
function flowOptions(o: EditOptions): { normCap?: number; statisticsTokens?: number } {
  if (o.normCap !== undefined && !(typeof o.normCap === 'number' && o.normCap > 1)) throw new Error(`the norm cap bounds ‖W + ΔW‖/‖W‖ and must be above 1, got ${o.normCap}`);
  if (o.statisticsTokens !== undefined && !(Number.isInteger(o.statisticsTokens) && o.statisticsTokens >= 16)) {
    throw new Error(`statistics tokens must be a whole number of at least 16, got ${o.statisticsTokens}`);
  }
  return { ...(o.normCap !== undefined ? { normCap: o.normCap } : {}), ...(o.statisticsTokens !== undefined ? { statisticsTokens: o.statisticsTokens } : {}) };
}

// how far one edit is, by phase (the v*/z optimisation is most of it)
const phaseFraction: Record<string, number> = {
  'metrics-before': 0.02, templates: 0.05, statistics: 0.1, key: 0.2, value: 0.25, targets: 0.15, update: 0.77, layers: 0.77, keys: 0.78,
  adapter: 0.8, 'metrics-after': 0.83, recorded: 0.88,
};
const phaseTitle: Record<string, string> = {
  'metrics-before': 'measuring the requests before the edit', templates: 'sampling context templates', statistics: 'second moments of the MLP keys',
  key: 'computing the key k*', value: 'optimising the value v*', targets: 'optimising the targets z', update: 'rank-one update',
  layers: 'solving layer', keys: 'keys on the edited model', adapter: 'writing the adapter',
  'metrics-after': 'measuring the requests after the edit', recorded: 'recorded; running the collapse watch',
};

/**
 * Progress of an edit job made of `batches` recorded edits of `requests` requests each (at most):
 * phases and optimisation steps become one growing fraction, and the steps one curve.
 */
function editProgress(control: JobControl, vSteps: number, batchRequests: number, batches: number) {
  let fraction = 0, done = 0, index = 0;
  const advance = (within: number, phase: string) => {
    fraction = Math.max(fraction, (done + within) / batches);
    control.progress({ fraction, phase: batches > 1 ? `batch ${Math.min(done + 1, batches)}/${batches}: ${phase}` : phase });
  };
  return {
    onProgress: (p: RomeProgress | BatchProgress | { phase: string }) => {
      const step = (p as RomeProgress).step;
      if (!step) {
        const layer = (p as BatchProgress).layer;
        advance(phaseFraction[p.phase] ?? 0, `${phaseTitle[p.phase] ?? p.phase}${p.phase === 'layers' && layer !== undefined ? ` ${layer}` : ''}`);
        return;
      }
      const request = (p as BatchProgress).request;
      if (request === undefined) {
        advance(0.25 + (0.5 * (step.step + 1)) / vSteps, `${phaseTitle.value} (step ${step.step + 1}/${vSteps})`);
      } else {
        advance(0.15 + (0.6 * (request + (step.step + 1) / vSteps)) / batchRequests, `${phaseTitle.targets}: request ${request + 1}, step ${step.step + 1}/${vSteps}`);
      }
      // one curve over every optimisation of the job, so its x only grows
      control.step({ index: index++, loss: step.loss, targetProbability: (p as RomeProgress).targetProbability ?? Math.exp(-step.nll) });
    },
    onProbes: (p: { probe: string; done: number; total: number }) => advance(0.88 + 0.12 * (p.done / Math.max(1, p.total)) * 0.99, `collapse watch: ${p.probe} ${p.done}/${p.total}`),
    batchDone: () => { done++; },
  };
}

type Common = Pick<RecordedEditOptions, 'modelPath' | 'workspace' | 'probes' | 'signal' | 'statisticsDir' | 'onBegin' | 'onProgress' | 'normCap' | 'statisticsTokens'>;

/** What every edit job passes to the recorded-edit flow: the model, probes, cancel and progress. */
async function commonOptions(ctx: BackendContext, loaded: LoadedState, control: JobControl, options: EditOptions, progress: ReturnType<typeof editProgress>): Promise<Common> {
  stillLoaded(ctx, loaded);
  const settings = ctx.settings.get();
  return {
    modelPath: loaded.record.path, workspace: loaded.workspace, signal: control.signal, statisticsDir: path.join(ctx.dataDir, 'moments'),
    probes: options.probes === false ? null : {
      config: await probeConfig({}, loaded.info.contextLength ?? 512),
      autoDisable: options.autoDisable ?? true, thresholds: ctx.settings.thresholds(), threads: settings.threads, onProgress: progress.onProbes,
    },
    onBegin: () => ctx.events.emit('historyChanged'),
    onProgress: progress.onProgress,
    ...flowOptions(options),
  };
}

function editableLoaded(ctx: BackendContext): LoadedState & { graph: NonNullable<LoadedState['graph']> } {
  const loaded = requireLoaded(ctx, 'edit it');
  if (!loaded.graph) throw new Error(`${path.basename(loaded.record.path)} cannot be edited: ${loaded.info.notEditableReason}`);
  return loaded as LoadedState & { graph: NonNullable<LoadedState['graph']> };
}

export function startEdit(ctx: BackendContext, input: EditRequestInput, options: EditOptions = {}): { jobId: string } {
  const loaded = editableLoaded(ctx);
  const method = methodOf(options.method);
  const request = parsedRequest(input);
  const hparams = hparamsOf(loaded, method, options);
  flowOptions(options);
  const spec: EditSpec = method === 'rome' ? { method, requests: [request], hparams: hparams as RomeHparams } : { method, requests: [request], hparams: hparams as BatchHparams };
  const jobId = ctx.jobs.start('edit', `${request.subject}:${request.targetNew}`, async (control) => {
    const progress = editProgress(control, hparams.vSteps, 1, 1);
    const common = await commonOptions(ctx, loaded, control, options, progress);
    const native = await ctx.native();
    try {
      const r = await recordedEdit(native, ctx.db, loaded.graph, { ...common, edit: spec });
      if (r.watch?.autoDisabled) ctx.logs.push('warn', 'engine', `edit ${r.editId} collapsed the model and was switched off (turn it on in History to keep it anyway)`);
      return editDetail(ctx, r.editId);
    } finally {
      ctx.events.emit('historyChanged');
    }
  });
  return { jobId };
}

/** The document form of a request, as a request file holds it. */
function requestRecord(r: EditRequest): Record<string, unknown> {
  return {
    prompt: r.prompt, subject: r.subject, target_new: r.targetNew, ...(r.targetTrue !== undefined ? { target_true: r.targetTrue } : {}),
    paraphrase_prompts: r.paraphrasePrompts, neighborhood_prompts: r.neighborhoodPrompts, generation_prompts: r.generationPrompts,
  };
}

/**
 * A list from the editor becomes a file named by its content, so that running the same list
 * again after a crash or a cancel resumes the run, as a request file does.
 */
function listFile(ctx: BackendContext, requests: EditRequest[]): string {
  const text = `${JSON.stringify(requests.map(requestRecord), null, 2)}\n`;
  const dir = path.join(ctx.dataDir, 'requests');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${createHash('sha256').update(text).digest('hex').slice(0, 16)}.json`);
  if (!fs.existsSync(file)) fs.writeFileSync(file, text);
  return file;
}

export function startBatchEdit(ctx: BackendContext, input: BatchEditInput): { jobId: string } {
  if (typeof input !== 'object' || input === null) throw new Error('the batch must be an object {method, requests or requestsPath, sequential, options}');
  const loaded = editableLoaded(ctx);
  const method = methodOf(input.method);
  const options = input.options ?? {};
  const hasList = input.requests !== undefined, hasPath = input.requestsPath !== undefined && input.requestsPath.trim() !== '';
  if (hasList === hasPath) throw new Error('give either a list of requests or the path of a request file, not both and not neither');
  let requestsPath: string;
  let requests: EditRequest[];
  if (hasList) {
    if (!Array.isArray(input.requests)) throw new Error('the requests must be a list');
    if (input.requests.length === 0) throw new Error('the list holds no requests; write at least one ({"prompt", "subject", "target_new"})');
    requests = input.requests.map((r, i) => parsedRequest(r, `request ${i + 1}`));
    requestsPath = listFile(ctx, requests);
  } else {
    requestsPath = path.resolve(input.requestsPath!.trim());
    requests = readRequestFile(requestsPath).requests;
    if (requests.length === 0) throw new Error(`${requestsPath}: the file holds no requests`);
  }
  const size = batchPlan(method, requests.length, input.batchSize, input.sequential === true);
  const batches = Math.ceil(requests.length / size);
  const hparams = hparamsOf(loaded, method, options);
  flowOptions(options);
  const inputs = requests.map(requestInput);
  const title = `${method} of ${requests.length} request${requests.length === 1 ? '' : 's'}${batches > 1 ? ` in ${batches} batches` : ''}`;
  const jobId = ctx.jobs.start('edit', title, async (control): Promise<BatchEditResult> => {
    const progress = editProgress(control, hparams.vSteps, size, batches);
    const common = await commonOptions(ctx, loaded, control, options, progress);
    const native = await ctx.native();
    try {
      const run = await runBatchFile(native, ctx.db, loaded.graph, {
        ...common, method, requestsPath, sequential: input.sequential === true, hparams, curve: input.curve === true,
        ...(input.batchSize !== undefined ? { batchSize: input.batchSize } : {}),
        onBatch: (b) => {
          progress.batchDone();
          if (b.autoDisabled) ctx.logs.push('warn', 'engine', `edit ${b.editId} (batch ${b.index + 1}) collapsed the model and was switched off`);
          ctx.events.emit('historyChanged');
        },
      });
      return {
        runId: run.runId, resumed: run.resumed, method,
        batches: run.batches.map((b) => ({
          index: b.index, editId: b.editId, requestIndices: b.requestIndices, resumed: b.resumed,
          verdict: b.verdict as Verdict | null, autoDisabled: b.autoDisabled, normGrowth: b.normGrowth,
        })),
        results: requestResults(inputs, run.batches.flatMap((b) => b.requests)),
        summary: resultSummary(run.summary),
        curve: run.curve.map((c) => ({ edits: c.edits, efficacy: c.efficacy, pNew: c.pNew, sentencePplRatio: c.sentencePplRatio, normGrowth: c.normGrowth })),
      };
    } finally {
      ctx.events.emit('historyChanged');
    }
  });
  return { jobId };
}

export function startTrace(ctx: BackendContext, prompt: string, subject: string, samples = 10): { jobId: string } {
  const loaded = requireLoaded(ctx, 'trace a fact');
  if (!loaded.graph) throw new Error(`${path.basename(loaded.record.path)} cannot be traced: ${loaded.info.notEditableReason}`);
  if (typeof subject !== 'string' || subject.trim() === '') throw new Error('the subject is empty');
  if (typeof prompt !== 'string' || !(prompt.includes('{}') || prompt.includes(subject))) throw new Error(`the subject '${subject}' does not occur in the prompt "${prompt}"; mark its place with {} or fix the spelling`);
  if (!Number.isInteger(samples) || samples < 1) throw new Error(`samples must be a whole number of at least 1, got ${samples}`);
  const { graph } = loaded;
  const jobId = ctx.jobs.start('trace', `Trace "${subject}"`, async (control): Promise<TraceResult> => {
    // the trace has no progress of its own: an indeterminate bar
    stillLoaded(ctx, loaded);
    control.progress({ fraction: null, phase: `restoring states (${samples} noise samples each)` });
    const native = await ctx.native();
    const embeddings = native.readTensor(loaded.record.path, 'token_embd.weight').values;
    const r = await causalTrace(graph, embeddings, { prompt, subject, samples });
    return {
      tokens: r.tokens, answer: r.answer.text, cleanProbability: r.cleanProbability, corruptedProbability: r.corruptedProbability,
      grids: r.grids.map((g) => ({ kind: g.kind, probabilities: g.probabilities })), suggestedLayer: r.suggestedLayer,
    };
  });
  return { jobId };
}
