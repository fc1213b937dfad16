// `graft edit` (one fact, or a file of them as a batch or a sequence, by ROME, MEMIT, EMMET or
// AlphaEdit, written as LoRA adapters and recorded) and `graft trace` (causal tracing).
import fs from 'node:fs';
import path from 'node:path';

import { causalTrace } from '../../core/edits/causalTrace.ts';
import { batchMethods, type BatchHparams, type BatchProgress } from '../../core/edits/batchEdit.ts';
import { editHparams, parseLayers, type HparamChoices } from '../../core/edits/editHparams.ts';
import { batchPlan, runBatchFile } from '../../core/edits/batchRun.ts';
import { recordedEdit, type EditMethod, type MetricsSummary, type RequestMetrics } from '../../core/edits/recordedEdit.ts';
import { filledPrompt, markSubject, parseEditRequest, type EditRequest } from '../../core/edits/request.ts';
import { readRequestFile } from '../../core/edits/requestFile.ts';
import type { RomeHparams } from '../../core/edits/rome.ts';
import type { RomeProgress } from '../../core/edits/romeEdit.ts';
import { openGraphModel } from '../../core/engine/graphModel.ts';
import { describeModel } from '../../core/models/modelInfo.ts';
import { rememberedSha256 } from '../../core/store/fileHashes.ts';
import { probeConfig } from '../../core/probes/probeConfig.ts';
import { probeTable, thresholdsOption, verdictLines } from './probe.ts';
import { defaultDatabasePath, openDatabase } from '../../core/store/database.ts';
import { upsertModel, workspaceFor } from '../../core/store/repository.ts';
import { loadNative } from '../../core/native/binding.ts';
import { integerOption, parseCommandArgs, threadsOption } from '../args.ts';
import { UsageError } from '../errors.ts';

export const editUsage = 'graft edit MODEL (--request FILE | --prompt P --subject S --target T [--target-true T] | --requests FILE [--batch-size N] [--sequential] [--curve])\n' +
  '       [--method rome|memit|emmet|alphaedit] [--db F] [--workspace W] [--layer L | --layers A-B|A,B,…] [--corpus FILE] [--stats-tokens N] [--out ADAPTER|DIR]\n' +
  '       [--v-lr X] [--v-steps N] [--kl-factor X] [--v-weight-decay X] [--clamp-norm-factor X] [--mom2-adjustment on|off] [--mom2-ridge X] [--seed N]\n' +
  '       [--mom2-update-weight X] [--emmet-lambda X] [--nullspace-threshold X] [--l2 X] [--norm-cap X] [--threads N] [--json]\n' +
  '       [--no-probes | [--probe-set F] [--thresholds JSON|FILE] [--no-auto-disable]]';
export const traceUsage = 'graft trace MODEL --prompt P --subject S [--samples N] [--noise X] [--seed N] [--threads N] [--json]';

function numberOption(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${flag} must be a number, got '${value}'`);
  return n;
}

function readRequest(values: Record<string, unknown>): EditRequest {
  if (typeof values.request === 'string') {
    if (values.prompt !== undefined || values.subject !== undefined || values.target !== undefined) {
      throw new UsageError(`give either --request or --prompt/--subject/--target, not both\nusage: ${editUsage}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(fs.readFileSync(values.request, 'utf8'));
    } catch (error) {
      throw new Error(`--request ${values.request}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (error as Error).message}`);
    }
    if (Array.isArray(parsed)) throw new Error(`--request ${values.request} holds ${parsed.length} requests; give it as --requests FILE to run them as a batch or a sequence`);
    return parseEditRequest(parsed, 'request');
  }
  if (values.prompt === undefined || values.subject === undefined || values.target === undefined) {
    throw new UsageError(`give --request FILE, --requests FILE, or --prompt, --subject and --target\nusage: ${editUsage}`);
  }
  const subject = String(values.subject);
  return parseEditRequest({ prompt: markSubject(String(values.prompt), subject), subject, target_new: values.target, ...(values['target-true'] !== undefined ? { target_true: values['target-true'] } : {}) }, 'request');
}

type Values = Record<string, string | boolean | undefined>;

function methodOption(value: string | undefined): EditMethod {
  const method = value ?? 'rome';
  if (method !== 'rome' && !(batchMethods as readonly string[]).includes(method)) throw new UsageError(`--method must be rome, memit, emmet or alphaedit, got '${method}'`);
  return method as EditMethod;
}

