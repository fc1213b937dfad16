import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { matrix, symmetricEigen } from '../linalg/dense.ts';
import { loadNative, type GraftNative, type NullSpaceBasis } from '../native/binding.ts';
import { tempDir } from '../testing/fixtures.ts';
import { NullSpaceProjector, nullSpaceCacheFile, nullSpaceProjector } from './nullSpace.ts';
import { SeededRandom } from '../util/seededRandom.ts';

const THRESHOLD = 2e-2;

function rng(seed: number): () => number {
  const r = new SeededRandom(seed);
  return () => r.next();
}

function gaussian(random: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

/**
 * C = Q diag(λ) Qᵀ with Q a product of n random Householder reflectors; returns C and Q's
 * columns (the exact eigenvectors), both row-major n × n.
 */
function knownSpectrum(lambda: number[], seed: number, reflectors = lambda.length): { c: Float64Array; q: Float64Array } {
  const n = lambda.length;
  const normal = gaussian(rng(seed));
  const c = new Float64Array(n * n);
  const q = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    c[i * n + i] = lambda[i]!;
    q[i * n + i] = 1;
  }
  const u = new Float64Array(n), w = new Float64Array(n), t = new Float64Array(n);
  for (let r = 0; r < reflectors; r++) {
    let norm = 0;
    for (let i = 0; i < n; i++) norm += (u[i] = normal()) ** 2;
    norm = Math.sqrt(norm);
    for (let i = 0; i < n; i++) u[i]! /= norm;
    // C ← H C H with H = I − 2uuᵀ: C − 2u wᵀ − 2w uᵀ + 4(uᵀw) u uᵀ, w = C u.
    let uw = 0;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += c[i * n + j]! * u[j]!;
      w[i] = s;
      uw += u[i]! * s;
    }
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) c[i * n + j]! += -2 * u[i]! * w[j]! - 2 * w[i]! * u[j]! + 4 * uw * u[i]! * u[j]!;
    }
    // Q ← H Q
    t.fill(0);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) t[j]! += u[i]! * q[i * n + j]!;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) q[i * n + j]! -= 2 * u[i]! * t[j]!;
  }
  // Exactly symmetric, as moments accumulated in double are.
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) c[j * n + i] = c[i * n + j]!;
  return { c, q };
}

/** A spectrum with a share `below` under the threshold: exact zeros, repeated values, a decay above. */
function spectrum(n: number, below: number): number[] {
  const nBelow = Math.round(n * below);
  const out: number[] = [];
  for (let i = 0; i < nBelow; i++) out.push(i < nBelow / 2 ? 0 : i % 3 === 0 ? 4e-3 : 1e-12 * i);
  for (let i = nBelow; i < n; i++) out.push(i % 4 === 0 ? 0.5 : 0.05 + 10 * Math.exp(-(i - nBelow) / 20));
  return out;
}

function matVec(c: Float64Array, n: number, x: ArrayLike<number>): Float64Array {
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += c[i * n + j]! * x[j]!;
    y[i] = s;
  }
  return y;
}

function norm(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! ** 2;
  return Math.sqrt(s);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** P x from explicit eigenvector columns (column j of `vectors`, n × n) with eigenvalue < threshold. */
function referenceProjection(values: ArrayLike<number>, vectors: Float64Array, n: number, x: ArrayLike<number>): Float64Array {
  const out = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    if (!(values[j]! < THRESHOLD)) continue;
    let s = 0;
    for (let i = 0; i < n; i++) s += vectors[i * n + j]! * x[i]!;
    for (let i = 0; i < n; i++) out[i]! += s * vectors[i * n + j]!;
  }
  return out;
}

