import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { openLlamaSession } from '../engine/llamaSession.ts';
import { loadNative, type GraftNative, type NativeLlamaSession } from '../native/binding.ts';
import { generatedModel, realModel, tempDir } from '../testing/fixtures.ts';
import { median, sentencePerplexity } from './sentencePerplexity.ts';

let native: GraftNative;
before(async () => {
  native = await loadNative();
});

function probeSentences(): string[] {
  const dir = process.env.GRAFT_TEST_DATA;
  const file = dir ? path.join(dir, 'ME-PPL_50.json') : '';
  if (file && fs.existsSync(file)) return (JSON.parse(fs.readFileSync(file, 'utf8')) as { Text: string }[]).map((s) => s.Text);
  return [
    ' Once upon a time there was a little girl named Lily.',
    ' The dog ran to the park and played with a ball.',
    ' Tom was sad because his toy was broken.',
    ' The sun was shining and the birds were singing in the trees.',
    ' She said thank you to her mom.',
  ];
}

/** Each sentence on its own through session.evaluate: the independent reference. */
async function direct(session: NativeLlamaSession, sentences: string[], bos: boolean) {
  const ppls: number[] = [];
  for (const s of sentences) {
    const body = session.tokenize(s, false);
    const tokens = bos ? Int32Array.from([session.bosToken!, ...body]) : body;
    const r = await session.evaluate(tokens);
    let sum = 0;
    for (let j = 1; j < tokens.length; j++) sum -= r.logprobs![(j - 1) * r.nVocab + tokens[j]!]!;
    ppls.push(Math.exp(sum / (tokens.length - 1)));
  }
  return ppls;
}

const close = (a: number, b: number, rel: number, what: string) => assert.ok(Math.abs(a / b - 1) <= rel, `${what}: ${a} vs ${b}`);

describe('sentence perplexity (ME-PPL style)', () => {
  const stories = realModel('stories260K-F32.gguf');

  for (const bos of [true, false]) {
    test(`stories260K, BOS ${bos ? 'on' : 'off'}: per-sentence values equal a sentence-by-sentence computation`, { skip: stories.skip }, async () => {
      const session = await openLlamaSession(native, stories.path!, { contextSize: 512, threads: 1 });
      try {
        const sentences = probeSentences();
        const result = await sentencePerplexity(session, sentences, { bos, worst: 3 });
        const reference = await direct(session, sentences, bos);
        assert.equal(result.sentences.length, sentences.length);
        assert.deepEqual(result.skipped, []);
        assert.equal(result.bos, bos);
        result.sentences.forEach((s, i) => {
          assert.equal(s.index, i);
          assert.equal(s.tokensScored, session.tokenize(sentences[i]!, false).length - (bos ? 0 : 1));
          close(s.ppl, reference[i]!, 1e-6, `sentence ${i}`);
        });
        const mean = reference.reduce((a, b) => a + b, 0) / reference.length;
        close(result.meanPpl, mean, 1e-6, 'mean');
        close(result.medianPpl, median(reference), 1e-6, 'median');
        assert.deepEqual(result.worst.map((s) => s.index), reference.map((p, i) => [p, i] as const).sort((a, b) => b[0] - a[0]).slice(0, 3).map(([, i]) => i));
        assert.equal(result.decodes, sentences.length);
        // Packed side by side: far fewer forward passes, the same numbers.
        const packed = await sentencePerplexity(session, sentences, { bos, maxSequencesPerDecode: 0 });
        assert.ok(packed.decodes < sentences.length / 4, `${packed.decodes} decodes for ${sentences.length} sentences`);
        packed.sentences.forEach((s, i) => close(s.ppl, reference[i]!, 1e-6, `packed sentence ${i}`));
      } finally {
        session.dispose();
      }
    });
  }

  test('with BOS the first token is scored, without it is only context', async () => {
    const session = await openLlamaSession(native, generatedModel(native, tempDir(), { arch: 'llama', type: 'f32' }), { contextSize: 64, threads: 1 });
    try {
      const sentences = ['the king of the city said', 'a b'];
      const on = await sentencePerplexity(session, sentences, { bos: true });
      const off = await sentencePerplexity(session, sentences, { bos: false });
      const lengths = sentences.map((s) => session.tokenize(s, false).length);
      assert.deepEqual(on.sentences.map((s) => s.tokensScored), lengths);
      assert.deepEqual(off.sentences.map((s) => s.tokensScored), lengths.map((n) => n - 1));
      assert.notEqual(on.meanPpl, off.meanPpl);
      const reference = await direct(session, sentences, true);
      on.sentences.forEach((s, i) => close(s.ppl, reference[i]!, 1e-6, `sentence ${i}`));
    } finally {
      session.dispose();
    }
  });

  test('clear errors: no sentences, nothing to score, a sentence longer than the context', async () => {
    const session = await openLlamaSession(native, generatedModel(native, tempDir(), { arch: 'llama', type: 'q8_0' }), { contextSize: 16, threads: 1 });
    try {
      await assert.rejects(sentencePerplexity(session, []), /the sentence list is empty; give at least one sentence/);
      await assert.rejects(sentencePerplexity(session, ['', ''], { bos: false }), /none of the 2 sentences has a token to score/);
      await assert.rejects(sentencePerplexity(session, ['the king '.repeat(20)]), /sentence 0 is \d+ tokens long but the session's context holds 16/);
      const partly = await sentencePerplexity(session, ['', 'the king said'], { bos: false });
      assert.deepEqual(partly.skipped, [0]);
      assert.equal(partly.sentences.length, 1);
    } finally {
      session.dispose();
    }
  });
});