const flagOf: Record<keyof HparamChoices, string> = {
  layer: '--layer', layers: '--layers', vLr: '--v-lr', vSteps: '--v-steps', klFactor: '--kl-factor', vWeightDecay: '--v-weight-decay',
  clampNormFactor: '--clamp-norm-factor', mom2Adjustment: '--mom2-adjustment', mom2Ridge: '--mom2-ridge', seed: '--seed',
  mom2UpdateWeight: '--mom2-update-weight', emmetLambda: '--emmet-lambda', nullspaceThreshold: '--nullspace-threshold', l2: '--l2',
};

function hparamsFrom(values: Values, method: EditMethod, info: { nLayer: number; nFf: number }): RomeHparams | BatchHparams {
  const str = (k: string) => values[k] as string | undefined;
  const num = (k: keyof HparamChoices) => numberOption(str(flagOf[k].slice(2)), flagOf[k]);
  const int = (k: keyof HparamChoices) => (str(flagOf[k].slice(2)) === undefined ? undefined : integerOption(str(flagOf[k].slice(2)), flagOf[k]));
  const mom2 = str('mom2-adjustment');
  if (mom2 !== undefined && mom2 !== 'on' && mom2 !== 'off') throw new UsageError(`--mom2-adjustment must be on or off, got '${mom2}'`);
  let layers: number[] | undefined;
  try {
    layers = str('layers') === undefined ? undefined : parseLayers(str('layers')!, '--layers');
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const choices: HparamChoices = {
    layer: int('layer'), layers, vLr: num('vLr'), vSteps: int('vSteps'), klFactor: num('klFactor'), vWeightDecay: num('vWeightDecay'),
    clampNormFactor: num('clampNormFactor'), mom2Ridge: num('mom2Ridge'), seed: int('seed'),
    mom2Adjustment: mom2 === undefined ? undefined : mom2 === 'on',
    mom2UpdateWeight: num('mom2UpdateWeight'), emmetLambda: num('emmetLambda'), nullspaceThreshold: num('nullspaceThreshold'), l2: num('l2'),
  };
  return editHparams(method, info, choices, (k) => flagOf[k]);
}

function fixed(x: number | null | undefined, digits = 3): string {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '–';
}

/** One row per request: the published tables' columns, probability comparison then token accuracy. */
function requestTable(requests: EditRequest[], metrics: RequestMetrics[]): string {
  const rows = metrics.map((m, i) => {
    const r = requests[i]!, a = m.after;
    return `${String(i + 1).padStart(4)}  ${filledPrompt(r).slice(0, 40).padEnd(40)} → ${r.targetNew.trim().slice(0, 12).padEnd(12)} ` +
      `P(new) ${fixed(m.before.efficacy.pNew)}→${fixed(a.efficacy.pNew)}  ES ${fixed(a.efficacy.probabilityScore, 2)} PS ${fixed(a.paraphrase?.probabilityScore, 2)} ` +
      `NS ${fixed(a.neighbourhood?.probabilityScore, 2)}  acc ${fixed(a.efficacy.tokenAccuracy, 2)}/${fixed(a.paraphrase?.tokenAccuracy, 2)}/${fixed(a.neighbourhood?.tokenAccuracy, 2)}`;
  });
  return ['   #  prompt                                     target        metrics (ES/PS/NS: share preferring the right target; acc: token accuracy)', ...rows].join('\n');
}

function summaryLine(s: MetricsSummary): string {
  return `summary over ${s.requests} requests: efficacy ${fixed(s.efficacy)}, paraphrase ${fixed(s.paraphrase)}, neighbourhood ${fixed(s.neighbourhood)}` +
    ` | token accuracy ${fixed(s.efficacyTokenAccuracy)} / ${fixed(s.paraphraseTokenAccuracy)} / ${fixed(s.neighbourhoodTokenAccuracy)}`;
}

export async function runEdit(argv: string[]): Promise<void> {
  const { values, positionals } = parseCommandArgs(argv, {
    request: { type: 'string' }, prompt: { type: 'string' }, subject: { type: 'string' }, target: { type: 'string' }, 'target-true': { type: 'string' },
    requests: { type: 'string' }, method: { type: 'string' }, 'batch-size': { type: 'string' }, sequential: { type: 'boolean', default: false }, curve: { type: 'boolean', default: false },
    layer: { type: 'string' }, layers: { type: 'string' }, corpus: { type: 'string' }, 'stats-tokens': { type: 'string' }, out: { type: 'string' },
    'v-lr': { type: 'string' }, 'v-steps': { type: 'string' }, 'kl-factor': { type: 'string' }, 'v-weight-decay': { type: 'string' },
    'clamp-norm-factor': { type: 'string' }, 'mom2-adjustment': { type: 'string' }, 'mom2-ridge': { type: 'string' }, seed: { type: 'string' },
    'mom2-update-weight': { type: 'string' }, 'emmet-lambda': { type: 'string' }, 'nullspace-threshold': { type: 'string' }, l2: { type: 'string' }, 'norm-cap': { type: 'string' },
    threads: { type: 'string' }, json: { type: 'boolean', default: false }, db: { type: 'string' }, workspace: { type: 'string' },
    'no-probes': { type: 'boolean', default: false }, 'probe-set': { type: 'string' }, thresholds: { type: 'string' }, 'no-auto-disable': { type: 'boolean', default: false },
  }, editUsage);
  const thresholds = thresholdsOption(values.thresholds);
  if (positionals.length !== 1) throw new UsageError(`give exactly one model file\nusage: ${editUsage}`);
  const modelPath = positionals[0]!;
  const method = methodOption(values.method);
  const fromFile = values.requests !== undefined;
  if (fromFile && (values.request !== undefined || values.prompt !== undefined || values.subject !== undefined || values.target !== undefined)) {
    throw new UsageError(`give either --requests FILE or one request (--request, or --prompt/--subject/--target), not both\nusage: ${editUsage}`);
  }
  if (!fromFile && (values['batch-size'] !== undefined || values.sequential || values.curve)) throw new UsageError('--batch-size, --sequential and --curve go with --requests FILE');
  const request = fromFile ? null : readRequest(values);
  const batchSize = values['batch-size'] === undefined ? undefined : integerOption(values['batch-size'], '--batch-size');
  const normCap = numberOption(values['norm-cap'], '--norm-cap');
  if (normCap !== undefined && !(normCap > 1)) throw new UsageError(`--norm-cap is a bound on ‖W + ΔW‖/‖W‖ and must be above 1, got ${normCap}`);
  if (fromFile) {
    // read (and so check) the file before anything slow starts
    batchPlan(method, readRequestFile(values.requests!).requests.length, batchSize, values.sequential);
  }
  if (values.corpus !== undefined) {
    if (!fs.existsSync(values.corpus)) throw new Error(`--corpus ${values.corpus}: file not found`);
    if (!fs.statSync(values.corpus).isFile()) throw new Error(`--corpus ${values.corpus} is not a file`);
    if (fs.statSync(values.corpus).size === 0) throw new Error(`--corpus ${values.corpus} is empty; give a text file to compute the second moments from`);
  }

  const native = await loadNative();
  const info = await describeModel(native, modelPath, { sha256: false });
  if (!info.editable) throw new Error(`${modelPath} cannot be edited: ${info.notEditableReason}`);
  const db = openDatabase(values.db ?? defaultDatabasePath());
  const graph = await openGraphModel(native, modelPath, { threads: threadsOption(values.threads) });
  try {
    const { sha256 } = await rememberedSha256(db, modelPath);
    const modelRecord = upsertModel(db, {
      path: path.resolve(modelPath), sha256, arch: graph.info.arch, nLayer: graph.info.nLayer, nEmbd: graph.info.nEmbd, nFf: graph.info.nFf,
      nVocab: graph.info.nVocab, fileType: info.fileType ?? null, sizeBytes: fs.statSync(modelPath).size,
    });
    const workspace = workspaceFor(db, values.workspace ?? path.basename(modelPath, '.gguf'), modelRecord.id);
    const hparams = hparamsFrom(values, method, graph.info);
    const statsTokens = values['stats-tokens'] === undefined ? undefined : integerOption(values['stats-tokens'], '--stats-tokens');
    const controller = new AbortController();
    const onSigint = () => controller.abort();
    process.once('SIGINT', onSigint);
    let inSteps = false;
    const probes = values['no-probes'] ? null : {
      config: await probeConfig(values['probe-set'] !== undefined ? { probeSet: values['probe-set'] } : {}, graph.info.contextLength),
      autoDisable: !values['no-auto-disable'], ...(thresholds ? { thresholds } : {}),
      ...(values.threads !== undefined ? { threads: threadsOption(values.threads)! } : {}),
      onProgress: (p: { probe: string; done: number; total: number }) => { if (!values.json) process.stderr.write(`\rprobes: ${p.probe} ${p.done}/${p.total}   `); },
    };
    const common = {
      modelPath, workspace, signal: controller.signal, probes,
      ...(values.corpus !== undefined ? { corpus: values.corpus } : {}),
      ...(statsTokens !== undefined ? { statisticsTokens: statsTokens } : {}),
      ...(values.out !== undefined ? { out: values.out } : {}),
      ...(normCap !== undefined ? { normCap } : {}),
      onProgress: (p: RomeProgress | BatchProgress | { phase: string }) => {
        if (p.phase === 'metrics-before' || p.phase === 'metrics-after' || p.phase === 'recorded') return;
        const step = (p as RomeProgress).step;
        if (step) process.stderr.write(`\r${method === 'rome' ? 'v*' : 'z'}: step ${step.step + 1}/${hparams.vSteps} loss ${step.loss.toFixed(4)} P(target) ${Math.exp(-step.nll).toFixed(4)}   `);
        else process.stderr.write(`${inSteps ? '\n' : ''}edit: ${p.phase}${(p as BatchProgress).layer !== undefined ? ` ${(p as BatchProgress).layer}` : ''}\n`);
        inSteps = step !== undefined;
      },
    };
    try {
      if (fromFile) {
        const run = await runBatchFile(native, db, graph, {
          ...common, method, requestsPath: values.requests!, sequential: values.sequential, hparams, curve: values.curve,
          ...(batchSize !== undefined ? { batchSize } : {}),
          onBatch: (b, of) => {
            if (values.json) return;
            process.stderr.write(`${inSteps ? '\n' : ''}batch ${b.index + 1}/${of}: edit ${b.editId}${b.resumed ? ' (done in an earlier attempt)' : ''}` +
              `${b.verdict ? `, verdict ${b.verdict}` : ''}${b.autoDisabled ? ' (switched off)' : ''}${b.normGrowth !== null ? `, norm growth ${b.normGrowth.toFixed(3)}` : ''}\n`);
            inSteps = false;
          },
        });
        const requests = readRequestFile(values.requests!).requests;
        if (values.json) {
          process.stdout.write(`${JSON.stringify({ workspace: workspace.name, method, hyperparameters: hparams, ...run })}\n`);
        } else {
          const metrics = run.batches.flatMap((b) => b.requests);
          process.stdout.write([
            `run ${run.runId} in workspace '${workspace.name}': ${method}, ${run.requests} requests in ${run.batches.length} batch${run.batches.length === 1 ? '' : 'es'}` +
              `${values.sequential ? ', sequential' : ''}${run.resumed ? ' (resumed)' : ''}`,
            `edits    ${run.batches.map((b) => b.editId).join(', ')}`,
            ...(run.adapter ? [`adapter  ${run.adapter}`] : []),
            requestTable(requests, metrics),
            summaryLine(run.summary),
            ...(run.curve.length > 0 ? ['curve (edits so far: efficacy of all of them, sentence-perplexity ratio, norm growth)',
              ...run.curve.map((c) => `  ${String(c.edits).padStart(5)}  ${c.efficacy.toFixed(3)}  ${fixed(c.sentencePplRatio)}  ${fixed(c.normGrowth)}`)] : []),
            '',
          ].join('\n'));
        }
        return;
      }
      const spec = method === 'rome' ? { method, requests: [request!] as [EditRequest], hparams: hparams as RomeHparams } : { method, requests: [request!], hparams: hparams as BatchHparams };
      const r = await recordedEdit(native, db, graph, { ...common, edit: spec });
      if (r.watch && !values.json) process.stderr.write('\n');
      const { before, after } = r.requests[0]!;
      const output = {
        edit: r.editId, workspace: workspace.name, stack: r.stack, method,
        verdict: r.watch?.verdict ?? null,
        probes: r.watch ? {
          runId: r.watch.runId, judgement: r.watch.judgement, autoDisabled: r.watch.autoDisabled, editSet: r.watch.editSet, baselineReused: r.watch.baselineReused,
          baseline: r.watch.baseline, results: r.watch.results, normGrowth: r.watch.normGrowth, seconds: r.watch.results.seconds,
        } : null,
        adapter: r.adapter, request, normGuard: r.normGuard, metrics: { before, after },
        ...(r.rome ? {
          layer: r.rome.layer, factors: { u: Array.from(r.factors[0]!.u), v: Array.from(r.factors[0]!.v) }, preflight: r.rome.preflight,
          hyperparameters: r.rome.hparams, templates: r.rome.templates, optimisation: r.rome.optimisation, timings: r.rome.timings,
        } : {
          layers: r.batch!.preflight.layers, targets: r.batch!.targets, hyperparameters: r.batch!.hparams, templates: r.batch!.templates, timings: r.batch!.timings,
        }),
      };
      if (values.json) {
        process.stdout.write(`${JSON.stringify(output)}\n`);
        return;
      }
      const rome = r.rome;
      process.stdout.write([
        `edit     ${r.editId} in workspace '${workspace.name}' (on ${r.stack} enabled edit${r.stack === 1 ? '' : 's'})`,
        `adapter  ${r.adapter}`,
        rome ? `layer    ${rome.layer}` : `layers   ${r.batch!.preflight.layers.map((l) => `${l.layer} (‖ΔW‖/‖W‖ ${l.relativeUpdateNorm.toPrecision(3)})`).join(', ')}`,
        `P(new)   ${before.efficacy.pNew.toFixed(4)} → ${after.efficacy.pNew.toFixed(4)}` +
          (request!.targetTrue ? `   P(true) ${before.efficacy.pTrue.toFixed(4)} → ${after.efficacy.pTrue.toFixed(4)}` : ''),
        ...(rome ? [`preflight denominator ${rome.preflight.denominator.toPrecision(4)}, ‖ΔW‖/‖W‖ ${rome.preflight.relativeUpdateNorm.toPrecision(3)}` +
          (rome.preflight.subjectIsFirstToken ? ', subject is the first token (prefixed keys used)' : '')] : []),
        ...r.normGuard.filter((g) => g.note).map((g) => `norm guard: ${g.note}`),
        ...(r.watch ? [probeTable(r.watch.results, r.watch.baseline), verdictLines(r.watch.judgement) +
          (r.watch.autoDisabled ? `\nthe edit was switched off because it collapsed the model (graft toggle ${r.editId} on to keep it anyway; --no-auto-disable to keep such edits on)` : '')] : ['probes skipped (--no-probes)']),
        '',
      ].join('\n'));
    } finally {
      process.off('SIGINT', onSigint);
    }
  } finally {
    graph.dispose();
    db.close();
  }
}

export async function runTrace(argv: string[]): Promise<void> {
  const { values, positionals } = parseCommandArgs(argv, {
    prompt: { type: 'string' }, subject: { type: 'string' }, samples: { type: 'string' }, noise: { type: 'string' }, seed: { type: 'string' },
    threads: { type: 'string' }, json: { type: 'boolean', default: false },
  }, traceUsage);
  if (positionals.length !== 1) throw new UsageError(`give exactly one model file\nusage: ${traceUsage}`);
  if (values.prompt === undefined || values.subject === undefined) throw new UsageError(`--prompt and --subject are required\nusage: ${traceUsage}`);
  if (values.subject.trim() === '') throw new Error('--subject is empty');
  const samples = integerOption(values.samples, '--samples', 10);
  if (samples < 1) throw new UsageError('--samples must be at least 1');
  const native = await loadNative();
  const graph = await openGraphModel(native, positionals[0]!, { threads: threadsOption(values.threads) });
  try {
    const embeddings = native.readTensor(positionals[0]!, 'token_embd.weight').values;
    const noise = numberOption(values.noise, '--noise');
    const result = await causalTrace(graph, embeddings, {
      prompt: values.prompt, subject: values.subject, samples,
      ...(noise !== undefined ? { noiseScale: noise } : {}), seed: integerOption(values.seed, '--seed', 0),
    });
    if (values.json) {
      process.stdout.write(`${JSON.stringify(result)}\n`);
      return;
    }
    const lines = [`answer ${JSON.stringify(result.answer.text)}: clean p ${result.cleanProbability.toFixed(4)}, corrupted p ${result.corruptedProbability.toFixed(4)}`];
    for (const grid of result.grids) {
      lines.push('', `${grid.kind} restored (rows: layers, columns: ${result.tokens.map((t) => JSON.stringify(t)).join(' ')})`);
      grid.probabilities.forEach((row, l) => lines.push(`${String(l).padStart(3)}  ${row.map((p) => p.toFixed(3)).join(' ')}`));
    }
    lines.push('', `suggested layer ${result.suggestedLayer}`, '');
    process.stdout.write(lines.join('\n'));
  } finally {
    graph.dispose();
  }
}
