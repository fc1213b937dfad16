// A file's sha256 without reading the file again while it has not changed: the hash is kept
// with the file's stat signature, and any write to the file (which moves its ctime) or a
// replacement (new inode) makes Graft hash it again.
import path from 'node:path';

import type Database from 'better-sqlite3';

import { sha256OfFile } from '../models/modelInfo.ts';
import { statSignature } from '../util/fileSignature.ts';
import { rememberHash, rememberedHash } from './repository.ts';

export async function rememberedSha256(db: Database.Database, file: string): Promise<{ sha256: string; hashed: boolean }> {
  const resolved = path.resolve(file);
  const before = statSignature(resolved);
  const known = rememberedHash(db, resolved, before);
  if (known) return { sha256: known, hashed: false };
  const sha256 = await sha256OfFile(resolved);
  // a file written while it was being read gets no remembered hash
  if (statSignature(resolved) === before) rememberHash(db, resolved, before, sha256);
  return { sha256, hashed: true };
}
