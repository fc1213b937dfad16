// AlphaEdit's null-space projector of a layer's key second moments C = E[k kᵀ]: P projects
// onto the span of C's eigenvectors with eigenvalue < threshold, so that an update Δ P leaves
// the outputs for the preserved keys (almost) unchanged. The eigendecomposition is native
// (nullSpaceBasis) and O(n_ff³), so its result is cached on disk per moments file and
// threshold; P itself is never formed (n_ff² doubles), only applied through the vectors of
// the smaller side.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import type { Matrix } from '../linalg/dense.ts';
import type { GraftNative, NullSpaceBasis } from '../native/binding.ts';

/** The published AlphaEdit default. */
export const DEFAULT_NULL_SPACE_THRESHOLD = 2e-2;

export class NullSpaceProjector {
  /** rank of P: the number of eigenvalues below the threshold */
  readonly dimension: number;
  /** m = vectors.length / n */
  readonly count: number;

  constructor(
    readonly n: number,
    readonly threshold: number,
    /** all n eigenvalues of C, ascending */
    readonly eigenvalues: Float64Array,
    /** P = V Vᵀ ('below') or I − V Vᵀ ('atOrAbove') */
    readonly side: NullSpaceBasis['side'],
    /** m × n row-major, orthonormal rows */
    readonly vectors: Float64Array,
  ) {
    if (eigenvalues.length !== n) throw new Error(`expected ${n} eigenvalues, got ${eigenvalues.length}`);
    if (vectors.length % n !== 0) throw new Error(`the vectors (${vectors.length} values) are not rows of length ${n}`);
    this.count = vectors.length / n;
    const below = eigenvalues.reduce((c, x) => c + (x < threshold ? 1 : 0), 0);
    const expected = side === 'below' ? below : n - below;
    if (this.count !== expected) throw new Error(`${this.count} vectors for the ${side} side, but ${expected} eigenvalues are on it`);
    this.dimension = below;
  }

  static fromBasis(basis: NullSpaceBasis, n: number, threshold: number): NullSpaceProjector {
    return new NullSpaceProjector(n, threshold, basis.eigenvalues, basis.side, basis.vectors);
  }

  /** P x */
  apply(x: ArrayLike<number>): Float64Array {
    const { n, count, vectors } = this;
    if (x.length !== n) throw new Error(`the vector has ${x.length} values, not ${n}`);
    const out = this.side === 'below' ? new Float64Array(n) : Float64Array.from(x);
    const sign = this.side === 'below' ? 1 : -1;
    for (let r = 0; r < count; r++) {
      const o = r * n;
      let s = 0;
      for (let i = 0; i < n; i++) s += vectors[o + i]! * x[i]!;
      s *= sign;
      for (let i = 0; i < n; i++) out[i]! += s * vectors[o + i]!;
    }
    return out;
  }

  /** P X for an n × k matrix X (each column a vector), streaming the vectors once. */
  applyColumns(x: Matrix): Matrix {
    const { n, count, vectors } = this;
    if (x.rows !== n) throw new Error(`the matrix has ${x.rows} rows, not ${n}`);
    const k = x.cols;
    const out = this.side === 'below' ? new Float64Array(n * k) : Float64Array.from(x.data);
    const sign = this.side === 'below' ? 1 : -1;
    const s = new Float64Array(k);
    for (let r = 0; r < count; r++) {
      const o = r * n;
      s.fill(0);
      for (let i = 0; i < n; i++) {
        const v = vectors[o + i]!;
        if (v === 0) continue;
        const row = i * k;
        for (let j = 0; j < k; j++) s[j]! += v * x.data[row + j]!;
      }
      for (let j = 0; j < k; j++) s[j]! *= sign;
      for (let i = 0; i < n; i++) {
        const v = vectors[o + i]!;
        if (v === 0) continue;
        const row = i * k;
        for (let j = 0; j < k; j++) out[row + j]! += v * s[j]!;
      }
    }
    return { rows: n, cols: k, data: out };
  }
}

export interface NullSpaceOptions {
  /** the moments file the matrix was read from: its path, size and mtime key the cache */
  momentsFile: string;
  /** C, n × n row-major */
  matrix: Float64Array;
  n: number;
  threshold: number;
  cacheDir: string;
  /** for the native computation (default 1) */
  threads?: number;
  /** cancels the native computation (the promise rejects) */
  signal?: AbortSignal;
}

