// The Models screen: GGUFs imported by reference (never copied), whether each file is still
// there unchanged, a RAM/VRAM estimate from node-llama-cpp before loading, and loading one
// model at a time (node-llama-cpp for generation, Graft's own graph for edits). The model's
// workspace is named after its file, as `graft edit` names it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { LoadEstimate, LoadedModel, ModelRow } from '../api/contract.ts';
import { openGraphModel } from '../core/engine/graphModel.ts';
import { getSharedLlama } from '../core/models/llama.ts';
import { describeModel, type ModelInfo } from '../core/models/modelInfo.ts';
import { importModelFile } from '../core/models/modelRecord.ts';
import { listModels as storedModels, getModel, listWorkspaces, offeredDemoModel, rememberedSignature, workspaceFor, type ModelRecord } from '../core/store/repository.ts';
import { statSignature } from '../core/util/fileSignature.ts';
import type { BackendContext } from './context.ts';

// describing a file reads its header; the Models table is listed often, the files rarely change
const described = new Map<string, { signature: string; info: ModelInfo }>();

async function describeCached(ctx: BackendContext, file: string): Promise<ModelInfo> {
  const signature = statSignature(file);
  const hit = described.get(file);
  if (hit?.signature === signature) return hit.info;
  const info = await describeModel(await ctx.native(), file, { sha256: false });
  described.set(file, { signature, info });
  return info;
}

function rowOf(ctx: BackendContext, record: ModelRecord, info: ModelInfo | null, available: boolean): ModelRow {
  return {
    id: record.id, path: record.path, fileName: path.basename(record.path), sha256: record.sha256,
    architecture: info?.architecture ?? record.arch, parameterCount: info?.parameterCount ?? 0, fileType: info?.fileType ?? record.fileType,
    sizeBytes: info?.size ?? record.sizeBytes, contextLength: info?.contextLength ?? null, layers: info?.layers ?? record.nLayer,
    nEmbd: info?.nEmbd ?? record.nEmbd, nFf: info?.nFf ?? record.nFf, vocabSize: info?.vocabSize ?? record.nVocab,
    editable: available && (info?.editable ?? false),
    notEditableReason: !available ? 'the file is missing or changed since it was imported; import it again' : info?.notEditableReason ?? null,
    available, demo: offeredDemoModel(ctx.db)?.sha256 === record.sha256,
  };
}

/** The file is where it was and unchanged: its stat signature is the one its sha256 was remembered with. */
export function isAvailable(ctx: BackendContext, record: ModelRecord): boolean {
  if (!fs.existsSync(record.path)) return false;
  const remembered = rememberedSignature(ctx.db, record.path);
  return remembered !== null && remembered.sha256 === record.sha256 && remembered.signature === statSignature(record.path);
}

export async function listModels(ctx: BackendContext): Promise<ModelRow[]> {
  const rows: ModelRow[] = [];
  for (const record of storedModels(ctx.db)) {
    const available = isAvailable(ctx, record);
    rows.push(rowOf(ctx, record, available ? await describeCached(ctx, record.path).catch(() => null) : null, available));
  }
  return rows;
}

export async function importModel(ctx: BackendContext, file: string): Promise<ModelRow> {
  if (typeof file !== 'string' || file.trim() === '') throw new Error('give the path of a .gguf model file');
  const resolved = path.resolve(file.trim());
  if (fs.existsSync(resolved) && fs.statSync(resolved).isDirectory()) throw new Error(`${resolved} is a folder; choose a .gguf file inside it`);
  const { record, info } = await importModelFile(ctx.db, await ctx.native(), resolved);
  described.set(record.path, { signature: statSignature(record.path), info });
  ctx.logs.push('info', 'app', `imported ${record.path} (${info.architecture}, sha256 ${record.sha256.slice(0, 12)}…)`);
  return rowOf(ctx, record, info, true);
}

function usableRecord(ctx: BackendContext, modelId: number): ModelRecord {
  const record = getModel(ctx.db, modelId);
  if (!isAvailable(ctx, record)) throw new Error(`${record.path} is missing or changed since it was imported; import it again`);
  return record;
}

