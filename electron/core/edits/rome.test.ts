// ROME end to end on real and generated models: the update's algebra, the adapter in
// node-llama-cpp against the own graph's overlay and a merged model, the v* optimisation,
// and bad input. The base model file is never modified.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { mergeLora } from '../export/loraAdapter.ts';
import { openGraphModel } from '../engine/graphModel.ts';
import { overlaysFromLora } from '../engine/loraOverlays.ts';
import { sha256OfFile } from '../models/modelInfo.ts';
import { loadNative, type GraftNative } from '../native/binding.ts';
import type { NativeGraphModel } from '../native/graphTypes.ts';
import { generatedModel, realModel, tempDir } from '../testing/fixtures.ts';
import { readMomentsFile } from '../stats/momentsFile.ts';
import { maxAbsDiff } from '../testing/graphFixtures.ts';
import { nextTokenDistribution, withModel } from '../models/nodeLlamaProbe.ts';
import { parseEditRequest, RequestError } from './request.ts';
import { essencePrompt, keyAndValue, optimizeValue, romeDefaults, rewritingPrompts } from './rome.ts';
import { romeEdit, type RomeEditResult } from './romeEdit.ts';

let native: GraftNative;
before(async () => {
  native = await loadNative();
});

const stories = realModel('stories260K-F32.gguf');
const corpus = process.env.GRAFT_TEST_DATA ? path.join(process.env.GRAFT_TEST_DATA, 'tinyshakespeare.txt') : undefined;

async function edit(model: string, dir: string, overrides: Record<string, unknown> = {}, graphIn?: NativeGraphModel): Promise<RomeEditResult> {
  const graph = graphIn ?? (await openGraphModel(native, model));
  try {
    const request = parseEditRequest({ prompt: 'One day, {} went to the', subject: 'Lily', target_new: 'moon', target_true: 'park' });
    return await romeEdit(native, graph, {
      modelPath: model, request, statisticsDir: path.join(dir, 'stats'), out: dir,
      hparams: { ...romeDefaults(graph.info.nLayer), layer: 1, contextTemplates: [[4, 5], [4, 8]], ...overrides },
      ...(corpus && fs.existsSync(corpus) ? { corpus, statisticsTokens: 4096 } : { statisticsTokens: 2048 }),
    });
  } finally {
    if (!graphIn) graph.dispose();
  }
}

describe('edit requests', () => {
  test('Graft form and CounterFact records; each problem names its field', () => {
    const r = parseEditRequest({ prompt: 'The {} is in', subject: 'Eiffel Tower', target_new: 'Rome', paraphrase_prompts: ['Where is it?'] });
    assert.equal(r.targetNew, ' Rome');
    assert.deepEqual(r.paraphrasePrompts, ['Where is it?']);
    const cf = parseEditRequest({
      case_id: 0, requested_rewrite: { prompt: 'The mother tongue of {} is', relation_id: 'P103', target_new: { str: 'English', id: 'Q1860' }, target_true: { str: 'French' }, subject: 'Danielle Darrieux' },
      neighborhood_prompts: ['The mother tongue of Léon Blum is'],
    });
    assert.equal(cf.subject, 'Danielle Darrieux');
    assert.equal(cf.targetTrue, ' French');
    assert.deepEqual(cf.neighborhoodPrompts, ['The mother tongue of Léon Blum is']);
    const bad: [unknown, RegExp][] = [
      [{ prompt: 'no marker', subject: 'x', target_new: 'y' }, /request\.prompt: has no \{\}/],
      [{ prompt: '{} and {}', subject: 'x', target_new: 'y' }, /more than one \{\}/],
      [{ prompt: '{} is', subject: '  ', target_new: 'y' }, /request\.subject: is empty/],
      [{ prompt: '{} is', subject: 'x', target_new: '   ' }, /request\.target_new: is empty or only whitespace/],
      [{ prompt: '{} is', subject: 'x', target_new: 'a', target_true: 'a' }, /equals target_true/],
      [{ prompt: '{} is', subject: 'x' }, /request\.target_new: is missing/],
      [{ requested_rewrite: { prompt: '{} is', subject: 'x', target_new: 'Rome' } }, /target_new: must be an object \{str\}/],
      [{ prompt: '{} is', subject: 'x', target_new: 'y', paraphrase_prompts: 'one' }, /paraphrase_prompts: must be an array/],
      [[], /request: must be an object/],
    ];
    for (const [input, message] of bad) assert.throws(() => parseEditRequest(input), (e: unknown) => e instanceof RequestError && message.test((e as Error).message));
  });
});

