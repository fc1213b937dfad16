// The History and Probes screens' rows: the loaded model's workspace, each edit with the
// request metrics it recorded and the numbers of the latest probe run that judged it, and the
// batch runs with their curves.
import path from 'node:path';

import type {
  BatchRunRow, EditDetail, EditMethod, EditRequestInput, EditRow, ProbeRunRow, RequestResult, RequestScores, ResultSummary, Verdict,
} from '../api/contract.ts';
import { summaryOf, type MetricsSummary, type RequestMetrics } from '../core/edits/recordedEdit.ts';
import type { EditMetrics } from '../core/edits/metrics.ts';
import type { EditRequest } from '../core/edits/request.ts';
import type { ProbeResults } from '../core/probes/probeSuite.ts';
import type { Judgement } from '../core/probes/verdict.ts';
import { addNote as storeNote, notesOf, setTags as storeTags, tagsOf } from '../core/store/annotations.ts';
import { curvePoints, listBatchRuns as storedBatchRuns } from '../core/store/batchRuns.ts';
import { probeRunsOfEdit, probeRunsOfWorkspace, type ProbeRunRecord } from '../core/store/probeRuns.ts';
import { getEdit as storedEdit, listEdits as storedEdits, moveEdit as storeMove, setEnabled as storeEnabled, type EditRecord } from '../core/store/repository.ts';
import type { BackendContext } from './context.ts';

export function requestInput(r: EditRequest): EditRequestInput {
  return {
    prompt: r.prompt, subject: r.subject, targetNew: r.targetNew, ...(r.targetTrue !== undefined ? { targetTrue: r.targetTrue } : {}),
    paraphrases: r.paraphrasePrompts, neighbours: r.neighborhoodPrompts,
  };
}

export function probeRunRow(r: ProbeRunRecord): ProbeRunRow {
  const results = r.results as ProbeResults;
  const judgement = r.judgement as Judgement | null;
  return {
    id: r.id, editId: r.editId, editSet: r.editSet, createdAt: r.createdAt, verdict: r.verdict,
    sentencePpl: results.sentence.meanPpl, corpusPpl: results.corpus?.ppl ?? null,
    klMean: results.kl?.meanKl ?? null, klP99: results.kl?.p99Kl ?? null, top1Agreement: results.kl?.top1Agreement ?? null,
    thresholds: judgement ? Object.fromEntries(Object.entries(judgement.thresholds).map(([k, t]) => [k, [t.degraded, t.collapsed] as [number, number]])) : null,
    reasons: judgement ? judgement.reasons.map((x) => ({ signal: x.signal, value: x.value, level: x.level })) : [],
  };
}

// without a true target the CounterFact comparison P(new) > P(true) is undefined (NaN)
const score = (s: { probabilityScore: number } | null | undefined) => (s && Number.isFinite(s.probabilityScore) ? s.probabilityScore : null);
const finite = (x: number | null | undefined) => (typeof x === 'number' && Number.isFinite(x) ? x : null);

export function requestScores(m: EditMetrics): RequestScores {
  return {
    pNew: m.efficacy.pNew, pTrue: finite(m.efficacy.pTrue),
    efficacy: score(m.efficacy), paraphrase: score(m.paraphrase), neighbourhood: score(m.neighbourhood),
    efficacyAccuracy: finite(m.efficacy.tokenAccuracy), paraphraseAccuracy: finite(m.paraphrase?.tokenAccuracy), neighbourhoodAccuracy: finite(m.neighbourhood?.tokenAccuracy),
  };
}

export function resultSummary(s: MetricsSummary): ResultSummary {
  return {
    requests: s.requests, efficacy: s.efficacy, paraphrase: s.paraphrase, neighbourhood: s.neighbourhood,
    efficacyAccuracy: s.efficacyTokenAccuracy, paraphraseAccuracy: s.paraphraseTokenAccuracy, neighbourhoodAccuracy: s.neighbourhoodTokenAccuracy,
  };
}

export function requestResults(requests: EditRequestInput[], metrics: RequestMetrics[]): RequestResult[] {
  return metrics.map((m, i) => ({ request: requests[i]!, before: requestScores(m.before), after: requestScores(m.after) }));
}

/** ROME records one request and `{before, after}`; the batch methods a list and `{requests, summary}`. */
function recorded(e: EditRecord): { requests: EditRequestInput[]; metrics: RequestMetrics[]; summary: MetricsSummary | null } {
  const requests = (Array.isArray(e.request) ? e.request as EditRequest[] : [e.request as EditRequest]).map(requestInput);
  const m = e.metrics as { before?: EditMetrics; after?: EditMetrics; requests?: RequestMetrics[]; summary?: MetricsSummary } | null;
  if (m?.requests) return { requests, metrics: m.requests, summary: m.summary ?? null };
  return { requests, metrics: m?.before && m.after ? [{ before: m.before, after: m.after }] : [], summary: null };
}

