// The Probes screen's jobs: the collapse watch on the workspace's enabled edits, and the
// hard-case suite built from one recorded edit (its request, settings and second moments, as
// `graft probe --hard` uses them), each case on a throwaway stack.
import type { HardCaseRow, ProbeRunRow } from '../api/contract.ts';
import type { EditRequest } from '../core/edits/request.ts';
import { romeDefaults, type RomeHparams } from '../core/edits/rome.ts';
import { baselineOf, watchWorkspace } from '../core/probes/collapseWatch.ts';
import { runHardCases } from '../core/probes/hardCaseRun.ts';
import { probeConfig } from '../core/probes/probeConfig.ts';
import { probeRunsOfWorkspace } from '../core/store/probeRuns.ts';
import { enabledOverlays, getEdit, statisticsOf } from '../core/store/repository.ts';
import { requireLoaded, stillLoaded, type BackendContext } from './context.ts';
import { probeRunRow } from './history.ts';

export function startProbes(ctx: BackendContext, options: { corpus?: string; kl?: boolean } = {}): { jobId: string } {
  const loaded = requireLoaded(ctx, 'probe it');
  const jobId = ctx.jobs.start('probe', `Collapse watch on ${loaded.workspace.name}`, async (control): Promise<ProbeRunRow> => {
    stillLoaded(ctx, loaded);
    const config = await probeConfig({ kl: options.kl ?? true, ...(options.corpus ? { corpus: options.corpus } : {}) }, loaded.info.contextLength ?? 512);
    const w = await watchWorkspace(await ctx.native(), ctx.db, loaded.workspace, config, {
      thresholds: ctx.settings.thresholds(), threads: ctx.settings.get().threads, signal: control.signal,
      // a run the researcher starts judges the stack; switching edits off stays their decision
      autoDisable: false,
      onProgress: (p) => control.progress({ fraction: p.done / Math.max(1, p.total), phase: `${p.probe} ${p.done}/${p.total}` }),
    });
    ctx.events.emit('historyChanged');
    return probeRunRow(probeRunsOfWorkspace(ctx.db, loaded.workspace.id).find((r) => r.id === w.runId)!);
  });
  return { jobId };
}

export function startHardCases(ctx: BackendContext, editId: number): { jobId: string } {
  const loaded = requireLoaded(ctx, 'run the hard cases');
  const source = getEdit(ctx.db, editId);
  if (source.workspaceId !== loaded.workspace.id) throw new Error(`edit ${editId} belongs to another model's workspace`);
  if (source.status !== 'done') throw new Error(`edit ${editId} is ${source.status}; the hard cases are built from a completed edit`);
  if (source.method !== 'rome') throw new Error(`edit ${editId} is a ${source.method} edit; the hard cases are built from a ROME edit (its request and settings are the template)`);
  const jobId = ctx.jobs.start('hard-cases', `Hard cases from edit ${editId}`, async (control): Promise<HardCaseRow[]> => {
    stillLoaded(ctx, loaded);
    const native = await ctx.native();
    const threads = ctx.settings.get().threads;
    const config = await probeConfig({}, loaded.info.contextLength ?? 512);
    control.progress({ fraction: 0, phase: 'the base model\'s probes' });
    const { results: baseline } = await baselineOf(native, ctx.db, loaded.record, config, { threads, signal: control.signal });
    const statistics = statisticsOf(ctx.db, editId)[0];
    const rows = await runHardCases(native, {
      model: { path: loaded.record.path, sha256: loaded.record.sha256 }, request: source.request as EditRequest,
      hparams: { ...romeDefaults(loaded.record.nLayer), ...(source.hparams as Partial<RomeHparams>) }, stack: enabledOverlays(ctx.db, loaded.workspace.id),
      // the second moments the template edit used, so the cases are computed the same way
      ...(statistics ? { statisticsFile: statistics.path } : {}),
      config, baseline, thresholds: ctx.settings.thresholds(), threads, signal: control.signal,
      onCase: (row, i, n) => control.progress({ fraction: (i + 1) / n, phase: `case ${i + 1}/${n}: ${row.title}` }),
    });
    return rows.map((r) => ({
      id: r.id, title: r.title, why: r.why, edits: r.edits, sentencePplRatio: r.sentencePplRatio, klMean: r.klMean,
      top1Agreement: r.top1Agreement, verdict: r.verdict, error: r.error,
    }));
  });
  return { jobId };
}
