// Gradients of the own graph: equal to central finite differences on F32 weights (both
// delta sites, several layers, NLL and KL terms), on quantised weights close to the gradient
// of the dequantised model, and identical whether backward uses ggml's out_prod or Graft's
// row-once replacement. Adam lowers the loss, respects the norm bound and can be cancelled.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import { loadNative, type GraftNative } from '../native/binding.ts';
import type { GraphRequest, GraphSite, NativeGraphModel } from '../native/graphTypes.ts';
import { generatedModel, realModel, tempDir } from '../testing/fixtures.ts';
import { cosine, dequantizedCopy, randomVector, relativeL2 } from '../testing/graphFixtures.ts';
import { withGraph as withGraphOf } from '../testing/graphFixtures.ts';
import { openGraphModel, optimizeDeltas, teacherForced, type OpenGraphOptions } from './graphModel.ts';

let native: GraftNative;
before(async () => {
  native = await loadNative();
});

function withGraph<T>(model: string, fn: (g: NativeGraphModel) => Promise<T>, options: OpenGraphOptions = {}): Promise<T> {
  return withGraphOf(native, model, fn, options);
}

/** Two prompts with targets, one KL row against a reference the model does not match. */
async function lossRequest(g: NativeGraphModel, layer: number, site: GraphSite, values: Float32Array, reference?: Float32Array): Promise<GraphRequest> {
  const a = teacherForced(g.tokenize('Once upon a time, there was', true), g.tokenize(' a little girl', false), 0);
  const b = teacherForced(g.tokenize('The cat sat on', true), g.tokenize(' the mat', false), 1, 0.5);
  reference ??= (await g.run({ prompts: [g.tokenize('She said hello', true)], allLogits: true })).logprobs.subarray(0, g.info.nVocab);
  return {
    prompts: [a.tokens, b.tokens],
    deltas: [{ layer, site, rows: [{ prompt: 0, pos: 3 }, { prompt: 1, pos: 2 }], values }],
    targets: [...a.targets, ...b.targets],
    references: [{ prompt: 1, pos: 4, logprobs: new Float32Array(reference), weight: 0.7 }],
  };
}

async function finiteDifferences(g: NativeGraphModel, request: GraphRequest, h: number): Promise<Float32Array> {
  const base = request.deltas![0]!;
  const grad = new Float32Array(base.values.length);
  for (let i = 0; i < grad.length; i++) {
    const at = async (step: number) => {
      const values = new Float32Array(base.values);
      values[i]! += step;
      return (await g.run({ ...request, deltas: [{ ...base, values }] })).loss;
    };
    grad[i] = ((await at(h)) - (await at(-h))) / (2 * h);
  }
  return grad;
}