/** Checks one native result: eigenvalues, side, unit residuals, orthonormality. */
function checkBasis(basis: NullSpaceBasis, c: Float64Array, n: number, expected: number[]): void {
  const sorted = [...expected].sort((a, b) => a - b);
  const scale = Math.max(1e-300, ...sorted.map(Math.abs));
  assert.ok(maxAbsDiff(basis.eigenvalues, sorted) <= 1e-11 * scale, `eigenvalues off by ${maxAbsDiff(basis.eigenvalues, sorted)}`);
  const below = sorted.filter((x) => x < THRESHOLD).length;
  const side = below <= n - below ? 'below' : 'atOrAbove';
  const m = Math.min(below, n - below);
  assert.equal(basis.side, side);
  assert.equal(basis.vectors.length, m * n);
  const sideValues = side === 'below' ? basis.eigenvalues.subarray(0, m) : basis.eigenvalues.subarray(n - m);
  for (let r = 0; r < m; r++) {
    const v = basis.vectors.subarray(r * n, (r + 1) * n);
    const cv = matVec(c, n, v);
    for (let i = 0; i < n; i++) cv[i]! -= sideValues[r]! * v[i]!;
    assert.ok(norm(cv) <= 1e-10 * scale, `residual of vector ${r}: ${norm(cv)}`);
    for (let s = 0; s <= r; s++) {
      let dot = 0;
      for (let i = 0; i < n; i++) dot += v[i]! * basis.vectors[s * n + i]!;
      assert.ok(Math.abs(dot - (r === s ? 1 : 0)) <= 1e-10, `vectors ${r} and ${s}: dot ${dot}`);
    }
  }
}

for (const n of [1, 2, 5, 64, 300]) {
  for (const below of [0.3, 0.7]) {
    test(`known spectrum, n = ${n}, ${below * 100}% below the threshold: eigenvalues, vectors and P match`, async () => {
      const native = await loadNative();
      const lambda = spectrum(n, below);
      const { c, q } = knownSpectrum(lambda, n * 10 + below * 10);
      const basis = await native.nullSpaceBasis(c, n, THRESHOLD);
      checkBasis(basis, c, n, lambda);
      const projector = NullSpaceProjector.fromBasis(basis, n, THRESHOLD);
      assert.equal(projector.dimension, lambda.filter((x) => x < THRESHOLD).length);
      const jacobi = n <= 64 ? symmetricEigen(matrix(n, n, c)) : null;
      const normal = gaussian(rng(7));
      for (let trial = 0; trial < 3; trial++) {
        const x = Float64Array.from({ length: n }, normal);
        const px = projector.apply(x);
        // Q's columns are the exact eigenvectors of the construction.
        assert.ok(maxAbsDiff(px, referenceProjection(lambda, q, n, x)) <= 1e-10 * norm(x));
        if (jacobi) assert.ok(maxAbsDiff(px, referenceProjection(jacobi.values, jacobi.vectors.data, n, x)) <= 1e-10 * norm(x));
      }
    });
  }
}

test('a large exactly degenerate cluster on the minority side (n = 600, 250 zero eigenvalues) stays orthonormal and accurate', async () => {
  // Inverse iteration + Gram–Schmidt is weakest here: every vector of the cluster is chosen
  // only by orthogonality to the others.
  const native = await loadNative();
  const n = 600;
  const lambda = Array.from({ length: n }, (_, i) => (i < 250 ? 0 : 0.05 + 10 * Math.exp(-(i - 250) / 60)));
  const { c, q } = knownSpectrum(lambda, 99, 16);
  const basis = await native.nullSpaceBasis(c, n, THRESHOLD);
  assert.equal(basis.side, 'below');
  checkBasis(basis, c, n, lambda);
  const x = Float64Array.from({ length: n }, gaussian(rng(5)));
  const px = NullSpaceProjector.fromBasis(basis, n, THRESHOLD).apply(x);
  assert.ok(maxAbsDiff(px, referenceProjection(lambda, q, n, x)) <= 1e-10 * norm(x));
});