/** What loading would take with this many layers on the GPU, and what the machine has free. */
export async function estimateLoad(ctx: BackendContext, modelId: number, gpuLayers: number | 'auto' | 'max'): Promise<LoadEstimate> {
  const record = usableRecord(ctx, modelId);
  const llama = await getSharedLlama();
  const { GgufInsights, readGgufFileInfo } = await import('node-llama-cpp');
  const insights = await GgufInsights.from(await readGgufFileInfo(record.path), llama);
  const total = insights.totalLayers;
  const layers = await resolveGpuLayers(llama, insights, gpuLayers);
  const need = await insights.estimateModelResourceRequirementsV2({ gpuLayers: layers });
  const vram = llama.gpu === false ? { free: 0 } : await llama.getVramState();
  const freeRam = Math.max((await llama.getRamState()).free, os.freemem());
  return {
    gpuLayers: layers, totalLayers: total, cpuRamBytes: need.cpuRam, gpuVramBytes: need.gpuVram,
    freeRamBytes: freeRam, freeVramBytes: vram.free, fits: need.cpuRam <= freeRam && need.gpuVram <= vram.free,
  };
}

type Llama = Awaited<ReturnType<typeof getSharedLlama>>;
type Insights = Awaited<ReturnType<typeof import('node-llama-cpp')['GgufInsights']['from']>>;

async function resolveGpuLayers(llama: Llama, insights: Insights, gpuLayers: number | 'auto' | 'max'): Promise<number> {
  // without a GPU backend every layer stays on the CPU, whatever was asked
  if (llama.gpu === false) return 0;
  if (gpuLayers === 'max') return insights.totalLayers;
  if (gpuLayers === 'auto') {
    return (await insights.configurationResolver.resolveModelGpuLayersV2('auto', { getVramState: () => llama.getVramState() })).gpuLayers;
  }
  if (!Number.isInteger(gpuLayers) || gpuLayers < 0) throw new Error(`GPU layers must be 'auto', 'max' or a whole number from 0 to ${insights.totalLayers}, got ${JSON.stringify(gpuLayers)}`);
  return Math.min(gpuLayers, insights.totalLayers);
}

/** The workspace of a model: its file name, or the name with the model's hash when another model has that name. */
function workspaceOf(ctx: BackendContext, record: ModelRecord) {
  const name = path.basename(record.path, '.gguf');
  const taken = listWorkspaces(ctx.db).find((w) => w.name === name && w.modelId !== record.id);
  return workspaceFor(ctx.db, taken ? `${name}-${record.sha256.slice(0, 8)}` : name, record.id);
}

export async function disposeLoaded(ctx: BackendContext): Promise<void> {
  const loaded = ctx.loaded;
  ctx.loaded = null;
  if (!loaded) return;
  loaded.graph?.dispose();
  await loaded.model.dispose();
}

export function loadModel(ctx: BackendContext, modelId: number, gpuLayers: number | 'auto' | 'max'): { jobId: string } {
  const record = usableRecord(ctx, modelId);
  const jobId = ctx.jobs.start('load', `Load ${path.basename(record.path)}`, async (control) => {
    await disposeLoaded(ctx);
    const llama = await getSharedLlama();
    const info = await describeCached(ctx, record.path);
    const { GgufInsights, readGgufFileInfo } = await import('node-llama-cpp');
    const insights = await GgufInsights.from(await readGgufFileInfo(record.path), llama);
    const layers = await resolveGpuLayers(llama, insights, gpuLayers);
    control.progress({ fraction: 0, phase: 'loading the weights' });
    const model = await llama.loadModel({
      modelPath: record.path, gpuLayers: layers, loadSignal: control.signal,
      onLoadProgress: (p) => control.progress({ fraction: 0.9 * p }),
    });
    try {
      let graph = null;
      if (info.editable) {
        control.progress({ fraction: 0.9, phase: 'opening the graph for edits' });
        const settings = ctx.settings.get();
        graph = await openGraphModel(await ctx.native(), record.path, { threads: settings.threads, gpu: settings.gpu !== 'off' });
      }
      ctx.loaded = { record, info, model, graph, workspace: workspaceOf(ctx, record), backend: llama.gpu || 'cpu', totalLayers: insights.totalLayers };
    } catch (error) {
      await model.dispose();
      throw error;
    }
    ctx.logs.push('info', 'app', `loaded ${record.path} (${ctx.loaded.backend}, ${model.gpuLayers}/${insights.totalLayers} layers on the GPU)`);
    return loadedModel(ctx);
  });
  return { jobId };
}

export function loadedModel(ctx: BackendContext): LoadedModel | null {
  const l = ctx.loaded;
  if (!l) return null;
  return {
    modelId: l.record.id, path: l.record.path, fileName: path.basename(l.record.path), backend: l.backend,
    gpuLayers: l.model.gpuLayers, totalLayers: l.totalLayers, memoryBytes: l.model.size, workspace: l.workspace.name,
  };
}