// Cache file: header (magic, version, n, m, side, threshold), eigenvalues, vectors, then the
// sha256 of everything before it, so that a truncated or damaged file is detected and recomputed.
const MAGIC = 'GRAFTNSP';
const VERSION = 1;
const HEADER_BYTES = 32;
const DIGEST_BYTES = 32;

/** Where the projector for these options is cached (the file may not exist). */
export function nullSpaceCacheFile(options: Pick<NullSpaceOptions, 'momentsFile' | 'n' | 'threshold' | 'cacheDir'>): string {
  const st = fs.statSync(options.momentsFile);
  const identity = JSON.stringify({
    version: VERSION, file: path.resolve(options.momentsFile), size: st.size, mtimeMs: st.mtimeMs, n: options.n, threshold: options.threshold,
  });
  return path.join(options.cacheDir, `nullspace-${createHash('sha256').update(identity).digest('hex').slice(0, 32)}.bin`);
}

/** The projector for a layer's moments, from the cache when a valid entry exists. */
export async function nullSpaceProjector(native: Pick<GraftNative, 'nullSpaceBasis'>, options: NullSpaceOptions): Promise<NullSpaceProjector> {
  const { matrix, n, threshold, cacheDir } = options;
  if (matrix.length !== n * n) throw new Error(`the matrix has ${matrix.length} values, not ${n} × ${n}`);
  const file = nullSpaceCacheFile(options);
  const cached = await readCache(file, n, threshold);
  if (cached) return cached;
  const basis = await native.nullSpaceBasis(matrix, n, threshold, { threads: options.threads ?? 1, signal: options.signal });
  const projector = NullSpaceProjector.fromBasis(basis, n, threshold);
  await fs.promises.mkdir(cacheDir, { recursive: true });
  await writeCache(file, projector);
  return projector;
}

function header(p: NullSpaceProjector): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  h.write(MAGIC, 0, 'latin1');
  h.writeUInt32LE(VERSION, 8);
  h.writeUInt32LE(p.n, 12);
  h.writeUInt32LE(p.count, 16);
  h.writeUInt32LE(p.side === 'below' ? 0 : 1, 20);
  h.writeDoubleLE(p.threshold, 24);
  return h;
}

function bytesOf(a: Float64Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

async function writeCache(file: string, p: NullSpaceProjector): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const parts = [header(p), bytesOf(p.eigenvalues), bytesOf(p.vectors)];
  const digest = createHash('sha256');
  for (const part of parts) digest.update(part);
  const handle = await fs.promises.open(tmp, 'w');
  try {
    for (const part of [...parts, digest.digest()]) {
      // Chunked: one write call takes at most 2 GiB.
      for (let off = 0; off < part.length;) off += (await handle.write(part, off, Math.min(part.length - off, 1 << 30))).bytesWritten;
    }
    await handle.sync();
    await handle.close();
  } catch (e) {
    await handle.close().catch(() => {});
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
  await fs.promises.rename(tmp, file);
}

// null when the file is missing, truncated, damaged or for other parameters.
async function readCache(file: string, n: number, threshold: number): Promise<NullSpaceProjector | null> {
  let buf: Buffer;
  try {
    buf = await fs.promises.readFile(file);
  } catch {
    return null;
  }
  if (buf.length < HEADER_BYTES + DIGEST_BYTES || buf.toString('latin1', 0, 8) !== MAGIC || buf.readUInt32LE(8) !== VERSION) return null;
  const m = buf.readUInt32LE(16);
  const sideCode = buf.readUInt32LE(20);
  if (buf.readUInt32LE(12) !== n || buf.readDoubleLE(24) !== threshold || sideCode > 1) return null;
  const body = HEADER_BYTES + 8 * (n + m * n);
  if (buf.length !== body + DIGEST_BYTES) return null;
  const digest = createHash('sha256').update(buf.subarray(0, body)).digest();
  if (!digest.equals(buf.subarray(body))) return null;
  // Copies: the file's bytes need not be 8-byte aligned in the Buffer's memory.
  const doubles = (offset: number, count: number) => new Float64Array(buf.buffer.slice(buf.byteOffset + offset, buf.byteOffset + offset + 8 * count));
  try {
    return new NullSpaceProjector(n, threshold, doubles(HEADER_BYTES, n), sideCode === 0 ? 'below' : 'atOrAbove', doubles(HEADER_BYTES + 8 * n, m * n));
  } catch {
    return null;
  }
}