describe('own graph: gradients', () => {
  const stories = realModel('stories260K-F32.gguf');
  const f32Models: [string, () => string, string | false][] = [
    ['stories260K F32', () => stories.path!, stories.skip],
    ['generated qwen2 f32', () => generatedModel(native, tempDir(), { arch: 'qwen2', type: 'f32', layers: 3 }), false],
    ['generated qwen3 f32', () => generatedModel(native, tempDir(), { arch: 'qwen3', type: 'f32', layers: 3 }), false],
  ];
  for (const [name, file, skip] of f32Models) {
    test(`equal central finite differences on ${name} (mlp_out and resid, first and middle layer)`, { skip }, async () => {
      await withGraph(file(), async (g) => {
        for (const site of ['mlp_out', 'resid'] as const) {
          for (const layer of [0, Math.floor(g.info.nLayer / 2)]) {
            const request = await lossRequest(g, layer, site, randomVector(g.info.nEmbd, 11 + layer, 0.05));
            const analytic = (await g.run(request, { backward: true })).gradients[0]!;
            const numeric = await finiteDifferences(g, request, 1e-2);
            const rel = relativeL2(analytic, numeric), cos = cosine(analytic, numeric);
            assert.ok(rel <= 1e-2 && cos >= 0.999, `${site} layer ${layer}: relative L2 ${rel}, cosine ${cos}`);
          }
        }
      });
    });
  }

  for (const type of ['q8_0', 'q4_k'] as const) {
    test(`on ${type} weights agree with the gradient of the dequantised F32 model (cosine ≥ 0.99)`, async () => {
      const dir = tempDir();
      const model = generatedModel(native, dir, { arch: 'llama', type, embd: 256, ff: 512, heads: 4, kvHeads: 2, layers: 3 });
      const dequantized = await dequantizedCopy(native, model, dir);
      const kl = await withGraph(dequantized, async (g) => (await g.run({ prompts: [g.tokenize('She said hello', true)], logitRows: [{ prompt: 0, pos: 0 }] })).logprobs);
      const gradient = (file: string) => withGraph(file, async (g) => {
        const request = await lossRequest(g, 1, 'mlp_out', randomVector(g.info.nEmbd, 5, 0.05), kl);
        return (await g.run(request, { backward: true })).gradients[0]!;
      });
      const [quantized, reference] = [await gradient(model), await gradient(dequantized)];
      const cos = cosine(quantized, reference);
      assert.ok(cos >= 0.99, `cosine ${cos}`);
    });
  }

  test('the GPU path (weights dequantised to F32 inside the graph) gives the dequantised model\'s gradient', async () => {
    const dir = tempDir();
    const model = generatedModel(native, dir, { arch: 'qwen3', type: 'q4_k', embd: 256, ff: 512, heads: 4, kvHeads: 2 });
    const dequantized = await dequantizedCopy(native, model, dir);
    // one fixed reference distribution for both (a forward of the quantised model would differ)
    const kl = await withGraph(dequantized, async (g) => (await g.run({ prompts: [g.tokenize('She said hello', true)], logitRows: [{ prompt: 0, pos: 0 }] })).logprobs);
    const gradient = (file: string, options: OpenGraphOptions) => withGraph(file, async (g) => {
      const request = await lossRequest(g, 0, 'mlp_out', randomVector(g.info.nEmbd, 21, 0.05), kl);
      return (await g.run(request, { backward: true })).gradients[0]!;
    }, options);
    const [inGraph, reference] = [await gradient(model, { dequantizeForBackward: true }), await gradient(dequantized, {})];
    assert.ok(relativeL2(inGraph, reference) < 1e-5, `relative L2 ${relativeL2(inGraph, reference)}`);
  });

  test("Graft's row-once out_prod gives ggml's out_prod gradient (q4_k, f16 and f32 weights)", async () => {
    for (const type of ['q4_k', 'f16', 'f32'] as const) {
      const model = generatedModel(native, tempDir(), { arch: 'qwen2', type, embd: 256, ff: 512, heads: 4, kvHeads: 2 });
      const gradient = (rowOnceOutProd: boolean) => withGraph(model, async (g) => {
        const request = await lossRequest(g, 0, 'resid', randomVector(g.info.nEmbd, 9, 0.05));
        return (await g.run(request, { backward: true })).gradients[0]!;
      }, { rowOnceOutProd });
      const [ours, ggml] = [await gradient(true), await gradient(false)];
      const rel = relativeL2(ours, ggml);
      assert.ok(rel < 1e-4, `${type}: relative L2 ${rel}`);
    }
  });
});

