// The collapse watch on a workspace: the probes on the base (once per configuration, then
// reused) and on the base with the enabled edits, turned into a verdict with the preflight
// signals and the norm growth of every edited matrix; stored with its numbers and thresholds.
// A collapsed edit is switched off unless the researcher turned that off.
import path from 'node:path';

import type Database from 'better-sqlite3';

import { enabledStack, layerFactors } from '../export/editStack.ts';
import { stackAdapter } from '../export/stackAdapterCache.ts';
import type { GraftNative } from '../native/binding.ts';
import { baselineRun, markAutoDisabled, recordProbeRun, type Verdict } from '../store/probeRuns.ts';
import { getEdit, getModel, type ModelRecord, type WorkspaceRecord } from '../store/repository.ts';
import { normGrowth, type NormGrowth } from './normGrowth.ts';
import { configIdentity, configSha256, measure, type MeasureOptions, type ProbeConfig, type ProbeResults } from './probeSuite.ts';
import { defaultThresholds, judge, type Judgement, type Signals, type Thresholds } from './verdict.ts';

export interface WatchOptions extends Omit<MeasureOptions, 'modelKey' | 'cacheDir'> {
  /** the edit this run judges (its preflight signals join the verdict; it is disabled if collapsed) */
  editId?: number;
  thresholds?: Thresholds;
  /** default true */
  autoDisable?: boolean;
}

export interface WatchResult {
  runId: number;
  verdict: Verdict;
  judgement: Judgement;
  results: ProbeResults;
  baseline: ProbeResults;
  baselineReused: boolean;
  normGrowth: NormGrowth[];
  editSet: number[];
  autoDisabled: boolean;
}

function cacheDirOf(db: Database.Database): string {
  return path.join(path.dirname(db.name), 'probe-cache');
}

/** The base model's probe results for this configuration: stored once, then reused. */
export async function baselineOf(native: GraftNative, db: Database.Database, model: ModelRecord, config: ProbeConfig, o: Omit<MeasureOptions, 'modelKey' | 'cacheDir'> = {}): Promise<{ results: ProbeResults; reused: boolean }> {
  const sha = configSha256(config);
  const known = baselineRun(db, model.id, sha);
  if (known) return { results: known.results as ProbeResults, reused: true };
  const results = await measure(native, model.path, null, config, { ...o, modelKey: model.sha256, cacheDir: cacheDirOf(db) });
  recordProbeRun(db, { modelId: model.id, workspaceId: null, editId: null, editSet: [], configSha256: sha, config: configIdentity(config), results, verdict: null, judgement: null, seconds: results.seconds });
  return { results, reused: false };
}

/** Signals of a measurement against its baseline (and of an edit's preflight, when given). */
export function signalsOf(results: ProbeResults, baseline: ProbeResults, growth: NormGrowth[], preflight: { relativeUpdateNorm?: number; denominatorCosine?: number } | null): Signals {
  const s: Signals = { sentencePplRatio: results.sentence.meanPpl / baseline.sentence.meanPpl };
  if (results.corpus && baseline.corpus) s.corpusPplRatio = results.corpus.ppl / baseline.corpus.ppl;
  if (results.kl) {
    s.klMean = results.kl.meanKl;
    s.top1Agreement = results.kl.top1Agreement;
  }
  if (growth.length > 0) s.normGrowth = Math.max(...growth.map((g) => g.growth));
  if (typeof preflight?.relativeUpdateNorm === 'number') s.relativeUpdateNorm = preflight.relativeUpdateNorm;
  if (typeof preflight?.denominatorCosine === 'number') s.denominatorCosine = preflight.denominatorCosine;
  return s;
}

export async function watchWorkspace(native: GraftNative, db: Database.Database, workspace: WorkspaceRecord, config: ProbeConfig, o: WatchOptions = {}): Promise<WatchResult> {
  const model = getModel(db, workspace.modelId);
  const measureOptions = { ...(o.threads !== undefined ? { threads: o.threads } : {}), ...(o.signal ? { signal: o.signal } : {}), ...(o.onProgress ? { onProgress: o.onProgress } : {}) };
  const { results: baseline, reused } = await baselineOf(native, db, model, config, measureOptions);
  const stack = enabledStack(db, workspace);
  const adapter = stackAdapter(native, db, workspace);
  const results = adapter.path ? await measure(native, model.path, adapter.path, config, { ...measureOptions, modelKey: model.sha256, cacheDir: cacheDirOf(db) }) : baseline;
  const growth = normGrowth(native, model.path, layerFactors(stack));
  const edit = o.editId !== undefined ? getEdit(db, o.editId) : null;
  const judgement = judge(signalsOf(results, baseline, growth, edit?.preflight as { relativeUpdateNorm?: number; denominatorCosine?: number } | null ?? null), o.thresholds ?? defaultThresholds);
  const runId = recordProbeRun(db, {
    modelId: model.id, workspaceId: workspace.id, editId: o.editId ?? null, editSet: adapter.editIds, configSha256: configSha256(config),
    config: configIdentity(config), results: { ...results, normGrowth: growth }, verdict: judgement.verdict, judgement, seconds: results.seconds,
  });
  let autoDisabled = false;
  if (judgement.verdict === 'collapsed' && edit && edit.enabled && (o.autoDisable ?? true)) {
    markAutoDisabled(db, runId, edit.id);
    autoDisabled = true;
  }
  return { runId, verdict: judgement.verdict, judgement, results, baseline, baselineReused: reused, normGrowth: growth, editSet: adapter.editIds, autoDisabled };
}
