// Curve JSON files as the sequence benchmark and `graft edit --requests F --curve --json` print
// them (their shapes as bench/sequence.bench.ts and electron/cli/commands/edit.ts write them),
// files that are something else, and curves lined up for a chart.
// Run: node --import tsx --test renderer/src/lib/curveFile.test.ts
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { alignCurves, parseCurveFile } from './curveFile.ts';

const rome = [
  { edits: 1, efficacy: 1, pNew: 0.61, sentencePplRatio: 1.01, normGrowth: 1.002 },
  { edits: 2, efficacy: 1, pNew: 0.58, sentencePplRatio: 1.03, normGrowth: 1.004 },
  { edits: 3, efficacy: 0.667, pNew: 0.41, sentencePplRatio: 1.2, normGrowth: 1.01 },
  { edits: 4, efficacy: 0.5, pNew: 0.33, sentencePplRatio: 1.9, normGrowth: 1.02 },
];
const memit = [
  { edits: 2, efficacy: 1, pNew: 0.7, sentencePplRatio: 1.1, normGrowth: 1.05 },
  { edits: 4, efficacy: 0.75, pNew: 0.52, sentencePplRatio: 412.5, normGrowth: null },
];
const bench = {
  benchmark: 'sequence', model: 'stories260K-F32', threads: 1, edits: 4,
  curves: {
    rome: { seconds: 12.5, batchSize: 1, points: rome, summary: { requests: 4 } },
    memit: { seconds: 3.1, batchSize: 2, points: memit, summary: { requests: 4 } },
  },
};
// `graft edit MODEL --requests F --sequential --curve --json`: the run result beside workspace, method and settings
const cli = {
  workspace: 'stories260K-F32.gguf', method: 'alphaedit', hyperparameters: { layers: [3, 4] }, runId: 3, resumed: true, requests: 4,
  batches: [{ index: 0, editId: 7, requestIndices: [0, 1], requests: [], resumed: true, verdict: null, autoDisabled: false, normGrowth: null }],
  summary: { requests: 4, efficacy: 0.75 },
  curve: memit.map((p, i) => ({ batchIndex: i, ...p })),
  adapter: null,
};

const notCurve = (why: RegExp) => (e: Error) => {
  assert.match(e.message, /^this is not a curve JSON: /);
  assert.match(e.message, why);
  assert.match(e.message, /expected the output of npm run bench -- sequence --json or graft edit --curve --json$/);
  return true;
};

test('the sequence benchmark gives one curve per method, nulls kept', () => {
  const curves = parseCurveFile(JSON.stringify(bench));
  assert.deepEqual(curves.map((c) => c.label), ['rome', 'memit']);
  assert.deepEqual(curves[0]!.points, rome);
  assert.deepEqual(curves[1]!.points, memit);
  assert.equal(curves[1]!.points[1]!.normGrowth, null);
});

test('output captured with npm\'s banner before it, or printed without --json, reads the same', () => {
  const banner = `\n> graft@0.1.0 bench\n> node bench/run.mjs sequence --json\n\n${JSON.stringify(bench)}\n`;
  assert.deepEqual(parseCurveFile(banner), parseCurveFile(JSON.stringify(bench)));
  const pretty = `rome: 4 edits…\nmemit: 4 edits…\n${JSON.stringify(bench, null, 2)}\n`;
  assert.deepEqual(parseCurveFile(pretty), parseCurveFile(JSON.stringify(bench)));
});

test('graft edit --curve --json gives its method\'s curve (the stored batch index aside)', () => {
  const curves = parseCurveFile(`${JSON.stringify(cli)}\n`);
  assert.deepEqual(curves, [{ label: 'alphaedit', points: memit }]);
});

test('a file that is not a curve says what it is instead and what was expected', () => {
  assert.throws(() => parseCurveFile(''), notCurve(/the file is empty/));
  assert.throws(() => parseCurveFile('edits,efficacy\n1,0.5\n'), notCurve(/it is not JSON \(/));
  assert.throws(() => parseCurveFile('[1, 2]'), notCurve(/its JSON is a list, not an object/));
  assert.throws(() => parseCurveFile(JSON.stringify({ benchmark: 'batch', ratio: 3.1 })), notCurve(/it is the output of the batch benchmark/));
  assert.throws(() => parseCurveFile(JSON.stringify({ benchmark: 'sequence', curves: {} })), notCurve(/"curves" holds no method/));
  assert.throws(() => parseCurveFile(JSON.stringify({ benchmark: 'sequence', curves: { rome: { seconds: 1 } } })), notCurve(/the curve of rome is not a list of points/));
  // a single edit's output (graft edit --prompt … --json) has no curve
  assert.throws(() => parseCurveFile(JSON.stringify({ edit: 4, workspace: 'w', method: 'rome', verdict: 'ok' })), notCurve(/neither "curves" .* nor "curve"/));
  assert.throws(() => parseCurveFile(JSON.stringify({ ...cli, curve: [] })), notCurve(/the curve of alphaedit has no points \(was the run made with --curve\?\)/));
  assert.throws(() => parseCurveFile(JSON.stringify({ ...cli, method: undefined })), notCurve(/a "curve" but no "method"/));
  const broken = (point: object) => JSON.stringify({ ...bench, curves: { memit: { points: [memit[0], point] } } });
  assert.throws(() => parseCurveFile(broken({ edits: 4, pNew: 0.5 })), notCurve(/point 2 of memit has no number "efficacy"/));
  assert.throws(() => parseCurveFile(broken({ edits: 0, efficacy: 1, pNew: 0.5 })), notCurve(/point 2 of memit: "edits" is 0, not a count of edits/));
  assert.throws(() => parseCurveFile(broken({ edits: 4, efficacy: 1, pNew: 0.5, sentencePplRatio: 'high' })), notCurve(/point 2 of memit: "sentencePplRatio" is "high", not a number or null/));
  assert.throws(() => parseCurveFile(broken(['edits', 4])), notCurve(/point 2 of memit is not an object/));
});

test('curves of different batch sizes line up on every x any of them has', () => {
  const curves = parseCurveFile(JSON.stringify(bench));
  const { x, values } = alignCurves(curves, (p) => p.efficacy);
  assert.deepEqual(x, [1, 2, 3, 4]);
  assert.deepEqual(values, [[1, 1, 0.667, 0.5], [null, 1, null, 0.75]]);
  assert.deepEqual(alignCurves(curves, (p) => p.normGrowth).values[1], [null, 1.05, null, null]);
  assert.deepEqual(alignCurves([], (p) => p.efficacy), { x: [], values: [] });
});
