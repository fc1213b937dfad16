import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { openLlamaSession } from '../engine/llamaSession.ts';
import { tokenNlls, withModel } from '../models/nodeLlamaProbe.ts';
import { loadNative, type GraftNative, type NativeLlamaSession } from '../native/binding.ts';
import { generatedModel, realModel, tempDir } from '../testing/fixtures.ts';
import { corpusPerplexity } from './perplexity.ts';

let native: GraftNative;
before(async () => {
  native = await loadNative();
});

/** A slice of tinyshakespeare when GRAFT_TEST_DATA is set, else a made-up story. */
function corpusText(chars: number): string {
  const dir = process.env.GRAFT_TEST_DATA;
  const file = dir ? path.join(dir, 'tinyshakespeare.txt') : '';
  if (file && fs.existsSync(file)) return fs.readFileSync(file, 'utf8').slice(0, chars);
  const names = ['Lily', 'Tom', 'Sue', 'Ben'];
  const things = ['a red ball', 'a big dog', 'a small cat', 'a blue kite'];
  let text = '';
  for (let i = 0; text.length < chars; i++) {
    text += `Once upon a time, ${names[i % 4]} found ${things[(i * 3) % 4]} in the park. ${names[(i + 1) % 4]} was happy and they played all day. `;
  }
  return text.slice(0, chars);
}

/**
 * llama.cpp's method written out directly from per-position log-probabilities of
 * session.evaluate (one chunk per call, no packing): the independent reference.
 */
async function directPerplexity(session: NativeLlamaSession, text: string, nCtx: number) {
  const tokens = session.tokenize(text, true);
  const chunks = Math.floor(tokens.length / nCtx);
  const first = nCtx / 2;
  let sum = 0;
  let count = 0;
  const chunkTokens: Int32Array[] = [];
  for (let c = 0; c < chunks; c++) {
    const chunk = tokens.slice(c * nCtx, (c + 1) * nCtx);
    if (session.addsBos) chunk[0] = session.bosToken!;
    chunkTokens.push(chunk);
    const r = await session.evaluate(chunk);
    for (let p = first; p < nCtx - 1; p++) {
      sum -= r.logprobs![p * r.nVocab + chunk[p + 1]!]!;
      count++;
    }
  }
  return { ppl: Math.exp(sum / count), count, chunks, chunkTokens };
}

describe('corpus perplexity (llama.cpp method)', () => {
  const stories = realModel('stories260K-F32.gguf');

  test('stories260K: equals a direct computation from per-position log-probs and node-llama-cpp\'s scoring', { skip: stories.skip }, async () => {
    const nCtx = 128;
    const session = await openLlamaSession(native, stories.path!, { contextSize: 512, threads: 1 });
    try {
      const text = corpusText(2400);
      const result = await corpusPerplexity(session, text, { nCtx });
      const direct = await directPerplexity(session, text, nCtx);
      assert.ok(direct.chunks >= 4, `the test text should give several chunks, got ${direct.chunks}`);
      assert.equal(result.chunks, direct.chunks);
      assert.equal(result.tokensScored, direct.count);
      assert.equal(result.tokensScored, direct.chunks * (nCtx - 1 - nCtx / 2));
      assert.ok(Math.abs(result.ppl / direct.ppl - 1) <= 1e-6, `ppl ${result.ppl} vs direct ${direct.ppl}`);
      assert.ok(result.ppl > 1 && result.ppl < 512, `a trained model's ppl should be modest, got ${result.ppl}`);
      const chunkMean = result.perChunk.reduce((a, c) => a + c.nllMean, 0) / result.perChunk.length;
      assert.ok(Math.abs(chunkMean - result.nllMean) < 1e-12, 'chunks score equally many tokens, so their means average to the total');

      // A 512 context holds four 128-token chunks side by side: the same numbers in fewer decodes.
      const packed = await corpusPerplexity(session, text, { nCtx, maxSequencesPerDecode: 4 });
      assert.ok(Math.abs(packed.ppl / direct.ppl - 1) <= 1e-6, `packed ppl ${packed.ppl} vs direct ${direct.ppl}`);

      const theirs = await withModel(stories.path!, (m) => tokenNlls(m, direct.chunkTokens.map((tokens) => ({ tokens, scoreFrom: nCtx / 2 + 1 })), nCtx));
      const flat = theirs.flat();
      assert.equal(flat.length, result.tokensScored);
      const theirPpl = Math.exp(flat.reduce((a, b) => a + b, 0) / flat.length);
      assert.ok(Math.abs(result.ppl / theirPpl - 1) <= 1e-3, `ppl ${result.ppl} vs node-llama-cpp ${theirPpl}`);

      const limited = await corpusPerplexity(session, text, { nCtx, maxChunks: 2 });
      assert.equal(limited.chunks, 2);
      assert.deepEqual(limited.perChunk, result.perChunk.slice(0, 2).map((c) => ({ ...c })));
    } finally {
      session.dispose();
    }
  });

  test('a generated model: the chunk\'s first token really is replaced by BOS', async () => {
    const model = generatedModel(native, tempDir(), { arch: 'llama', type: 'f32' });
    const session = await openLlamaSession(native, model, { contextSize: 64, threads: 1 });
    try {
      const text = corpusText(3000);
      const direct = await directPerplexity(session, text, 32);
      const ours = await corpusPerplexity(session, text, { nCtx: 32 });
      assert.ok(Math.abs(ours.ppl / direct.ppl - 1) <= 1e-6, `ppl ${ours.ppl} vs direct ${direct.ppl}`);
      if (session.addsBos) {
        // Without the overwrite the numbers must differ: the check above can fail.
        const tokens = session.tokenize(text, true);
        const raw = await session.score([{ tokens: tokens.slice(32, 64), scoreFrom: 17 }]);
        const replaced = await session.score([{ tokens: Int32Array.from([session.bosToken!, ...tokens.slice(33, 64)]), scoreFrom: 17 }]);
        assert.notDeepEqual(raw.sequences[0]!.nll, replaced.sequences[0]!.nll);
        const replacedPpl = Math.exp(replaced.sequences[0]!.nll.reduce((a, b) => a + b, 0) / 15);
        assert.ok(Math.abs(replacedPpl / ours.perChunk[1]!.ppl - 1) <= 1e-6, `chunk 1: ${ours.perChunk[1]!.ppl} vs ${replacedPpl}`);
      }
    } finally {
      session.dispose();
    }
  });

  test('clear errors: text shorter than two chunks, chunk larger than the context', async () => {
    const model = generatedModel(native, tempDir(), { arch: 'llama', type: 'q8_0' });
    const session = await openLlamaSession(native, model, { contextSize: 64, threads: 1 });
    try {
      await assert.rejects(corpusPerplexity(session, 'the king said', { nCtx: 32 }),
        /the text is only \d+ tokens long, but perplexity with a context of 32 needs at least 64 tokens \(two chunks\); give a longer text or a smaller nCtx/);
      await assert.rejects(corpusPerplexity(session, corpusText(3000), { nCtx: 128 }), /needs a session whose context holds at least 128 tokens/);
      await assert.rejects(corpusPerplexity(session, corpusText(3000), { nCtx: 32, maxChunks: 0 }), /maxChunks must be a positive integer/);
    } finally {
      session.dispose();
    }
  });
});
