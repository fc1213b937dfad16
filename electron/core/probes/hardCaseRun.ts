// The hard-case suite (HardEdit-style): edits known to be dangerous, generated for the loaded
// model from its vocabulary and the researcher's edit, each applied with the researcher's
// settings on a throwaway stack (the workspace's enabled edits plus the case's edits, kept in
// memory and a temporary adapter) and probed against the base. The workspace is not touched.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { RomeHparams } from '../edits/rome.ts';
import { romeEdit } from '../edits/romeEdit.ts';
import type { EditRequest } from '../edits/request.ts';
import { openGraphModel } from '../engine/graphModel.ts';
import { writeOverlayAdapter } from '../export/editStack.ts';
import type { GraftNative } from '../native/binding.ts';
import type { GraphOverlay } from '../native/graphTypes.ts';
import type { Verdict } from '../store/probeRuns.ts';
import { generateHardCases, vocabularyOf, type HardCaseId } from './hardCases.ts';
import { measure, type ProbeConfig, type ProbeResults } from './probeSuite.ts';
import { defaultThresholds, judge, type Thresholds } from './verdict.ts';

export interface HardCaseRow {
  id: HardCaseId;
  title: string;
  why: string;
  edits: number;
  sentencePplRatio: number | null;
  /** edited minus base sentence perplexity */
  deltaPerplexity: number | null;
  klMean: number | null;
  top1Agreement: number | null;
  /** the largest ‖ΔW‖/‖W‖ among the case's edits */
  relativeUpdateNorm: number | null;
  /** the case's edits' own success: P(target) after each edit */
  targetProbability: number[];
  verdict: Verdict | null;
  error: string | null;
  seconds: number;
}

export interface HardCaseOptions {
  model: { path: string; sha256: string };
  request: EditRequest;
  hparams: RomeHparams;
  /** the workspace's enabled edits, which every case starts from */
  stack: GraphOverlay[];
  config: ProbeConfig;
  baseline: ProbeResults;
  seed?: number;
  cases?: HardCaseId[];
  corpus?: string;
  statisticsTokens?: number;
  statisticsDir?: string;
  statisticsFile?: string;
  thresholds?: Thresholds;
  threads?: number;
  signal?: AbortSignal;
  onCase?: (row: HardCaseRow, index: number, total: number) => void;
}

export async function runHardCases(native: GraftNative, o: HardCaseOptions): Promise<HardCaseRow[]> {
  const graph = await openGraphModel(native, o.model.path, { ...(o.threads !== undefined ? { threads: o.threads } : {}) });
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'graft-hard-'));
  try {
    const cases = generateHardCases(vocabularyOf(graph), o.request, { ...(o.seed !== undefined ? { seed: o.seed } : {}) })
      .filter((c) => !o.cases || o.cases.includes(c.id));
    const rows: HardCaseRow[] = [];
    for (const [index, c] of cases.entries()) {
      const started = performance.now();
      const row: HardCaseRow = {
        id: c.id, title: c.title, why: c.why, edits: c.requests.length, sentencePplRatio: null, deltaPerplexity: null, klMean: null, top1Agreement: null,
        relativeUpdateNorm: null, targetProbability: [], verdict: null, error: null, seconds: 0,
      };
      try {
        const overlays = [...o.stack];
        for (const request of c.requests) {
          const r = await romeEdit(native, graph, {
            modelPath: o.model.path, request, hparams: o.hparams, overlays, out: scratch,
            ...(o.corpus ? { corpus: o.corpus } : {}), ...(o.statisticsTokens ? { statisticsTokens: o.statisticsTokens } : {}),
            ...(o.statisticsDir ? { statisticsDir: o.statisticsDir } : {}), ...(o.statisticsFile ? { statisticsFile: o.statisticsFile } : {}), ...(o.signal ? { signal: o.signal } : {}),
          });
          overlays.push({ layer: r.layer, rank: 1, u: r.u, v: r.v });
          row.relativeUpdateNorm = Math.max(row.relativeUpdateNorm ?? 0, r.preflight.relativeUpdateNorm);
          row.targetProbability.push(r.optimisation.targetProbability.after);
        }
        const adapter = path.join(scratch, `${c.id}.gguf`);
        writeOverlayAdapter(native, adapter, graph.info.arch, overlays, `graft hard case ${c.id}`);
        const results = await measure(native, o.model.path, adapter, o.config, {
          modelKey: o.model.sha256, ...(o.threads !== undefined ? { threads: o.threads } : {}), ...(o.signal ? { signal: o.signal } : {}),
        });
        row.sentencePplRatio = results.sentence.meanPpl / o.baseline.sentence.meanPpl;
        row.deltaPerplexity = results.sentence.meanPpl - o.baseline.sentence.meanPpl;
        row.klMean = results.kl?.meanKl ?? null;
        row.top1Agreement = results.kl?.top1Agreement ?? null;
        row.verdict = judge({
          sentencePplRatio: row.sentencePplRatio, ...(row.klMean !== null ? { klMean: row.klMean } : {}),
          ...(row.top1Agreement !== null ? { top1Agreement: row.top1Agreement } : {}), ...(row.relativeUpdateNorm !== null ? { relativeUpdateNorm: row.relativeUpdateNorm } : {}),
        }, o.thresholds ?? defaultThresholds).verdict;
      } catch (error) {
        if (o.signal?.aborted) throw error;
        row.error = error instanceof Error ? error.message : String(error);
      }
      row.seconds = (performance.now() - started) / 1000;
      rows.push(row);
      o.onCase?.(row, index, cases.length);
    }
    return rows;
  } finally {
    graph.dispose();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