test('n = 1 and 2 edge cases: empty sides and ties', async () => {
  const native = await loadNative();
  let r = await native.nullSpaceBasis(Float64Array.of(0), 1, THRESHOLD);
  assert.deepEqual([...r.eigenvalues, r.side, r.vectors.length], [0, 'atOrAbove', 0]);
  assert.deepEqual([...NullSpaceProjector.fromBasis(r, 1, THRESHOLD).apply([3])], [3]);
  r = await native.nullSpaceBasis(Float64Array.of(5), 1, THRESHOLD);
  assert.deepEqual([...r.eigenvalues, r.side, r.vectors.length], [5, 'below', 0]);
  assert.deepEqual([...NullSpaceProjector.fromBasis(r, 1, THRESHOLD).apply([3])], [0]);
  r = await native.nullSpaceBasis(Float64Array.of(1, 0, 0, 0), 2, THRESHOLD);
  assert.deepEqual([...r.eigenvalues], [0, 1]);
  assert.equal(r.side, 'below');
  assert.deepEqual([...r.vectors].map(Math.abs), [0, 1]);
});

// Keys of dimension 256 from a 48-dimensional signal with decaying scales plus small noise,
// scaled per unit like MLP activations.
function realisticMoments(n: number, samples: number, seed: number): { c: Float64Array; keys: Float64Array } {
  const normal = gaussian(rng(seed));
  const rank = 48;
  const mix = Float64Array.from({ length: n * rank }, () => normal() / Math.sqrt(rank));
  const keys = new Float64Array(samples * n);
  const z = new Float64Array(rank);
  for (let t = 0; t < samples; t++) {
    for (let j = 0; j < rank; j++) z[j] = normal() * 3 * Math.exp(-j / 12);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < rank; j++) s += mix[i * rank + j]! * z[j]!;
      keys[t * n + i] = (s + 0.05 * normal()) * (0.5 + Math.exp(-i / 100));
    }
  }
  const c = new Float64Array(n * n);
  for (let t = 0; t < samples; t++) {
    const k = keys.subarray(t * n, (t + 1) * n);
    for (let i = 0; i < n; i++) {
      const ki = k[i]! / samples;
      for (let j = 0; j <= i; j++) c[i * n + j]! += ki * k[j]!;
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) c[j * n + i] = c[i * n + j]!;
  return { c, keys };
}

test('realistic moments (2000 keys of dimension 256): P C P is below the threshold, the energy split is exact', async () => {
  const native = await loadNative();
  const n = 256, samples = 2000;
  const { c, keys } = realisticMoments(n, samples, 3);
  const basis = await native.nullSpaceBasis(c, n, THRESHOLD);
  const jacobi = symmetricEigen(matrix(n, n, c));
  checkBasis(basis, c, n, [...jacobi.values]);
  const p = NullSpaceProjector.fromBasis(basis, n, THRESHOLD);
  assert.ok(p.dimension > 20 && p.dimension < n - 20, `dimension ${p.dimension}: the test wants both sides populated`);
  const normal = gaussian(rng(11));
  for (let trial = 0; trial < 5; trial++) {
    const x = Float64Array.from({ length: n }, normal);
    const px = p.apply(x);
    // ‖C P x‖ ≤ threshold ‖P x‖, and P is idempotent and symmetric.
    assert.ok(norm(matVec(c, n, px)) <= THRESHOLD * norm(px) * (1 + 1e-9));
    assert.ok(maxAbsDiff(p.apply(px), px) <= 1e-12 * norm(x));
    const y = Float64Array.from({ length: n }, normal);
    let xpy = 0, pxy = 0;
    for (let i = 0; i < n; i++) { xpy += x[i]! * p.apply(y)[i]!; pxy += px[i]! * y[i]!; }
    assert.ok(Math.abs(xpy - pxy) <= 1e-10 * norm(x) * norm(y));
  }
  // The keys' mean energy left after P is the sum of the eigenvalues below the threshold, and
  // what I − P keeps is the rest.
  let kept = 0, removed = 0;
  const columns = matrix(n, samples);
  for (let t = 0; t < samples; t++) for (let i = 0; i < n; i++) columns.data[i * samples + t] = keys[t * n + i]!;
  const projected = p.applyColumns(columns);
  for (let t = 0; t < samples; t++) {
    for (let i = 0; i < n; i++) {
      const k = keys[t * n + i]!, pk = projected.data[i * samples + t]!;
      kept += pk * pk / samples;
      removed += (k - pk) ** 2 / samples;
    }
  }
  const belowSum = [...jacobi.values].filter((x) => x < THRESHOLD).reduce((a, b) => a + b, 0);
  const aboveSum = [...jacobi.values].filter((x) => x >= THRESHOLD).reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(kept - belowSum) <= 1e-9 * aboveSum, `kept ${kept}, expected ${belowSum}`);
  assert.ok(Math.abs(removed - aboveSum) <= 1e-9 * aboveSum, `removed ${removed}, expected ${aboveSum}`);
  // applyColumns and apply agree.
  const first = Float64Array.from({ length: n }, (_, i) => keys[i]!);
  assert.ok(maxAbsDiff(p.apply(first), Float64Array.from({ length: n }, (_, i) => projected.data[i * samples]!)) <= 1e-12 * norm(first));
});

