// A GGUF taken into the history by reference: described from its header, identified by its
// sha256 (remembered with the file's stat signature, so a second import does not reread it),
// and upserted as a model row. `graft probe` and the app's import share this.
import fs from 'node:fs';
import path from 'node:path';

import type Database from 'better-sqlite3';

import type { GraftNative } from '../native/binding.ts';
import { rememberedSha256 } from '../store/fileHashes.ts';
import { upsertModel, type ModelRecord } from '../store/repository.ts';
import { describeModel, type ModelInfo } from './modelInfo.ts';

export async function importModelFile(db: Database.Database, native: GraftNative, modelPath: string): Promise<{ record: ModelRecord; info: ModelInfo }> {
  const resolved = path.resolve(modelPath);
  // the native reader names a folder and a wrong magic itself; a missing path reads better here
  if (!fs.existsSync(resolved)) throw new Error(`${resolved} does not exist; give the path of a .gguf model file`);
  const info = await describeModel(native, resolved, { sha256: false });
  if (!info.architecture || info.layers === null || info.nEmbd === null || info.nFf === null || info.vocabSize === null) {
    throw new Error(`${modelPath} is missing the architecture or dimensions Graft needs (is it a language model GGUF?)`);
  }
  const { sha256 } = await rememberedSha256(db, resolved);
  const record = upsertModel(db, {
    path: resolved, sha256, arch: info.architecture, nLayer: info.layers, nEmbd: info.nEmbd, nFf: info.nFf, nVocab: info.vocabSize,
    fileType: info.fileType ?? null, sizeBytes: info.size,
  });
  return { record, info: { ...info, sha256 } };
}

export async function modelRecordOf(db: Database.Database, native: GraftNative, modelPath: string): Promise<ModelRecord & { contextLength: number }> {
  const { record, info } = await importModelFile(db, native, modelPath);
  return { ...record, contextLength: info.contextLength ?? 512 };
}
