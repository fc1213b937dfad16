// What `graft info` and the Models screen show about a GGUF: architecture, dimensions,
// types, identity, and whether Graft can edit it (with the reason when it cannot).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';

import { getArrayLength, getInteger, getString, metadataOf, type Metadata } from '../gguf/metadata.ts';
import type { GgufInspection, GraftNative } from '../native/binding.ts';
import { statSignature } from '../util/fileSignature.ts';
import { fileTypeName, isEditableArchitecture } from './architectures.ts';

export interface ModelInfo {
  path: string;
  fileName: string;
  size: number;
  sha256: string | null;
  ggufVersion: number;
  architecture: string | null;
  name: string | null;
  layers: number | null;
  nEmbd: number | null;
  nFf: number | null;
  nHead: number | null;
  nHeadKv: number | null;
  vocabSize: number | null;
  contextLength: number | null;
  fileType: string | null;
  parameterCount: number;
  tensorCount: number;
  ffnDownTypes: Record<string, string>;
  editable: boolean;
  notEditableReason: string | null;
}

// Within one process a model is hashed once while its signature stays the same (the app and a
// sequence of edits would otherwise reread gigabytes per step).
const hashedInProcess = new Map<string, { signature: string; sha256: string }>();

export async function sha256OfFile(file: string): Promise<string> {
  const resolved = path.resolve(file);
  const before = statSignature(resolved);
  const known = hashedInProcess.get(resolved);
  if (known?.signature === before) return known.sha256;
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(resolved, { highWaterMark: 4 << 20 })) hash.update(chunk as Buffer);
  const sha256 = hash.digest('hex');
  if (statSignature(resolved) === before) hashedInProcess.set(resolved, { signature: before, sha256 });
  return sha256;
}

// Reads and digests on a worker thread, so hashing a large file overlaps with work on the
// main thread and in native code (an export hashes its output while it is verified).
const hashWorkerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { createHash } = require('node:crypto');
const hash = createHash('sha256');
const fd = fs.openSync(workerData, 'r');
const buffer = Buffer.allocUnsafe(8 << 20);
try {
  for (let n; (n = fs.readSync(fd, buffer, 0, buffer.length, null)) > 0;) hash.update(buffer.subarray(0, n));
} finally {
  fs.closeSync(fd);
}
parentPort.postMessage(hash.digest('hex'));
`;

export function sha256OfFileInWorker(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(hashWorkerSource, { eval: true, workerData: path.resolve(file) });
    worker.once('message', (sha: string) => resolve(sha));
    worker.once('error', reject);
    worker.once('exit', (code) => { if (code !== 0) reject(new Error(`hashing ${file} stopped with code ${code}`)); });
  });
}

function vocabularySize(meta: Metadata, arch: string | null, inspection: GgufInspection): number | null {
  const declared = arch ? getInteger(meta, `${arch}.vocab_size`) : undefined;
  if (declared !== undefined) return declared;
  const tokens = getArrayLength(meta, 'tokenizer.ggml.tokens');
  if (tokens !== undefined) return tokens;
  const embd = inspection.tensors.find((t) => t.name === 'token_embd.weight');
  return embd?.shape[1] ?? null;
}

function fileTypeOf(meta: Metadata, inspection: GgufInspection): string | null {
  const declared = getInteger(meta, 'general.file_type');
  if (declared !== undefined) return fileTypeName(declared);
  // Older files omit general.file_type: name the type holding most of the weights.
  const bytesByType = new Map<string, number>();
  for (const t of inspection.tensors) {
    if (t.shape.length >= 2) bytesByType.set(t.type, (bytesByType.get(t.type) ?? 0) + t.size);
  }
  const top = [...bytesByType.entries()].sort((a, b) => b[1] - a[1])[0];
  return top ? `${top[0].toUpperCase()} (guessed)` : null;
}

function editability(info: Omit<ModelInfo, 'editable' | 'notEditableReason'>, inspection: GgufInspection): string | null {
  const arch = info.architecture;
  if (!arch) return 'the file has no general.architecture, so it is not a model llama.cpp can run';
  if (inspection.tensors.some((t) => /^blk\.\d+\.ffn_down_exps\./.test(t.name))) {
    return `'${arch}' is a mixture-of-experts model; Graft edits dense MLPs only`;
  }
  if (!isEditableArchitecture(arch)) {
    return `architecture '${arch}' is not supported yet (Graft edits the llama, mistral, qwen2 and qwen3 families)`;
  }
  const missing = (['layers', 'nEmbd', 'nFf', 'nHead'] as const).filter((k) => info[k] === null || info[k]! <= 0);
  if (missing.length) {
    const keys: Record<string, string> = { layers: 'block_count', nEmbd: 'embedding_length', nFf: 'feed_forward_length', nHead: 'attention.head_count' };
    return `required metadata is missing or invalid: ${missing.map((k) => `${arch}.${keys[k]}`).join(', ')}`;
  }
  const byName = new Map(inspection.tensors.map((t) => [t.name, t]));
  for (let layer = 0; layer < info.layers!; layer++) {
    const name = `blk.${layer}.ffn_down.weight`;
    const tensor = byName.get(name);
    if (!tensor) return `tensor ${name} is missing`;
    if (tensor.shape[0] !== info.nFf || tensor.shape[1] !== info.nEmbd) {
      return `tensor ${name} has shape [${tensor.shape.join(', ')}], expected [${info.nFf}, ${info.nEmbd}]`;
    }
  }
  return null;
}

export async function describeModel(native: GraftNative, modelPath: string, options: { sha256?: boolean } = {}): Promise<ModelInfo> {
  const inspection = native.inspect(modelPath, { maxArrayValues: 0 });
  const meta = metadataOf(inspection);
  const architecture = getString(meta, 'general.architecture') ?? null;
  const hp = (key: string) => (architecture ? getInteger(meta, `${architecture}.${key}`) ?? null : null);
  const ffnDownTypes: Record<string, string> = {};
  for (const t of inspection.tensors) {
    if (/^blk\.\d+\.ffn_down\.weight$/.test(t.name)) ffnDownTypes[t.name] = t.type;
  }
  const base = {
    path: path.resolve(modelPath),
    fileName: path.basename(modelPath),
    size: inspection.fileSize,
    sha256: options.sha256 === false ? null : await sha256OfFile(modelPath),
    ggufVersion: inspection.version,
    architecture,
    name: getString(meta, 'general.name') ?? null,
    layers: hp('block_count'),
    nEmbd: hp('embedding_length'),
    nFf: hp('feed_forward_length'),
    nHead: hp('attention.head_count'),
    nHeadKv: hp('attention.head_count_kv') ?? hp('attention.head_count'),
    vocabSize: vocabularySize(meta, architecture, inspection),
    contextLength: hp('context_length'),
    fileType: fileTypeOf(meta, inspection),
    parameterCount: inspection.tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0),
    tensorCount: inspection.tensors.length,
    ffnDownTypes,
  };
  const reason = editability(base, inspection);
  return { ...base, editable: reason === null, notEditableReason: reason };
}
