// AlphaEdit's null-space projector (native nullSpaceBasis: tridiagonalisation, eigenvalues,
// the smaller side's eigenvectors) against the Cholesky factor of the same matrix
// (native.factorSpd), which ROME already pays per layer, measured in the same run, at n_ff of
// TinyLlama (5632) and Llama-3-8B (14336). Goal: minutes on a laptop CPU, not hours.
// `--sizes 1024,2048` for a quick run.
//
// The matrix is the exact second moment E[k kᵀ] of synthetic keys k = S (x + G z): x an AR(1)
// process across units (ρ = 0.9), z a 32-dimensional shared signal with decaying scales, S
// decaying per-unit scales. Its spectrum decays over ~5 decades, with many eigenvalues on
// both sides of the published threshold 2e-2.
import { loadNative, type NullSpaceBasis } from '../electron/core/native/binding.ts';
import { DEFAULT_NULL_SPACE_THRESHOLD } from '../electron/core/stats/nullSpace.ts';
import { log, median, report, round, seconds, threads } from './support.ts';
import { SeededRandom } from '../electron/core/util/seededRandom.ts';

const native = await loadNative();
const sizesArg = process.argv.indexOf('--sizes');
const sizes = sizesArg >= 0 ? process.argv[sizesArg + 1]!.split(',').map(Number) : [1024, 2048, 5632, 14336];
if (sizes.some((n) => !Number.isInteger(n) || n < 2)) throw new Error(`--sizes wants integers ≥ 2, got ${process.argv[sizesArg + 1]}`);
const threshold = DEFAULT_NULL_SPACE_THRESHOLD;

/** Uniform in [−0.5, 0.5). */
function random(seed: number): () => number {
  const r = new SeededRandom(seed);
  return () => r.next() - 0.5;
}

// O(n² r): only the lower triangle is computed, then mirrored.
function syntheticMoments(n: number): Float64Array {
  const r = 32, rho = 0.9;
  const next = random(n);
  const g = Float64Array.from({ length: n * r }, (_, k) => next() * 2 * Math.exp(-(k % r) / 8));
  const scale = Float64Array.from({ length: n }, (_, i) => Math.exp(-3 * i / n));
  const c = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const gi = i * r, row = i * n;
    let corr = 1;
    for (let j = i; j >= 0; j--) {
      const gj = j * r;
      let s = corr;
      for (let k = 0; k < r; k++) s += g[gi + k]! * g[gj + k]!;
      c[row + j] = scale[i]! * scale[j]! * s;
      corr *= rho;
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) c[j * n + i] = c[i * n + j]!;
  return c;
}

// ‖C v − λ v‖ / ‖C‖∞ for a few of the returned vectors, as a sanity check of what was timed.
function worstResidual(c: Float64Array, n: number, lambda: ArrayLike<number>, vectors: Float64Array): number {
  const m = vectors.length / n;
  let cnorm = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += Math.abs(c[i * n + j]!);
    cnorm = Math.max(cnorm, s);
  }
  let worst = 0;
  for (const r of new Set([0, Math.floor(m / 2), m - 1].filter((x) => x >= 0 && x < m))) {
    let sq = 0;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += c[i * n + j]! * vectors[r * n + j]!;
      sq += (s - lambda[r]! * vectors[r * n + i]!) ** 2;
    }
    worst = Math.max(worst, Math.sqrt(sq) / cnorm);
  }
  return worst;
}

const results = [];
for (const n of sizes) {
  log(`n = ${n}: generating the moments…`);
  let c: Float64Array = new Float64Array(0);
  const generateSeconds = await seconds(() => { c = syntheticMoments(n); });
  const rounds = n <= 2048 ? 3 : 1;
  const times = { projector: [] as number[], cholesky: [] as number[] };
  let basis: NullSpaceBasis | null = null;
  for (let i = 0; i < rounds; i++) {
    log(`n = ${n}: round ${i + 1}/${rounds}`);
    times.cholesky.push(await seconds(() => native.factorSpd(c, n)));
    times.projector.push(await seconds(async () => { basis = await native.nullSpaceBasis(c, n, threshold, { threads }); }));
  }
  const b: NullSpaceBasis = basis!;
  const m = b.vectors.length / n;
  const below = b.eigenvalues.reduce((k: number, x: number) => k + (x < threshold ? 1 : 0), 0);
  const sideValues = b.side === 'below' ? b.eigenvalues.subarray(0, m) : b.eigenvalues.subarray(n - m);
  const p = median(times.projector), ch = median(times.cholesky);
  results.push({
    n, rounds,
    generateSeconds: round(generateSeconds, 1),
    projectorSeconds: round(p, 2),
    choleskySeconds: round(ch, 2),
    ratio: round(p / ch, 2),
    below, side: b.side, vectors: m,
    eigenvalueRange: [b.eigenvalues[0]!, b.eigenvalues[n - 1]!].map((x) => Number(x.toPrecision(3))),
    worstResidual: Number(worstResidual(c, n, sideValues, b.vectors).toExponential(2)),
  });
  log(JSON.stringify(results.at(-1)));
}
report({ benchmark: 'projector', threshold, threads, results, goal: 'minutes, not hours, at n_ff = 14336 (projectorSeconds)' });
