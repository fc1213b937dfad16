// Reading the .moments files the addon writes (format documented in
// native/src/moments_file.h): "GRAFTMOM", u32 version 1, u32 header length H, H bytes of
// "key=value\n" lines, then n_ff × n_ff little-endian f64, row-major.
import fs from 'node:fs';
import path from 'node:path';

export interface MomentsKey {
  modelSha256: string;
  corpusSha256: string;
  layer: number;
  /** Corpus tokens used (the first tokenCount). */
  tokenCount: number;
  /** Chunk length: the context size the corpus ran in. */
  contextSize: number;
}

export interface MomentsHeader extends MomentsKey {
  kind: string;
  matrix: string;
  nFf: number;
  n: number;
}

const MAGIC = 'GRAFTMOM';

/** One file per (model, layer, corpus, token count, chunk length), named from them. */
export function momentsFileName(key: MomentsKey): string {
  return `${key.modelSha256.slice(0, 16)}-L${key.layer}-${key.corpusSha256.slice(0, 16)}-t${key.tokenCount}-c${key.contextSize}.moments`;
}

export function momentsPaths(dir: string, key: MomentsKey): { file: string; checkpoint: string } {
  const file = path.join(dir, momentsFileName(key));
  return { file, checkpoint: `${file}.checkpoint` };
}

function parseHeader(file: string, bytes: Buffer): { header: MomentsHeader; dataOffset: number } {
  if (bytes.length < 16 || bytes.toString('latin1', 0, 8) !== MAGIC) throw new Error(`${file} is not a second-moment file (no GRAFTMOM magic)`);
  const version = bytes.readUInt32LE(8);
  if (version !== 1) throw new Error(`${file} has second-moment format version ${version}; this Graft reads version 1`);
  const length = bytes.readUInt32LE(12);
  if (length % 8 !== 0 || 16 + length > bytes.length) throw new Error(`${file} is not a valid second-moment file: bad header length`);
  const kv = new Map<string, string>();
  for (const line of bytes.toString('utf8', 16, 16 + length).split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) kv.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const int = (key: string) => {
    const v = kv.get(key);
    if (v === undefined || !/^-?\d+$/.test(v)) throw new Error(`${file} is not a valid second-moment file: ${key} is missing or not a number`);
    return Number(v);
  };
  const header: MomentsHeader = {
    kind: kv.get('kind') ?? '', matrix: kv.get('matrix') ?? '', layer: int('layer'), nFf: int('n_ff'), n: int('n'),
    tokenCount: int('token_count'), contextSize: int('context_size'),
    modelSha256: kv.get('model_sha256') ?? '', corpusSha256: kv.get('corpus_sha256') ?? '',
  };
  const expectedSize = 16 + length + header.nFf * header.nFf * 8;
  if (header.nFf <= 0 || bytes.length !== expectedSize) {
    throw new Error(`${file} is truncated or damaged: it should hold ${expectedSize} bytes but has ${bytes.length}`);
  }
  return { header, dataOffset: 16 + length };
}

/** Why a header does not belong to the key, or null when it does. */
export function keyMismatch(header: MomentsHeader, key: MomentsKey): string | null {
  if (header.kind !== 'second-moments' || header.matrix !== 'mean') return `it is a ${header.kind || 'unknown'} file, not finished second moments`;
  if (header.modelSha256 !== key.modelSha256) return `it was computed for another model (sha256 ${header.modelSha256.slice(0, 16)}…, expected ${key.modelSha256.slice(0, 16)}…)`;
  if (header.corpusSha256 !== key.corpusSha256) return `it was computed on another corpus (sha256 ${header.corpusSha256.slice(0, 16)}…, expected ${key.corpusSha256.slice(0, 16)}…)`;
  if (header.layer !== key.layer) return `it holds layer ${header.layer}, not layer ${key.layer}`;
  if (header.tokenCount !== key.tokenCount) return `it was computed on ${header.tokenCount} tokens, not ${key.tokenCount}`;
  if (header.contextSize !== key.contextSize) return `it was computed with context size ${header.contextSize}, not ${key.contextSize}`;
  return null;
}

/** Reads a final .moments file and checks it belongs to `key`; a mismatch is an error. */
export function readMomentsFile(file: string, key?: MomentsKey): { header: MomentsHeader; matrix: Float64Array } {
  const bytes = fs.readFileSync(file);
  const { header, dataOffset } = parseHeader(file, bytes);
  if (key) {
    const why = keyMismatch(header, key);
    if (why) throw new Error(`${file} does not match this request: ${why}; delete it or choose another output folder`);
  }
  const matrix = new Float64Array(header.nFf * header.nFf);
  new Uint8Array(matrix.buffer).set(bytes.subarray(dataOffset));
  return { header, matrix };
}