function editRow(ctx: BackendContext, e: EditRecord): EditRow {
  const { requests, metrics, summary } = recorded(e);
  const after = metrics.length === 1 ? requestScores(metrics[0]!.after) : null;
  const run = probeRunsOfEdit(ctx.db, e.id).at(-1);
  const ratio = (run?.judgement as Judgement | null | undefined)?.signals.sentencePplRatio;
  return {
    id: e.id, position: e.position, createdAt: e.createdAt, method: e.method, layers: e.layers, status: e.status, enabled: e.enabled,
    request: requests[0]!, requestCount: requests.length,
    efficacy: summary?.efficacy ?? after?.efficacy ?? null, paraphrase: summary?.paraphrase ?? after?.paraphrase ?? null,
    neighbourhood: summary?.neighbourhood ?? after?.neighbourhood ?? null,
    deltaPerplexity: ratio === undefined ? null : ratio - 1,
    klMean: (run?.results as ProbeResults | undefined)?.kl?.meanKl ?? null,
    verdict: (run?.verdict ?? null) as Verdict | null,
    error: e.error, tags: tagsOf(ctx.db, e.id),
  };
}

/** An edit of another workspace is not the loaded model's business: refused by id, not by accident. */
function ownEdit(ctx: BackendContext, id: number): EditRecord {
  const e = storedEdit(ctx.db, id);
  if (ctx.loaded && e.workspaceId !== ctx.loaded.workspace.id) throw new Error(`edit ${id} belongs to another model's workspace; load that model to work on it`);
  return e;
}

export function listEdits(ctx: BackendContext): EditRow[] {
  if (!ctx.loaded) return [];
  return storedEdits(ctx.db, ctx.loaded.workspace.id).map((e) => editRow(ctx, e));
}

export function editDetail(ctx: BackendContext, id: number): EditDetail {
  const e = storedEdit(ctx.db, id);
  const { requests, metrics, summary } = recorded(e);
  return {
    ...editRow(ctx, e),
    requests, results: requestResults(requests, metrics),
    summary: summary ? resultSummary(summary) : metrics.length === 1 ? resultSummary(summaryOf(metrics)) : null,
    hparams: (e.hparams ?? {}) as Record<string, unknown>, templates: e.templates,
    preflight: e.preflight as Record<string, unknown> | null, metrics: e.metrics as Record<string, unknown> | null,
    timings: e.timings as Record<string, number> | null, computedOn: e.computedOn,
    notes: notesOf(ctx.db, id), probeRuns: probeRunsOfEdit(ctx.db, id).map(probeRunRow),
  };
}

export function getEdit(ctx: BackendContext, id: number): EditDetail {
  ownEdit(ctx, id);
  return editDetail(ctx, id);
}

export function setEnabled(ctx: BackendContext, id: number, enabled: boolean): { warning: string | null } {
  ownEdit(ctx, id);
  const r = storeEnabled(ctx.db, id, enabled);
  ctx.events.emit('historyChanged');
  return r;
}

export function moveEdit(ctx: BackendContext, id: number, position: number): { warning: string | null } {
  ownEdit(ctx, id);
  const { warning } = storeMove(ctx.db, id, position);
  ctx.events.emit('historyChanged');
  return { warning };
}

export function addNote(ctx: BackendContext, editId: number, body: string): void {
  ownEdit(ctx, editId);
  storeNote(ctx.db, editId, body);
  ctx.events.emit('historyChanged');
}

export function setTags(ctx: BackendContext, editId: number, tags: string[]): void {
  if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string')) throw new Error('tags must be a list of strings');
  ownEdit(ctx, editId);
  storeTags(ctx.db, editId, tags);
  ctx.events.emit('historyChanged');
}

export function listProbeRuns(ctx: BackendContext): ProbeRunRow[] {
  if (!ctx.loaded) return [];
  return probeRunsOfWorkspace(ctx.db, ctx.loaded.workspace.id).map(probeRunRow);
}

export function listBatchRuns(ctx: BackendContext): BatchRunRow[] {
  if (!ctx.loaded) return [];
  return storedBatchRuns(ctx.db, ctx.loaded.workspace.id).map((r) => ({
    id: r.id, method: r.method as EditMethod, fileName: path.basename(r.requestsPath), requestCount: r.requestCount, batchSize: r.batchSize,
    sequential: r.sequential, status: r.status, error: r.error, createdAt: r.createdAt, finishedAt: r.finishedAt,
    batches: r.batches.length, batchesDone: r.batches.filter((b) => b.status === 'done').length, curve: curvePoints(ctx.db, r.id),
  }));
}
