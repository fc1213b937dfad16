// The Edit screen: request documents checked with positions, one ROME edit as a job (phases,
// the v* curve, then metrics and the collapse verdict), and causal tracing as a job.
import path from 'node:path';

import type { DocumentProblem, EditOptions, EditRequestInput, TraceResult } from '../api/contract.ts';
import { editRequestSchema as schema } from '../api/editRequestSchema.ts';
import { causalTrace } from '../core/edits/causalTrace.ts';
import { recordedEdit } from '../core/edits/recordedEdit.ts';
import { checkRequestDocument as checkDocument } from '../core/edits/requestDocument.ts';
import { markSubject, parseEditRequest, type EditRequest } from '../core/edits/request.ts';
import { romeDefaults, type RomeHparams } from '../core/edits/rome.ts';
import type { RomeProgress } from '../core/edits/romeEdit.ts';
import { probeConfig } from '../core/probes/probeConfig.ts';
import { requireLoaded, stillLoaded, type BackendContext } from './context.ts';
import { editDetail, requestInput } from './history.ts';

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
function parsedRequest(r: EditRequestInput): EditRequest {
  if (typeof r !== 'object' || r === null) throw new Error('the request must be an object');
  return parseEditRequest({
    prompt: typeof r.prompt === 'string' && typeof r.subject === 'string' ? markSubject(r.prompt, r.subject) : r.prompt,
    subject: r.subject, target_new: r.targetNew,
    ...(r.targetTrue !== undefined && r.targetTrue !== '' ? { target_true: r.targetTrue } : {}),
    paraphrase_prompts: (r.paraphrases ?? []).filter((p) => p.trim() !== ''),
    neighborhood_prompts: (r.neighbours ?? []).filter((p) => p.trim() !== ''),
  }, 'request');
}

function hparamsOf(nLayer: number, o: EditOptions): RomeHparams {
  const defaults = romeDefaults(nLayer);
  const defined = Object.fromEntries(Object.entries({
    layer: o.layer, vSteps: o.vSteps, vLr: o.vLr, klFactor: o.klFactor, mom2Adjustment: o.mom2Adjustment, seed: o.seed,
  }).filter(([, v]) => v !== undefined));
  const hp = { ...defaults, ...defined } as RomeHparams;
  if (!Number.isInteger(hp.layer) || hp.layer < 0 || hp.layer >= nLayer) throw new Error(`layer ${hp.layer} is out of range (the model has ${nLayer} layers, 0 to ${nLayer - 1})`);
  if (!Number.isInteger(hp.vSteps) || hp.vSteps < 1) throw new Error(`v* steps must be a whole number of at least 1, got ${hp.vSteps}`);
  return hp;
}

// how far an edit is, by phase (the v* optimisation is most of it)
const phaseFraction: Record<string, number> = {
  'metrics-before': 0.02, templates: 0.05, statistics: 0.1, key: 0.2, value: 0.25, update: 0.77, adapter: 0.8, 'metrics-after': 0.83, recorded: 0.88,
};
const phaseTitle: Record<string, string> = {
  'metrics-before': 'measuring the request before the edit', templates: 'sampling context templates', statistics: 'second moments of the MLP keys',
  key: 'computing the key k*', value: 'optimising the value v*', update: 'rank-one update', adapter: 'writing the adapter',
  'metrics-after': 'measuring the request after the edit', recorded: 'recorded; running the collapse watch',
};

export function startEdit(ctx: BackendContext, input: EditRequestInput, options: EditOptions = {}): { jobId: string } {
  const loaded = requireLoaded(ctx, 'edit it');
  if (!loaded.graph) throw new Error(`${path.basename(loaded.record.path)} cannot be edited: ${loaded.info.notEditableReason}`);
  const request = parsedRequest(input);
  const hparams = hparamsOf(loaded.record.nLayer, options);
  const { graph, workspace } = loaded;
  const jobId = ctx.jobs.start('edit', `${request.subject}:${request.targetNew}`, async (control) => {
    stillLoaded(ctx, loaded);
    const native = await ctx.native();
    const settings = ctx.settings.get();
    let fraction = 0;
    const advance = (f: number, phase?: string) => {
      fraction = Math.max(fraction, f);
      control.progress({ fraction, ...(phase ? { phase } : {}) });
    };
    const probes = options.probes === false ? null : {
      config: await probeConfig({}, loaded.info.contextLength ?? 512),
      autoDisable: options.autoDisable ?? true, thresholds: ctx.settings.thresholds(), threads: settings.threads,
      onProgress: (p: { probe: string; done: number; total: number }) => advance(0.88 + 0.12 * (p.done / Math.max(1, p.total)) * 0.99, `collapse watch: ${p.probe} ${p.done}/${p.total}`),
    };
    try {
      const r = await recordedEdit(native, ctx.db, graph, {
        modelPath: loaded.record.path, workspace, edit: { method: 'rome', requests: [request], hparams }, probes, signal: control.signal,
        statisticsDir: path.join(ctx.dataDir, 'moments'),
        onBegin: () => ctx.events.emit('historyChanged'),
        onProgress: (p) => {
          const step = (p as RomeProgress).step;
          if (step) {
            advance(0.25 + (0.5 * (step.step + 1)) / hparams.vSteps, `${phaseTitle.value} (step ${step.step + 1}/${hparams.vSteps})`);
            control.step({ index: step.step, loss: step.loss, targetProbability: (p as RomeProgress).targetProbability ?? Math.exp(-step.nll) });
          } else {
            advance(phaseFraction[p.phase] ?? fraction, phaseTitle[p.phase] ?? p.phase);
          }
        },
      });
      if (r.watch?.autoDisabled) ctx.logs.push('warn', 'engine', `edit ${r.editId} collapsed the model and was switched off (turn it on in History to keep it anyway)`);
      return editDetail(ctx, r.editId);
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