test('two threads give the same eigenvalues and projector as one (n = 700, parallel passes engaged)', async () => {
  const native = await loadNative();
  const n = 700;
  const { c } = realisticMoments(n, 1500, 13);
  const one = await native.nullSpaceBasis(c, n, THRESHOLD, { threads: 1 });
  const two = await native.nullSpaceBasis(c, n, THRESHOLD, { threads: 2 });
  const top = one.eigenvalues[n - 1]!;
  assert.ok(maxAbsDiff(one.eigenvalues, two.eigenvalues) <= 1e-12 * top);
  checkBasis(two, c, n, [...one.eigenvalues]);
  const x = Float64Array.from({ length: n }, gaussian(rng(4)));
  const p1 = NullSpaceProjector.fromBasis(one, n, THRESHOLD), p2 = NullSpaceProjector.fromBasis(two, n, THRESHOLD);
  assert.ok(maxAbsDiff(p1.apply(x), p2.apply(x)) <= 1e-10 * norm(x));
  await assert.rejects(() => native.nullSpaceBasis(c, n, THRESHOLD, { threads: 0 }), /threads must be a number ≥ 1/);
});

test('the projector from the other side is the same P', async () => {
  // Same C, thresholds putting the minority below and above: P must be consistent with
  // dimension, and P(threshold) x from both representations must agree with Jacobi.
  const native = await loadNative();
  const n = 40;
  const { c } = realisticMoments(n, 300, 5);
  const jacobi = symmetricEigen(matrix(n, n, c));
  const x = Float64Array.from({ length: n }, gaussian(rng(2)));
  for (const t of [jacobi.values[5]! * 1.0001 + 1e-12, jacobi.values[34]! * 1.0001 + 1e-12]) {
    const basis = await native.nullSpaceBasis(c, n, t);
    const p = NullSpaceProjector.fromBasis(basis, n, t);
    const reference = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      if (!(jacobi.values[j]! < t)) continue;
      let s = 0;
      for (let i = 0; i < n; i++) s += jacobi.vectors.data[i * n + j]! * x[i]!;
      for (let i = 0; i < n; i++) reference[i]! += s * jacobi.vectors.data[i * n + j]!;
    }
    assert.ok(maxAbsDiff(p.apply(x), reference) <= 1e-9 * norm(x), `threshold ${t} (${basis.side})`);
  }
});

test('input errors are reported clearly', async () => {
  const native = await loadNative();
  await assert.rejects(() => native.nullSpaceBasis(new Float64Array(5), 2, THRESHOLD), /5 values, but an n × n matrix with n = 2 has 4/);
  await assert.rejects(() => native.nullSpaceBasis(new Float64Array(0), 0, THRESHOLD), /n must be an integer from 1/);
  await assert.rejects(() => native.nullSpaceBasis(new Float32Array(4) as unknown as Float64Array, 2, THRESHOLD), /must be a Float64Array/);
  await assert.rejects(() => native.nullSpaceBasis(Float64Array.of(1, 0, 0, 1), 2, Number.NaN), /threshold must be finite/);
  await assert.rejects(() => native.nullSpaceBasis(Float64Array.of(1, 0, Number.NaN, 1), 2, THRESHOLD), /non-finite value \(nan\) at row 1, column 0/);
  await assert.rejects(() => native.nullSpaceBasis(Float64Array.of(1, 0.5, 0.25, 1), 2, THRESHOLD), /not symmetric: entry \(1, 0\) is 0.25.* but \(0, 1\) is 0.5/);
  // Rounding-level asymmetry is accepted.
  await native.nullSpaceBasis(Float64Array.of(1, 0.5, 0.5 + 1e-15, 1), 2, THRESHOLD);
});

