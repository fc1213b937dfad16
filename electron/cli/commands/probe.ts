// `graft probe`: the collapse watch from the command line — sentence perplexity, corpus
// perplexity (llama.cpp's method), KL to the base and the hard-case suite, for the base model,
// an adapter, or a workspace's enabled edits, with the verdict and the numbers behind it.
import fs from 'node:fs';
import path from 'node:path';

import { romeDefaults, type RomeHparams } from '../../core/edits/rome.ts';
import type { EditRequest } from '../../core/edits/request.ts';
import { layerFactorsOf } from '../../core/export/editStack.ts';
import { overlaysFromLora } from '../../core/engine/loraOverlays.ts';
import { openGraphModel } from '../../core/engine/graphModel.ts';
import { modelRecordOf } from '../../core/models/modelRecord.ts';
import { loadNative } from '../../core/native/binding.ts';
import { baselineOf, signalsOf, watchWorkspace } from '../../core/probes/collapseWatch.ts';
import { runHardCases, type HardCaseRow } from '../../core/probes/hardCaseRun.ts';
import { normGrowth } from '../../core/probes/normGrowth.ts';
import { probeConfig } from '../../core/probes/probeConfig.ts';
import { measure, type ProbeResults } from '../../core/probes/probeSuite.ts';
import { judge, thresholdsWith, type Judgement, type Thresholds } from '../../core/probes/verdict.ts';
import { defaultDatabasePath, openDatabase } from '../../core/store/database.ts';
import { enabledOverlays, listEdits, listWorkspaces, statisticsOf } from '../../core/store/repository.ts';
import { integerOption, parseCommandArgs, threadsOption } from '../args.ts';
import { UsageError } from '../errors.ts';

export const probeUsage = 'graft probe MODEL [--lora F | --workspace W] [--corpus F] [--ctx N] [--chunks N] [--probe-set F] [--kl] [--kl-prompts F]\n' +
  '       [--hard] [--no-bos] [--thresholds JSON|FILE] [--db F] [--threads N] [--json]';

export function thresholdsOption(value: string | undefined): Thresholds | undefined {
  if (value === undefined) return undefined;
  const text = fs.existsSync(value) ? fs.readFileSync(value, 'utf8') : value;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UsageError(`--thresholds must be JSON or a JSON file, e.g. '{"sentencePplRatio":{"collapsed":3}}'`);
  }
  return thresholdsWith(parsed as Parameters<typeof thresholdsWith>[0]);
}

const f = (x: number | null | undefined, digits = 4) => (x === null || x === undefined ? '—' : Number.isFinite(x) ? x.toPrecision(digits) : String(x));

export function probeTable(results: ProbeResults, baseline: ProbeResults): string {
  const rows: [string, string, string][] = [['sentence perplexity (mean)', f(baseline.sentence.meanPpl), f(results.sentence.meanPpl)]];
  if (results.corpus && baseline.corpus) rows.push([`corpus perplexity (n_ctx ${results.corpus.nCtx}, ${results.corpus.tokensScored} tokens)`, f(baseline.corpus.ppl), f(results.corpus.ppl)]);
  if (results.kl) rows.push(['KL to base: mean / p99', '0', `${f(results.kl.meanKl)} / ${f(results.kl.p99Kl)}`], ['top-1 agreement', '1', f(results.kl.top1Agreement)]);
  const width = Math.max(...rows.map((r) => r[0].length));
  return [`  ${'probe'.padEnd(width)}  ${'base'.padStart(10)}  ${'edited'.padStart(18)}`, ...rows.map(([a, b, c]) => `  ${a.padEnd(width)}  ${b.padStart(10)}  ${c.padStart(18)}`)].join('\n');
}

export function verdictLines(j: Judgement): string {
  const flagged = j.reasons.filter((r) => r.level !== 'ok');
  return `verdict: ${j.verdict}` + (flagged.length ? ` (${flagged.map((r) => `${r.signal} ${f(r.value)}: ${r.level}, threshold ${f(r.threshold)}`).join('; ')})` : '');
}

export function hardCaseTable(rows: HardCaseRow[]): string {
  const head = ['case', 'edits', 'Δppl', 'ppl ratio', 'KL mean', 'top-1', '‖ΔW‖/‖W‖', 'verdict'];
  const body = rows.map((r) => [r.id, String(r.edits), f(r.deltaPerplexity), f(r.sentencePplRatio), f(r.klMean), f(r.top1Agreement, 3), f(r.relativeUpdateNorm, 3), r.error ? `error: ${r.error}` : r.verdict ?? '—']);
  const last = head.length - 1;
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (i === last ? 0 : b[i]!.length))));
  return [head, ...body].map((r) => `  ${r.map((c, i) => (i === last ? c : c.padEnd(widths[i]!))).join('  ')}`).join('\n');
}

