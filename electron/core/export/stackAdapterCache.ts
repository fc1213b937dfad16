// The combined adapter of a workspace's enabled edits, for everything that runs the edited
// model through llama.cpp (chat, comparison, probes). Files are named by the stack's content
// hash, so the adapter is rebuilt only when the enabled set (or an edit's factors) changes,
// and toggling back to an earlier set reuses the earlier file.
import fs from 'node:fs';
import path from 'node:path';

import type Database from 'better-sqlite3';

import type { GraftNative } from '../native/binding.ts';
import { getModel, type WorkspaceRecord } from '../store/repository.ts';
import { enabledStack, stackContentHash, writeStackAdapter } from './editStack.ts';

export interface StackAdapter {
  /** null when no edit is enabled: the base model is the effective model. */
  path: string | null;
  contentHash: string | null;
  editIds: number[];
  rebuilt: boolean;
}

/** Beside the history database unless the caller names a folder. */
export function defaultAdapterCacheDir(db: Database.Database): string {
  return path.join(path.dirname(db.name), 'stack-adapters');
}

export function stackAdapter(native: GraftNative, db: Database.Database, workspace: WorkspaceRecord, cacheDir = defaultAdapterCacheDir(db)): StackAdapter {
  const stack = enabledStack(db, workspace);
  const editIds = stack.map((e) => e.record.id);
  if (stack.length === 0) return { path: null, contentHash: null, editIds, rebuilt: false };
  const arch = getModel(db, workspace.modelId).arch;
  const contentHash = stackContentHash(arch, stack);
  const file = path.join(cacheDir, `${contentHash}.gguf`);
  if (fs.existsSync(file)) return { path: file, contentHash, editIds, rebuilt: false };
  fs.mkdirSync(cacheDir, { recursive: true });
  writeStackAdapter(native, file, arch, stack);  // written under a temporary name, then renamed
  return { path: file, contentHash, editIds, rebuilt: true };
}