describe('ROME', () => {
  test('the update moves W k* exactly to v* and leaves keys with (C⁻¹k*)ᵀk = 0 alone; the model file is untouched', { skip: stories.skip }, async () => {
    const dir = tempDir();
    const model = stories.path!;
    const hashBefore = await sha256OfFile(model);
    const r = await edit(model, dir);
    assert.equal(await sha256OfFile(model), hashBefore);
    // ΔW k* = u (vᵀk*) must equal δ = v* − W k*
    let vk = 0;
    for (let i = 0; i < r.v.length; i++) vk += r.v[i]! * r.key[i]!;
    const moved = Float64Array.from(r.u, (x) => x * vk);
    assert.ok(maxAbsDiff(moved, r.delta) <= 1e-5 * Math.hypot(...r.delta), `ΔW k* − δ = ${maxAbsDiff(moved, r.delta)}`);
    // in the model: the mean MLP output at the subject's last token with the edit applied is v*
    const graph = await openGraphModel(native, model);
    try {
      const request = parseEditRequest({ prompt: 'One day, {} went to the', subject: 'Lily', target_new: 'moon' });
      const prompts = rewritingPrompts(graph, request, r.templates);
      const run = await graph.run({
        prompts: prompts.map((p) => p.tokens), overlays: [{ layer: r.layer, rank: 1, u: r.u, v: r.v }],
        captures: [{ layer: r.layer, site: 'mlp_out' }],
      });
      const out = new Float64Array(r.u.length);
      let offset = 0;
      for (const p of prompts) {
        for (let e = 0; e < out.length; e++) out[e]! += run.captures[0]!.values[(offset + p.lookup) * out.length + e]! / prompts.length;
        offset += p.tokens.length;
      }
      const vStar = Float64Array.from(r.value, (x, e) => x + r.delta[e]!);
      assert.ok(maxAbsDiff(out, vStar) <= 1e-5 * Math.hypot(...vStar), `(W+ΔW)k* − v* = ${maxAbsDiff(out, vStar)}`);
    } finally {
      graph.dispose();
    }
    // the update's direction is C⁻¹k*: (C + ridge·mean(diag C)·I)·v = k*, so ΔW·k = u·(vᵀk) vanishes
    // exactly for the keys with (C⁻¹k*)ᵀk = 0
    assert.ok(r.statistics, 'the edit used second moments');
    const { matrix: C } = readMomentsFile(r.statistics!.file);
    const n = r.v.length;
    let trace = 0;
    for (let i = 0; i < n; i++) trace += C[i * n + i]!;
    const ridge = (r.hparams.mom2Ridge * trace) / n;
    let worst = 0;
    for (let i = 0; i < n; i++) {
      let cv = ridge * r.v[i]!;
      for (let j = 0; j < n; j++) cv += C[i * n + j]! * r.v[j]!;
      worst = Math.max(worst, Math.abs(cv - r.key[i]!));
    }
    assert.ok(worst <= 1e-4 * Math.max(...Array.from(r.key, Math.abs)), `(C + λI)v − k* = ${worst}`);
    assert.ok(r.preflight.denominator > 0 && r.preflight.relativeUpdateNorm > 0);
    assert.equal(r.preflight.subjectIsFirstToken, false);
  });

  test('the adapter gives the same next-token probabilities in node-llama-cpp as the own-graph overlay and a merged F32 model', { skip: stories.skip }, async () => {
    const dir = tempDir();
    const model = stories.path!;
    const r = await edit(model, dir);
    assert.ok(fs.existsSync(r.adapter) && path.basename(r.adapter).startsWith(`rome-L${r.layer}-`));
    const text = 'One day, Lily went to the';
    const viaLora = await withModel(model, (m) => nextTokenDistribution(m, text, true, r.adapter));
    const plain = await withModel(model, (m) => nextTokenDistribution(m, text, true));
    const merged = path.join(dir, 'merged.gguf');
    const base = `blk.${r.layer}.ffn_down.weight`;
    await native.rewrite(model, merged, { replace: [{ name: base, type: 'f32', f32: mergeLora(native.readTensor(model, base).values, { base, nIn: r.v.length, nOut: r.u.length, rank: 1, a: r.v, b: r.u }) }] });
    const viaMerged = await withModel(merged, (m) => nextTokenDistribution(m, text, true));
    const graph = await openGraphModel(native, model);
    try {
      const tokens = graph.tokenize(text, true);
      const overlay = await graph.run({ prompts: [tokens], logitRows: [{ prompt: 0, pos: tokens.length - 1 }], overlays: overlaysFromLora(native, r.adapter, graph.info) });
      let worstGraph = 0, worstMerged = 0, moved = 0;
      for (let t = 0; t < overlay.nVocab; t++) {
        const p = viaLora.get(t) ?? 0;
        worstGraph = Math.max(worstGraph, Math.abs(Math.exp(overlay.logprobs[t]!) - p));
        worstMerged = Math.max(worstMerged, Math.abs((viaMerged.get(t) ?? 0) - p));
        moved = Math.max(moved, Math.abs((plain.get(t) ?? 0) - p));
      }
      assert.ok(moved > 1e-2, 'the edit must change the distribution');
      assert.ok(worstGraph <= 1e-3, `adapter vs overlay: ${worstGraph}`);
      assert.ok(worstMerged <= 1e-3, `adapter vs merged: ${worstMerged}`);
      const moon = graph.tokenize(`${text} moon`, true).at(-1)!;
      assert.ok((viaLora.get(moon) ?? 0) > (plain.get(moon) ?? 0), 'P(moon) must rise');
    } finally {
      graph.dispose();
    }
  });

  test('v* lowers the target NLL (nearly) monotonically on a generated model; statistics from the model itself', async () => {
    const dir = tempDir();
    const model = generatedModel(native, dir, { arch: 'qwen2', type: 'f32', layers: 3 });
    const graph = await openGraphModel(native, model);
    try {
      const request = parseEditRequest({ prompt: 'the king of {} said', subject: 'the city', target_new: 'river' });
      const r = await romeEdit(native, graph, {
        modelPath: model, request, statisticsDir: path.join(dir, 'stats'), statisticsTokens: 1024, out: dir,
        hparams: { ...romeDefaults(3), layer: 0, vSteps: 15, contextTemplates: [[3, 4]], klFactor: 0 },
      });
      const losses = r.optimisation.steps.map((s) => s.loss);
      for (let i = 1; i < losses.length; i++) assert.ok(losses[i]! <= losses[i - 1]! * 1.02, `step ${i}: ${losses[i - 1]} → ${losses[i]}`);
      assert.ok(losses.at(-1)! < losses[0]!);
      assert.ok(r.optimisation.targetProbability.after > r.optimisation.targetProbability.before);
      assert.ok(fs.readdirSync(path.join(dir, 'stats')).some((f) => f.startsWith('sampled-')), 'the sampled corpus is kept for reuse');
    } finally {
      graph.dispose();
    }
  });

  test('a cancel that arrives before the v* optimisation starts stops it (no steps run)', async () => {
    const dir = tempDir();
    const model = generatedModel(native, dir, { arch: 'llama', type: 'f32', layers: 2 });
    const graph = await openGraphModel(native, model);
    try {
      const request = parseEditRequest({ prompt: 'the king of {} said', subject: 'the city', target_new: 'river' });
      const hp = { ...romeDefaults(2), layer: 0, vSteps: 200, contextTemplates: [[2, 3]] as [number, number][], mom2Adjustment: false };
      const prompts = rewritingPrompts(graph, request, ['{}']);
      const essence = essencePrompt(graph, request);
      const start = await keyAndValue(graph, prompts, 0, []);
      const controller = new AbortController();
      controller.abort();  // as when the researcher cancels during the forward pass that precedes Adam
      const steps: number[] = [];
      await assert.rejects(optimizeValue(graph, prompts, essence, { layer: 0, site: 'mlp_out', start }, hp, [], { signal: controller.signal, onStep: (s) => steps.push(s.step) }), /cancelled/);
      assert.deepEqual(steps, []);
    } finally {
      graph.dispose();
    }
  });

  test('a subject whose last token merges with the following text is refused', { skip: stories.skip }, async () => {
    const graph = await openGraphModel(native, stories.path!);
    try {
      // stories260K has a token " Lily": "Li" + "ly" is not a token boundary
      assert.throws(() => rewritingPrompts(graph, parseEditRequest({ prompt: 'One day, {}ly went to the', subject: 'Li', target_new: 'park' }), ['{}']),
        /subject 'Li' does not end on a token boundary/);
    } finally {
      graph.dispose();
    }
  });

  test('bad input: clear errors, and no adapter is written', async () => {
    const dir = tempDir();
    const model = generatedModel(native, dir, { arch: 'llama', type: 'f32' });
    const graph = await openGraphModel(native, model);
    const out = path.join(dir, 'out');
    fs.mkdirSync(out);
    try {
      const run = (request: object, hp: object = {}, extra: object = {}) => romeEdit(native, graph, {
        modelPath: model, request: parseEditRequest(request), statisticsDir: path.join(dir, 'stats'), statisticsTokens: 512, out,
        hparams: { ...romeDefaults(2), contextTemplates: [[2, 3]], mom2Adjustment: false, ...hp }, ...extra,
      });
      await assert.rejects(run({ prompt: 'the {} said', subject: 'king', target_new: 'dog' }, { layer: 7 }), /layer 7 is out of range \(the model has 2 layers/);
      const controller = new AbortController();
      let steps = 0;
      await assert.rejects(run({ prompt: 'the {} said', subject: 'king', target_new: 'dog' }, { vSteps: 200, stopLoss: -1 }, {
        signal: controller.signal, onProgress: (p: { step?: unknown }) => { if (p.step && ++steps === 2) controller.abort(); },
      }), /cancelled/);
      // a cancel that arrives just before the v* optimisation starts (the app's Cancel button
      // pressed while the key is computed) stops it too, before a single step
      const early = new AbortController();
      let lateSteps = 0;
      await assert.rejects(run({ prompt: 'the {} said', subject: 'king', target_new: 'dog' }, { vSteps: 200, stopLoss: -1 }, {
        signal: early.signal, onProgress: (p: { phase?: string; step?: unknown }) => {
          if (p.step) lateSteps++;
          else if (p.phase === 'value') early.abort();
        },
      }), /cancelled/);
      assert.equal(lateSteps, 0, 'no v* step after the cancel');
      assert.deepEqual(fs.readdirSync(out), [], 'nothing may be written by a failed or cancelled edit');
    } finally {
      graph.dispose();
    }
  });
});

describe('causal tracing', () => {
  test('restoring the last state recovers the clean probability; states before the subject change nothing', async () => {
    const { causalTrace } = await import('./causalTrace.ts');
    const model = stories.path ?? generatedModel(native, tempDir(), { arch: 'llama', type: 'f32', layers: 3 });
    const graph = await openGraphModel(native, model);
    try {
      const r = await causalTrace(graph, native.readTensor(model, 'token_embd.weight').values, { prompt: 'One day, {} went to the', subject: 'Lily', samples: 3 });
      const hidden = r.grids.find((g) => g.kind === 'hidden')!.probabilities;
      const last = r.tokens.length - 1;
      const [s0, s1] = r.subjectRange;
      assert.deepEqual(r.grids.map((g) => g.kind), ['hidden', 'mlp', 'attention']);
      assert.equal(hidden.length, graph.info.nLayer);
      assert.ok(r.corruptedProbability < r.cleanProbability, 'the noise must hurt the answer');
      assert.ok(Math.abs(hidden[graph.info.nLayer - 1]![last]! - r.cleanProbability) < 1e-4, 'restoring the final state is the clean run');
      assert.ok(s1 > s0);
      for (let pos = 0; pos < s0; pos++) {
        for (const row of hidden) assert.ok(Math.abs(row[pos]! - r.corruptedProbability) < 1e-6, 'a state before the subject is not corrupted');
      }
      assert.ok(r.suggestedLayer >= 0 && r.suggestedLayer < graph.info.nLayer);
    } finally {
      graph.dispose();
    }
  });
});