export async function runProbe(argv: string[]): Promise<void> {
  const { values, positionals } = parseCommandArgs(argv, {
    lora: { type: 'string' }, workspace: { type: 'string' }, corpus: { type: 'string' }, ctx: { type: 'string' }, chunks: { type: 'string' },
    'probe-set': { type: 'string' }, kl: { type: 'boolean', default: false }, 'kl-prompts': { type: 'string' }, hard: { type: 'boolean', default: false },
    'no-bos': { type: 'boolean', default: false }, thresholds: { type: 'string' }, db: { type: 'string' }, threads: { type: 'string' }, json: { type: 'boolean', default: false },
  }, probeUsage);
  const modelPath = positionals[0];
  if (!modelPath) throw new UsageError(`give the model\nusage: ${probeUsage}`);
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'\nusage: ${probeUsage}`);
  if (values.lora !== undefined && values.workspace !== undefined) throw new UsageError('--lora and --workspace exclude each other: probe an adapter file or a workspace\'s edits');
  if (values.lora !== undefined && !fs.existsSync(values.lora)) throw new Error(`--lora ${values.lora}: no such file`);
  const thresholds = thresholdsOption(values.thresholds);
  const threads = threadsOption(values.threads);
  const native = await loadNative();
  const db = openDatabase(values.db ?? defaultDatabasePath());
  try {
    const model = await modelRecordOf(db, native, modelPath);
    const config = await probeConfig({
      ...(values['probe-set'] !== undefined ? { probeSet: values['probe-set'] } : {}), kl: values.kl || values['kl-prompts'] !== undefined,
      ...(values['kl-prompts'] !== undefined ? { klPrompts: values['kl-prompts'] } : {}), ...(values.corpus !== undefined ? { corpus: values.corpus } : {}),
      ...(values.ctx !== undefined ? { nCtx: integerOption(values.ctx, '--ctx') } : {}), ...(values.chunks !== undefined ? { maxChunks: integerOption(values.chunks, '--chunks') } : {}),
      bos: !values['no-bos'],
    }, model.contextLength);
    const progress = (p: { probe: string; done: number; total: number }) => { if (!values.json) process.stderr.write(`\r${p.probe}: ${p.done}/${p.total}   `); };
    const common = { ...(threads !== undefined ? { threads } : {}), onProgress: progress };
    let out: Record<string, unknown>;
    let baseline: ProbeResults, results: ProbeResults, judgement: Judgement;
    const workspace = values.workspace === undefined ? null : listWorkspaces(db).find((w) => w.name === values.workspace);
    if (workspace === undefined) throw new Error(`there is no workspace '${values.workspace}'`);
    if (workspace && workspace.modelId !== model.id) throw new Error(`workspace '${workspace.name}' belongs to another model; give that model`);
    if (workspace) {
      const w = await watchWorkspace(native, db, workspace, config, { ...common, ...(thresholds ? { thresholds } : {}), autoDisable: false });
      ({ baseline, results, judgement } = w);
      out = { model: model.path, workspace: workspace.name, editSet: w.editSet, runId: w.runId, verdict: w.verdict, judgement, baseline, results, normGrowth: w.normGrowth, baselineReused: w.baselineReused };
    } else {
      ({ results: baseline } = await baselineOf(native, db, model, config, common));
      const adapter = values.lora ? path.resolve(values.lora) : null;
      results = adapter ? await measure(native, model.path, adapter, config, { ...common, modelKey: model.sha256, cacheDir: path.join(path.dirname(db.name), 'probe-cache') }) : baseline;
      let growth: ReturnType<typeof normGrowth> = [];
      if (adapter) {
        const graph = await openGraphModel(native, model.path);
        try {
          growth = normGrowth(native, model.path, layerFactorsOf(overlaysFromLora(native, adapter, graph.info)));
        } finally {
          graph.dispose();
        }
      }
      judgement = judge(signalsOf(results, baseline, growth, null), thresholds);
      out = { model: model.path, lora: adapter, verdict: judgement.verdict, judgement, baseline, results, normGrowth: growth };
    }
    if (values.hard) {
      const source = workspace ? listEdits(db, workspace.id).filter((e) => e.status === 'done' && e.method === 'rome').at(-1) : undefined;
      if (!source) throw new Error('--hard builds its cases from a ROME edit: give --workspace W with at least one completed ROME edit (its request and settings are the template)');
      const rows = await runHardCases(native, {
        model: { path: model.path, sha256: model.sha256 }, request: source.request as EditRequest,
        hparams: { ...romeDefaults(model.nLayer), ...(source.hparams as Partial<RomeHparams>) }, stack: enabledOverlays(db, workspace!.id),
        // the second moments the template edit used, so the cases are computed the same way
        ...(statisticsOf(db, source.id)[0] ? { statisticsFile: statisticsOf(db, source.id)[0]!.path } : {}),
        config, baseline, ...(thresholds ? { thresholds } : {}), ...(threads !== undefined ? { threads } : {}),
        onCase: (row, i, n) => { if (!values.json) process.stderr.write(`\rhard cases: ${i + 1}/${n} (${row.id})          `); },
      });
      out.hardCases = rows;
    }
    if (!values.json) process.stderr.write('\n');
    if (values.json) {
      process.stdout.write(`${JSON.stringify(out)}\n`);
    } else {
      process.stdout.write(`${probeTable(results, baseline)}\n${verdictLines(judgement)}\n`);
      if (out.hardCases) process.stdout.write(`hard cases (each on a throwaway stack; the workspace is untouched):\n${hardCaseTable(out.hardCases as HardCaseRow[])}\n`);
    }
  } finally {
    db.close();
  }
}