describe('own graph: Adam', () => {
  test('lowers the target NLL, keeps the delta within its norm bound, and stops when cancelled', async () => {
    await withGraph(generatedModel(native, tempDir(), { arch: 'llama', type: 'f32' }), async (g) => {
      // layer 0: a delta in the last layer would not reach the later target positions
      const request = await lossRequest(g, 0, 'mlp_out', new Float32Array(g.info.nEmbd));
      delete request.references;
      const seen: number[] = [];
      const run = await optimizeDeltas(g, request, { steps: 15, lr: 0.5, maxNorm: [3] }, { onStep: (s) => seen.push(s.loss) });
      assert.equal(run.cancelled, false);
      assert.equal(run.steps.length, 15);
      assert.deepEqual(seen, run.steps.map((s) => s.loss));
      assert.ok(run.steps.at(-1)!.loss < run.steps[0]!.loss * 0.98, `loss ${run.steps[0]!.loss} → ${run.steps.at(-1)!.loss}`);
      const norm = Math.hypot(...run.deltas[0]!);
      assert.ok(Math.abs(norm - 3) < 1e-4, `‖δ‖ = ${norm}: this random model needs a long delta, which the bound must cut to 3`);
      assert.ok(run.steps.every((s) => s.deltaNorms[0]! <= 3 + 1e-4));
      // the returned result is the forward at the returned delta
      const check = await g.run({ ...request, deltas: [{ ...request.deltas![0]!, values: run.deltas[0]! }] });
      assert.ok(Math.abs(check.loss - run.result.loss) < 1e-9);

      const controller = new AbortController();
      const cancelled = await optimizeDeltas(g, request, { steps: 200, lr: 0.1 }, { signal: controller.signal, onStep: (s) => { if (s.step === 2) controller.abort(); } });
      assert.equal(cancelled.cancelled, true);
      assert.ok(cancelled.steps.length < 10, `ran ${cancelled.steps.length} steps after cancel`);
    });
  });
});

describe('own graph: bad input', () => {
  test('clear errors, no crash', async () => {
    const dir = tempDir();
    const model = generatedModel(native, dir, { arch: 'llama', type: 'f32', contextLength: 32 });
    await withGraph(model, async (g) => {
      const tokens = g.tokenize('the king said', true);
      const zero = new Float32Array(g.info.nEmbd);
      await assert.rejects(g.run({ prompts: [new Int32Array(0)] }), /prompt 0 is empty/);
      await assert.rejects(g.run({ prompts: [new Int32Array(40).fill(5)] }), /40 tokens long but the model's context holds 32/);
      await assert.rejects(g.run({ prompts: [tokens], captures: [{ layer: 2, site: 'mlp_key' }] }), /layer 2 is out of range \(the model has 2 layers/);
      await assert.rejects(g.run({ prompts: [tokens], deltas: [{ layer: 0, site: 'mlp_out', rows: [{ prompt: 0, pos: 0 }], values: new Float32Array(3) }] }), /needs 64 values, got 3/);
      await assert.rejects(g.run({ prompts: [tokens], deltas: [{ layer: 0, site: 'mlp_out', rows: [{ prompt: 0, pos: 999 }], values: zero }] }), /position 999 is outside prompt 0/);
      await assert.rejects(g.run({ prompts: [tokens], deltas: [{ layer: 0, site: 'mlp_out', rows: [{ prompt: 0, pos: 0 }], values: zero }] }, { backward: true }), /gradients need a loss/);
      await assert.rejects(g.run({ prompts: [tokens], deltas: [{ layer: 0, site: 'nowhere' as GraphSite, rows: [], values: zero }] }), /unknown hook site 'nowhere'/);
      await assert.rejects(g.run({ prompts: [new Int32Array([1, 99999])] }), /token id 99999 is outside the vocabulary/);
      // still usable after the errors
      assert.equal((await g.run({ prompts: [tokens], allLogits: true })).rows.length, tokens.length);
    });
    const gpt2 = `${dir}/gpt2.gguf`;
    await native.rewrite(model, gpt2, { setKv: [{ key: 'general.architecture', type: 'str', value: 'gpt2' }] });
    await assert.rejects(openGraphModel(native, gpt2), /architecture 'gpt2' is not supported by Graft's own graph/);
    await assert.rejects(openGraphModel(native, `${dir}/missing.gguf`), /missing\.gguf/);
  });
});