test('an AbortSignal cancels the computation; a signal that is not aborted changes nothing', async () => {
  const native = await loadNative();
  const n = 1500;
  const next = rng(21);
  const c = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) c[i * n + j] = c[j * n + i] = next() - 0.5;
    c[i * n + i] = n;
  }
  const controller = new AbortController();
  const pending = native.nullSpaceBasis(c, n, THRESHOLD, { signal: controller.signal });
  setTimeout(() => controller.abort(), 20);
  await assert.rejects(pending, /cancelled/);
  await assert.rejects(() => native.nullSpaceBasis(c, n, THRESHOLD, { signal: AbortSignal.abort() }), /cancelled/);
  await assert.rejects(() => native.nullSpaceBasis(c, n, THRESHOLD, { signal: {} as AbortSignal }), /signal must be an AbortSignal/);
  const live = new AbortController();
  const small = Float64Array.of(2, 1, 1, 2);
  const r = await native.nullSpaceBasis(small, 2, 1.5, { signal: live.signal });
  assert.deepEqual([...r.eigenvalues].map((x) => Math.round(x * 1e12) / 1e12), [1, 3]);
  live.abort();  // after settling: no effect, no error
});

function spyNative(native: GraftNative): { native: Pick<GraftNative, 'nullSpaceBasis'>; calls: () => number } {
  let calls = 0;
  return {
    native: { nullSpaceBasis: (...args: Parameters<GraftNative['nullSpaceBasis']>) => { calls++; return native.nullSpaceBasis(...args); } },
    calls: () => calls,
  };
}

test('the cache: reused on the next call, recomputed when truncated or damaged, keyed by threshold and moments file', async () => {
  const native = await loadNative();
  const dir = tempDir();
  const n = 64;
  const { c } = realisticMoments(n, 400, 9);
  const momentsFile = path.join(dir, 'L3.moments');
  fs.writeFileSync(momentsFile, 'stand-in moments');
  const cacheDir = path.join(dir, 'cache');
  const spy = spyNative(native);
  const options = { momentsFile, matrix: c, n, threshold: THRESHOLD, cacheDir };

  const first = await nullSpaceProjector(spy.native, options);
  assert.equal(spy.calls(), 1);
  const file = nullSpaceCacheFile(options);
  assert.deepEqual(fs.readdirSync(cacheDir), [path.basename(file)], 'one cache file, no temporary left');

  const second = await nullSpaceProjector(spy.native, options);
  assert.equal(spy.calls(), 1, 'the second call must come from the cache');
  assert.deepEqual(second.vectors, first.vectors);
  assert.deepEqual(second.eigenvalues, first.eigenvalues);
  assert.equal(second.side, first.side);
  assert.equal(second.dimension, first.dimension);

  // Truncated: recomputed and rewritten.
  const size = fs.statSync(file).size;
  fs.truncateSync(file, size - 100);
  const third = await nullSpaceProjector(spy.native, options);
  assert.equal(spy.calls(), 2);
  assert.deepEqual(third.vectors, first.vectors);
  assert.equal(fs.statSync(file).size, size);

  // One flipped byte in the vectors: the checksum catches it.
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.from([0x5a]), 0, 1, size - 500);
  fs.closeSync(fd);
  await nullSpaceProjector(spy.native, options);
  assert.equal(spy.calls(), 3);
  await nullSpaceProjector(spy.native, options);
  assert.equal(spy.calls(), 3);

  // Another threshold, or a rewritten moments file, is another entry.
  await nullSpaceProjector(spy.native, { ...options, threshold: 1e-2 });
  assert.equal(spy.calls(), 4);
  fs.writeFileSync(momentsFile, 'other moments, other size');
  await nullSpaceProjector(spy.native, options);
  assert.equal(spy.calls(), 5);
  assert.equal(fs.readdirSync(cacheDir).length, 3);
});
