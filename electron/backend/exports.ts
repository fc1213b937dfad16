// The Export screen: a workspace's enabled edits as a LoRA adapter, a patched GGUF, an edit
// log or a model card, verified by exportStack before it is recorded. A relative output path
// lands in <data folder>/exports.
import fs from 'node:fs';
import path from 'node:path';

import type { ExportRow } from '../api/contract.ts';
import { exportStack, requantizeTypes, type RequantizeType } from '../core/export/stackExport.ts';
import { listExports as storedExports, type ExportRecord } from '../core/store/repository.ts';
import { requireLoaded, stillLoaded, type BackendContext } from './context.ts';

function exportRow(r: ExportRecord): ExportRow {
  const v = r.verification as { verified?: boolean; maxDifference?: number; requantization?: { warning?: string } } | null;
  return {
    id: r.id, kind: r.kind, path: r.path, sha256: r.sha256, createdAt: r.createdAt, editIds: r.editIds,
    verified: v?.verified ?? null, maxDifference: v?.maxDifference ?? null, warning: v?.requantization?.warning ?? null,
  };
}

export function listExports(ctx: BackendContext): ExportRow[] {
  if (!ctx.loaded) return [];
  return storedExports(ctx.db, ctx.loaded.workspace.id).map(exportRow);
}

export function startExport(ctx: BackendContext, format: ExportRow['kind'], out: string, options: { requantize?: string } = {}): { jobId: string } {
  const loaded = requireLoaded(ctx, 'export its edits');
  if (!['lora', 'gguf', 'log', 'card'].includes(format)) throw new Error(`the format must be lora, gguf, log or card, got ${JSON.stringify(format)}`);
  if (typeof out !== 'string' || out.trim() === '') throw new Error('give the output file');
  const requantize = options.requantize as RequantizeType | undefined;
  if (requantize !== undefined && !requantizeTypes.includes(requantize)) throw new Error(`cannot re-quantise to ${requantize}; choose one of ${requantizeTypes.join(', ')}`);
  let target = out.trim();
  if (!path.isAbsolute(target)) {
    const dir = path.join(ctx.dataDir, 'exports');
    fs.mkdirSync(dir, { recursive: true });
    target = path.join(dir, target);
  }
  // checked here too (exportStack checks again) so the form says it at once, in the app's words
  if (fs.existsSync(target)) throw new Error(`${target} exists; choose another output path (exports never overwrite a file)`);
  if (!fs.existsSync(path.dirname(target))) throw new Error(`the folder ${path.dirname(target)} does not exist; choose another output path`);
  const jobId = ctx.jobs.start('export', `Export ${format} → ${path.basename(target)}`, async (control) => {
    stillLoaded(ctx, loaded);
    control.progress({ fraction: null, phase: format === 'lora' || format === 'gguf' ? 'writing and verifying in node-llama-cpp' : 'writing' });
    const r = await exportStack(await ctx.native(), ctx.db, loaded.workspace, format, target, requantize ? { requantize } : {});
    if (r.requantization) ctx.logs.push('warn', 'engine', r.requantization.warning);
    return exportRow(storedExports(ctx.db, loaded.workspace.id).find((e) => e.id === r.id)!);
  });
  return { jobId };
}
