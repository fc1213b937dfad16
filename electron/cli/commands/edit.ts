// `graft edit` (one ROME edit, written as a LoRA adapter) and `graft trace` (causal tracing).
import fs from 'node:fs';
import path from 'node:path';

import { causalTrace } from '../../core/edits/causalTrace.ts';
import { recordedEdit } from '../../core/edits/recordedEdit.ts';
import { markSubject, parseEditRequest, type EditRequest } from '../../core/edits/request.ts';
import { romeDefaults, type RomeHparams } from '../../core/edits/rome.ts';
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

export const editUsage = 'graft edit MODEL (--request FILE | --prompt P --subject S --target T [--target-true T]) [--db F] [--workspace W] [--layer L] ' +
  '[--corpus FILE] [--stats-tokens N] [--out ADAPTER|DIR] [--v-lr X] [--v-steps N] [--kl-factor X] [--v-weight-decay X] ' +
  '[--clamp-norm-factor X] [--mom2-adjustment on|off] [--mom2-ridge X] [--seed N] [--threads N] [--json]\n' +
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
    if (Array.isArray(parsed)) throw new Error(`--request ${values.request} holds ${parsed.length} requests; ROME edits one fact at a time`);
    return parseEditRequest(parsed, 'request');
  }
  if (values.prompt === undefined || values.subject === undefined || values.target === undefined) {
    throw new UsageError(`give --request FILE, or --prompt, --subject and --target\nusage: ${editUsage}`);
  }
  const subject = String(values.subject);
  return parseEditRequest({ prompt: markSubject(String(values.prompt), subject), subject, target_new: values.target, ...(values['target-true'] !== undefined ? { target_true: values['target-true'] } : {}) }, 'request');
}

export async function runEdit(argv: string[]): Promise<void> {
  const { values, positionals } = parseCommandArgs(argv, {
    request: { type: 'string' }, prompt: { type: 'string' }, subject: { type: 'string' }, target: { type: 'string' }, 'target-true': { type: 'string' },
    layer: { type: 'string' }, corpus: { type: 'string' }, 'stats-tokens': { type: 'string' }, out: { type: 'string' },
    'v-lr': { type: 'string' }, 'v-steps': { type: 'string' }, 'kl-factor': { type: 'string' }, 'v-weight-decay': { type: 'string' },
    'clamp-norm-factor': { type: 'string' }, 'mom2-adjustment': { type: 'string' }, 'mom2-ridge': { type: 'string' }, seed: { type: 'string' },
    threads: { type: 'string' }, json: { type: 'boolean', default: false }, db: { type: 'string' }, workspace: { type: 'string' },
    'no-probes': { type: 'boolean', default: false }, 'probe-set': { type: 'string' }, thresholds: { type: 'string' }, 'no-auto-disable': { type: 'boolean', default: false },
  }, editUsage);
  const thresholds = thresholdsOption(values.thresholds);
  if (positionals.length !== 1) throw new UsageError(`give exactly one model file\nusage: ${editUsage}`);
  const modelPath = positionals[0]!;
  const request = readRequest(values);
  const mom2 = values['mom2-adjustment'];
  if (mom2 !== undefined && mom2 !== 'on' && mom2 !== 'off') throw new UsageError(`--mom2-adjustment must be on or off, got '${mom2}'`);
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
    const defaults = romeDefaults(graph.info.nLayer);
    const pick = (v: number | undefined, d: number) => (v === undefined ? d : v);
    const hparams: RomeHparams = {
      ...defaults,
      layer: integerOption(values.layer, '--layer', defaults.layer),
      vLr: pick(numberOption(values['v-lr'], '--v-lr'), defaults.vLr),
      vSteps: integerOption(values['v-steps'], '--v-steps', defaults.vSteps),
      klFactor: pick(numberOption(values['kl-factor'], '--kl-factor'), defaults.klFactor),
      vWeightDecay: pick(numberOption(values['v-weight-decay'], '--v-weight-decay'), defaults.vWeightDecay),
      clampNormFactor: pick(numberOption(values['clamp-norm-factor'], '--clamp-norm-factor'), defaults.clampNormFactor),
      mom2Adjustment: mom2 === undefined ? defaults.mom2Adjustment : mom2 === 'on',
      mom2Ridge: pick(numberOption(values['mom2-ridge'], '--mom2-ridge'), defaults.mom2Ridge),
      seed: integerOption(values.seed, '--seed', defaults.seed),
    };
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
    const { editId, stack, result, metrics: { before, after }, watch } = await recordedEdit(native, db, graph, {
      modelPath, workspace, request, hparams, signal: controller.signal, probes,
      ...(values.corpus !== undefined ? { corpus: values.corpus } : {}),
      ...(statsTokens !== undefined ? { statisticsTokens: statsTokens } : {}),
      ...(values.out !== undefined ? { out: values.out } : {}),
      onProgress: (p) => {
        if (p.phase === 'metrics-before' || p.phase === 'metrics-after' || p.phase === 'recorded') return;
        if ('step' in p && p.step) process.stderr.write(`\rv*: step ${p.step.step + 1}/${hparams.vSteps} loss ${p.step.loss.toFixed(4)} P(target) ${p.targetProbability!.toFixed(4)}   `);
        else process.stderr.write(`${inSteps ? '\n' : ''}edit: ${p.phase}\n`);
        inSteps = 'step' in p && p.step !== undefined;
      },
    }).finally(() => process.off('SIGINT', onSigint));
    if (watch && !values.json) process.stderr.write('\n');
    const output = {
      edit: editId, workspace: workspace.name, stack,
      verdict: watch?.verdict ?? null,
      probes: watch ? {
        runId: watch.runId, judgement: watch.judgement, autoDisabled: watch.autoDisabled, editSet: watch.editSet, baselineReused: watch.baselineReused,
        baseline: watch.baseline, results: watch.results, normGrowth: watch.normGrowth, seconds: watch.results.seconds,
      } : null,
      adapter: result.adapter, layer: result.layer, request,
      factors: { u: Array.from(result.u), v: Array.from(result.v) },
      preflight: result.preflight, metrics: { before, after },
      hyperparameters: result.hparams, templates: result.templates,
      optimisation: result.optimisation, timings: result.timings,
    };
    if (values.json) {
      process.stdout.write(`${JSON.stringify(output)}\n`);
    } else {
      process.stdout.write([
        `edit     ${editId} in workspace '${workspace.name}' (on ${stack} enabled edit${stack === 1 ? '' : 's'})`,
        `adapter  ${result.adapter}`,
        `layer    ${result.layer}`,
        `P(new)   ${before.efficacy.pNew.toFixed(4)} → ${after.efficacy.pNew.toFixed(4)}` +
          (request.targetTrue ? `   P(true) ${before.efficacy.pTrue.toFixed(4)} → ${after.efficacy.pTrue.toFixed(4)}` : ''),
        `preflight denominator ${result.preflight.denominator.toPrecision(4)}, ‖ΔW‖/‖W‖ ${result.preflight.relativeUpdateNorm.toPrecision(3)}` +
          (result.preflight.subjectIsFirstToken ? ', subject is the first token (prefixed keys used)' : ''),
        ...(watch ? [probeTable(watch.results, watch.baseline), verdictLines(watch.judgement) +
          (watch.autoDisabled ? `\nthe edit was switched off because it collapsed the model (graft toggle ${editId} on to keep it anyway; --no-auto-disable to keep such edits on)` : '')] : ['probes skipped (--no-probes)']),
        '',
      ].join('\n'));
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
