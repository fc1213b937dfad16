import { test } from 'node:test';
import assert from 'node:assert/strict';

import type { EditMetrics, PromptScores } from '../edits/metrics.ts';
import { generateFactWorld, relationObjects, rewriteRequests } from './factWorld.ts';
import {
  formatTable, harmonicMean, latestRequests, probeSentences, qualityColumns, sequenceBatches, sequencePlan, unrelatedPrompts,
} from './qualityRows.ts';

const world = generateFactWorld(20240611);

test('the Score is the harmonic mean, and 0 when any part is 0', () => {
  assert.equal(harmonicMean([1, 1, 1]), 1);
  assert.ok(Math.abs(harmonicMean([1, 0.5, 0.25]) - 3 / 7) < 1e-12);
  assert.equal(harmonicMean([0.9, 0, 1]), 0);
  assert.ok(Number.isNaN(harmonicMean([0.9, Number.NaN, 1])));
  assert.ok(Number.isNaN(harmonicMean([])));
});

test('a world too small for N gives what it allows only when asked to', () => {
  assert.throws(() => rewriteRequests(world, 10_000, 1), RangeError);
  const all = rewriteRequests(world, 10_000, 1, { allowFewer: true });
  assert.ok(all.length > 10 && all.length < 10_000);
  assert.deepEqual(rewriteRequests(world, 12, 1, { allowFewer: true }), rewriteRequests(world, 12, 1));
});

test('a sequence past the distinct rewrites cycles each fact on to a new object, never its true one', () => {
  const cases = rewriteRequests(world, 5, 3);
  const plan = sequencePlan(world, cases, 23);
  assert.deepEqual(plan.map((e) => e.fact), Array.from({ length: 23 }, (_, k) => k % 5));
  assert.deepEqual(plan.map((e) => e.cycle), Array.from({ length: 23 }, (_, k) => Math.floor(k / 5) + 1));
  plan.slice(0, 5).forEach((e, i) => assert.deepEqual(e.request, cases[i]!.request));
  for (const [i, c] of cases.entries()) {
    const targets = plan.filter((e) => e.fact === i).map((e) => e.request.targetNew.trim());
    const others = relationObjects(world, c.fact.relation).filter((o) => o !== c.fact.object);
    assert.ok(!targets.includes(c.fact.object));
    assert.ok(targets.every((t) => others.includes(t)));
    // consecutive passes move the fact on whenever the relation has another object to go to
    if (others.length > 1) for (let k = 1; k < targets.length; k++) assert.notEqual(targets[k], targets[k - 1]);
    plan.filter((e) => e.fact === i).forEach((e) => assert.equal(e.request.targetTrue, c.request.targetTrue));
  }
});

test('the latest requests hold each edited fact once, with its newest target', () => {
  const cases = rewriteRequests(world, 4, 3);
  const plan = sequencePlan(world, cases, 6);
  assert.equal(latestRequests(plan, 3).length, 3);
  const latest = latestRequests(plan, 6);
  assert.equal(latest.length, 4);
  assert.equal(latest[0], plan[4]!.request);
  assert.equal(latest[1], plan[5]!.request);
  assert.equal(latest[2], plan[2]!.request);
});

test('batches end on every measuring point and never exceed the size', () => {
  assert.deepEqual(sequenceBatches([1, 10, 25], 10), [[0, 1], [1, 10], [10, 20], [20, 25]]);
  assert.deepEqual(sequenceBatches([3, 1], 1), [[0, 1], [1, 2], [2, 3]]);
  assert.deepEqual(sequenceBatches([1, 1, 4], 2), [[0, 1], [1, 3], [3, 4]]);
  assert.throws(() => sequenceBatches([0, 5], 2));
  assert.throws(() => sequenceBatches([5], 0));
});

test('probe sentences and KL prompts stay clear of the edited subjects', () => {
  const subjects = rewriteRequests(world, 20, 1).map((c) => c.fact.subject);
  const corpus = world.facts.map((f) => `${f.subject} is tied to ${f.object}.`);
  const sentences = probeSentences(corpus, subjects, 50, 1);
  assert.equal(sentences.length, 50);
  const names = (text: string) => subjects.some((x) => new RegExp(`\\b${x}\\b`).test(text));
  assert.ok(sentences.every((s) => !names(s)));
  assert.ok(corpus.some(names));
  const prompts = unrelatedPrompts(world, subjects, 30, 1);
  assert.equal(prompts.length, 30);
  assert.ok(prompts.every((p) => !names(p)));
  assert.deepEqual(unrelatedPrompts(world, subjects, 30, 1), prompts);
});

function scores(probabilityScore: number, meanMargin: number, tokenAccuracy: number): PromptScores {
  return { prompts: 1, probabilityScore, meanMargin, tokenAccuracy, pNew: 0, pTrue: 0 };
}

test('a row averages each request equally and leaves out what was not measured', () => {
  const a: EditMetrics = { efficacy: scores(1, 0.5, 1), paraphrase: scores(0.5, 0.1, 0.5), neighbourhood: scores(1, 0.2, 1), fluency: 4 };
  const b: EditMetrics = { efficacy: scores(0, -0.1, 0), paraphrase: null, neighbourhood: scores(0.5, 0, 0.5), fluency: null };
  const row = qualityColumns([a, b]);
  assert.equal(row.es, 0.5);
  assert.equal(row.ps, 0.5);
  assert.equal(row.ns, 0.75);
  assert.ok(Math.abs(row.em - 0.2) < 1e-12);
  assert.equal(row.ge, 4);
  assert.equal(row.locality, 0.75);
  assert.ok(Math.abs(row.score - harmonicMean([0.5, 0.5, 0.75])) < 1e-12);
  assert.equal(qualityColumns([b]).ge, null);
});

test('tables align their columns and show missing values as a dash', () => {
  const text = formatTable([
    { title: 'Method', value: (r: { m: string; x: number | null }) => r.m },
    { title: 'ES', value: (r) => r.x, percent: true },
  ], [{ m: 'rome', x: 0.5 }, { m: 'alphaedit', x: null }]);
  assert.deepEqual(text.split('\n'), [
    'Method       ES',
    '---------  ----',
    'rome       50.0',
    'alphaedit     –',
  ]);
});
