// The edit-quality benchmark's arithmetic on the fact world: which fact is edited to what at
// each step of a long sequence, where the sequence is measured, and how per-request metrics
// become one row with the columns of the published CounterFact tables (ROME, MEMIT) beside
// EasyEdit's token accuracies. Kept free of models so that it can be tested on its own.
import { SeededRandom } from '../util/seededRandom.ts';
import type { EditMetrics } from '../edits/metrics.ts';
import type { EditRequest } from '../edits/request.ts';
import { shuffled } from './factNames.ts';
import { factPrompts, relationObjects, type FactWorld, type RewriteCase } from './factWorld.ts';

/** Harmonic mean, the CounterFact Score of ES, PS and NS: 0 as soon as one of them is 0. */
export function harmonicMean(values: number[]): number {
  if (values.length === 0 || values.some((v) => !Number.isFinite(v))) return Number.NaN;
  if (values.some((v) => v <= 0)) return 0;
  return values.length / values.reduce((s, v) => s + 1 / v, 0);
}

export interface SequenceEdit {
  /** Index into the rewrite cases. */
  fact: number;
  /** 1 for the first pass over the facts; 2, 3, … when the world has run out of fresh facts. */
  cycle: number;
  request: EditRequest;
}

/**
 * `count` edits one after another: every rewrite case once, then again from the start, each
 * pass moving a fact on to the next object of its relation (never back to its true object).
 * The world allows only a few dozen distinct rewrites, so long sequences must re-edit facts
 * to reach their length; the cycle says which pass an edit belongs to.
 */
export function sequencePlan(world: FactWorld, cases: RewriteCase[], count: number): SequenceEdit[] {
  if (cases.length === 0) throw new Error('no rewrite cases to build a sequence from');
  return Array.from({ length: count }, (_, k) => {
    const fact = k % cases.length, cycle = Math.floor(k / cases.length) + 1;
    const { request, fact: f } = cases[fact]!;
    const others = relationObjects(world, f.relation).filter((o) => o !== f.object);
    const first = others.indexOf(request.targetNew.trim());
    if (first < 0) throw new Error(`internal: ${request.targetNew} is not an object of ${f.relation}`);
    return { fact, cycle, request: { ...request, targetNew: ` ${others[(first + cycle - 1) % others.length]}` } };
  });
}

/** The latest request of every fact edited by the first `upTo` steps of a plan, in fact order. */
export function latestRequests(plan: SequenceEdit[], upTo: number): EditRequest[] {
  const latest = new Map<number, EditRequest>();
  for (const e of plan.slice(0, upTo)) latest.set(e.fact, e.request);
  return [...latest.entries()].sort((a, b) => a[0] - b[0]).map(([, r]) => r);
}

/**
 * Consecutive [start, end) ranges of at most `size` steps ending exactly on every measuring
 * point, so a batch method can be measured at 1 and at 10 as well as ROME can.
 */
export function sequenceBatches(points: number[], size: number): [number, number][] {
  if (!Number.isInteger(size) || size < 1) throw new Error(`the batch size must be a whole number ≥ 1, got ${size}`);
  const ends = [...new Set(points)].sort((a, b) => a - b);
  if (ends.some((p) => !Number.isInteger(p) || p < 1)) throw new Error(`sequence points must be whole numbers ≥ 1, got ${points.join(', ')}`);
  const out: [number, number][] = [];
  let start = 0;
  for (const end of ends) {
    while (start < end) {
      const next = Math.min(end, start + size);
      out.push([start, next]);
      start = next;
    }
  }
  return out;
}

/** Probe sentences from the demo corpus that name none of the edited subjects: they measure collateral damage, not the intended change. */
export function probeSentences(corpus: string[], subjects: string[], count: number, seed: number): string[] {
  return shuffled(new SeededRandom(seed), sentencesWithout(corpus, subjects)).slice(0, count);
}

/** The non-empty sentences that name none of the subjects (as whole words). */
export function sentencesWithout(corpus: string[], subjects: string[]): string[] {
  const escaped = subjects.map((x) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const named = subjects.length === 0 ? null : new RegExp(`(^|[^\\p{L}\\p{N}])(${escaped.join('|')})(?![\\p{L}\\p{N}])`, 'u');
  return corpus.filter((s) => s.trim() !== '' && !named?.test(s));
}

/**
 * Next-token prompts about facts of subjects that are not edited, through their trained
 * phrasings: once a sequence has edited most subjects few facts are left, so every phrasing
 * of each counts.
 */
export function unrelatedPrompts(world: FactWorld, subjects: string[], count: number, seed: number): string[] {
  const edited = new Set(subjects);
  const prompts = world.facts.filter((f) => !edited.has(f.subject)).flatMap((f) => factPrompts(world, f, 'train').map((p) => p.prompt));
  return shuffled(new SeededRandom(seed), prompts).slice(0, count);
}

export interface QualityColumns {
  /** Harmonic mean of ES, PS and NS. */
  score: number;
  /** Shares of prompts with P(new) > P(true) (NS: P(true) > P(new)), 0–1. */
  es: number;
  ps: number;
  ns: number;
  /** Mean probability margins. */
  em: number;
  pm: number;
  nm: number;
  /** Generation entropy (fluency), bits; null when not measured. */
  ge: number | null;
  /** EasyEdit's teacher-forced token accuracies. */
  reliability: number;
  generalization: number;
  locality: number;
}

function mean(xs: number[]): number {
  return xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Per-request metrics averaged over the requests (each request weighs the same, as in the papers). */
export function qualityColumns(metrics: EditMetrics[]): QualityColumns {
  const of = (pick: (m: EditMetrics) => number | null | undefined) => mean(metrics.map(pick).filter((x): x is number => x !== null && x !== undefined && Number.isFinite(x)));
  const es = of((m) => m.efficacy.probabilityScore), ps = of((m) => m.paraphrase?.probabilityScore), ns = of((m) => m.neighbourhood?.probabilityScore);
  const ge = of((m) => m.fluency);
  return {
    score: harmonicMean([es, ps, ns]), es, ps, ns,
    em: of((m) => m.efficacy.meanMargin), pm: of((m) => m.paraphrase?.meanMargin), nm: of((m) => m.neighbourhood?.meanMargin),
    ge: Number.isNaN(ge) ? null : ge,
    reliability: of((m) => m.efficacy.tokenAccuracy), generalization: of((m) => m.paraphrase?.tokenAccuracy), locality: of((m) => m.neighbourhood?.tokenAccuracy),
  };
}

export interface TableColumn<R> {
  title: string;
  value: (row: R) => string | number | null | undefined;
  /** Numbers: decimals shown (default 3); percent multiplies by 100 first. */
  digits?: number;
  percent?: boolean;
}

function cell<R>(c: TableColumn<R>, row: R): string {
  const v = c.value(row);
  if (v === null || v === undefined) return '–';
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return Number.isNaN(v) ? '–' : String(v);
  return (c.percent ? v * 100 : v).toFixed(c.digits ?? (c.percent ? 1 : 3));
}

/** A plain-text table: the first column left-aligned, the others right-aligned, a rule under the titles. */
export function formatTable<R>(columns: TableColumn<R>[], rows: R[]): string {
  const cells = rows.map((r) => columns.map((c) => cell(c, r)));
  const widths = columns.map((c, i) => Math.max(c.title.length, ...cells.map((r) => r[i]!.length)));
  const line = (values: string[]) => values.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(columns.map((c) => c.title)), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}
