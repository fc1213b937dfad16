// Hard cases against real tokenizers (stories260K and a generated SentencePiece model) and a
// character-level stand-in: the properties each case promises are checked with the
// tokenizer itself, not taken from the generator's word.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import { continuationTokens, openGraphModel } from '../engine/graphModel.ts';
import { filledPrompt, parseEditRequest, type EditRequest } from '../edits/request.ts';
import { loadNative, type GraftNative } from '../native/binding.ts';
import { generatedModel, realModel, tempDir } from '../testing/fixtures.ts';
import { generateHardCases, subjectFirstPrompt, subjectTokens, vocabularyOf, type HardCase, type HardCaseVocabulary } from './hardCases.ts';

const request = parseEditRequest({
  prompt: 'One day, {} went to the', subject: 'Lily', target_new: 'moon', target_true: 'park',
  paraphrase_prompts: ['Lily liked to walk to the'], neighborhood_prompts: ['One day, Anna went to the'],
});

const ids = ['subject-first', 'short-subject', 'numeric-target', 'long-target', 'repeated-subject', 'many-on-one-layer'];

function byId(cases: HardCase[], id: string): HardCase {
  const c = cases.find((x) => x.id === id);
  assert.ok(c, `no ${id} case`);
  return c;
}

function reparse(r: EditRequest, where: string): EditRequest {
  return parseEditRequest({
    prompt: r.prompt, subject: r.subject, target_new: r.targetNew, target_true: r.targetTrue,
    paraphrase_prompts: r.paraphrasePrompts, neighborhood_prompts: r.neighborhoodPrompts, generation_prompts: r.generationPrompts,
  }, where);
}

/** Every promise of the cases, checked with `vocabulary`'s own tokenizer. */
function checkCases(vocabulary: HardCaseVocabulary, base: EditRequest, expectOneTokenShortSubject: boolean) {
  const cases = generateHardCases(vocabulary, base, { seed: 11 });
  assert.deepEqual(cases.map((c) => c.id), ids);
  for (const c of cases) {
    assert.ok(c.title.length > 0 && c.why.length > 20, c.id);
    assert.ok(c.requests.length >= 1, c.id);
    for (const [i, r] of c.requests.entries()) assert.deepEqual(reparse(r, `${c.id}[${i}]`), r, `${c.id}[${i}] does not survive validation unchanged`);
  }
  assert.deepEqual(cases.filter((c) => c.sameLayer).map((c) => c.id), ['many-on-one-layer']);

  // (a) the subject's tokens come straight after the start token
  const [first] = byId(cases, 'subject-first').requests;
  assert.ok(first!.prompt.startsWith('{}'), first!.prompt);
  const bos = vocabulary.tokenize('x', true).length - vocabulary.tokenize('x', false).length;
  const tokens = vocabulary.tokenize(filledPrompt(first!), true);
  const subject = vocabulary.tokenize(first!.subject, false);
  assert.deepEqual(Array.from(tokens.slice(bos, bos + subject.length)), Array.from(subject));
  assert.ok(tokens.length > bos + subject.length, 'the relation must follow the subject');
  assert.equal(first!.targetNew, base.targetNew);

  // (b) a one- or two-letter subject that is one vocabulary token in the prompt
  const short = byId(cases, 'short-subject');
  const s = short.requests[0]!;
  assert.match(s.subject, /^\p{L}{1,2}$/u);
  assert.equal(s.prompt, base.prompt);
  assert.notEqual(s.subject, base.subject);
  const span = subjectTokens(vocabulary, s.prompt, s.subject);
  if (expectOneTokenShortSubject) {
    assert.equal(short.note, undefined);
    assert.equal(span?.length, 1, `"${s.subject}" takes ${span?.length} tokens`);
    const id = span![0]!;
    assert.ok(id >= 0 && id < vocabulary.nVocab);
    assert.equal(vocabulary.tokenPiece!(id).replace(/^[\s\u2581]/, ''), s.subject);
  } else {
    assert.match(short.note ?? '', new RegExp(`"${s.subject}" takes ${span?.length}`));
  }

  // (c) a number
  assert.match(byId(cases, 'numeric-target').requests[0]!.targetNew, /^ \d{4}$/);

  // (d) at least six target tokens after the prompt, as the optimisation will see them
  const long = byId(cases, 'long-target').requests[0]!;
  assert.ok(continuationTokens(vocabulary.tokenize, filledPrompt(long), long.targetNew).length >= 6, long.targetNew);
  const longer = byId(generateHardCases(vocabulary, base, { seed: 11, minTargetTokens: 15 }), 'long-target').requests[0]!;
  assert.ok(continuationTokens(vocabulary.tokenize, filledPrompt(longer), longer.targetNew).length >= 15, longer.targetNew);

  // (e) one subject, three different targets, each edit changing the previous answer
  const repeated = byId(cases, 'repeated-subject').requests;
  assert.equal(repeated.length, 3);
  assert.equal(new Set(repeated.map((r) => r.subject)).size, 1);
  assert.equal(new Set(repeated.map((r) => r.targetNew)).size, 3);
  assert.deepEqual(repeated.map((r) => r.targetTrue), [base.targetTrue, repeated[0]!.targetNew, repeated[1]!.targetNew]);

  // (f) eight different subjects, none of them in a neighbourhood prompt
  const many = byId(cases, 'many-on-one-layer').requests;
  assert.equal(many.length, 8);
  assert.equal(new Set(many.map((r) => r.subject)).size, 8);
  assert.deepEqual(many[0], base);
  for (const r of many.slice(1)) {
    assert.ok(!base.neighborhoodPrompts.some((p) => p.includes(r.subject)), r.subject);
    assert.deepEqual(r.paraphrasePrompts, [], 'paraphrases name the researcher\'s subject');
    assert.deepEqual(r.neighborhoodPrompts, base.neighborhoodPrompts);
  }

  // deterministic for a seed; another seed gives other cases
  assert.deepEqual(generateHardCases(vocabulary, base, { seed: 11 }), cases);
  const other = generateHardCases(vocabulary, base, { seed: 12 });
  assert.notDeepEqual(other, cases);
  assert.deepEqual(other.map((c) => c.id), ids);
}

describe('hard cases on real tokenizers', () => {
  let native: GraftNative;
  before(async () => {
    native = await loadNative();
  });
  const stories = realModel('stories260K-F32.gguf');

  test('stories260K', { skip: stories.skip }, async () => {
    const graph = await openGraphModel(native, stories.path!);
    try {
      const vocabulary = vocabularyOf(graph);
      assert.equal(vocabulary.nVocab, 512);
      checkCases(vocabulary, request, true);
      checkCases(vocabulary, parseEditRequest({ prompt: 'The mother tongue of {} is', subject: 'Tom', target_new: 'French' }), true);
    } finally {
      graph.dispose();
    }
  });

  test('a generated model with a SentencePiece vocabulary', async () => {
    const file = generatedModel(native, tempDir(), { arch: 'llama', type: 'f32', vocab: 400 });
    const graph = await openGraphModel(native, file);
    try {
      const vocabulary = vocabularyOf(graph);
      assert.equal(vocabulary.nVocab, 400);
      checkCases(vocabulary, request, true);
    } finally {
      graph.dispose();
    }
  });
});

describe('hard cases without a model', () => {
  // One token per character after a start token 1: no two-letter string is ever one token,
  // and no piece function is given, so the fallback search and its note are exercised.
  const characters: HardCaseVocabulary = {
    tokenize: (text, bos) => Int32Array.from([...(bos ? [1] : []), ...Array.from(text, (c) => 2 + c.charCodeAt(0))]),
    nVocab: 0x10000,
  };

  test('a tokenizer without one-token short subjects still gets every case, with a note', () => {
    checkCases(characters, request, false);
  });

  test('subject-first prompts keep the relation', () => {
    const table: [string, string][] = [
      ['The mother tongue of {} is', "{}'s mother tongue is"],
      ['The capital city of {} is', "{}'s capital city is"],
      ['The {} is located in', '{} is located in'],
      ['One day, {} went to the', '{} went to the'],
      ["The {}'s home is", "{}'s home is"],
      ['{} plays the', '{} plays the'],
      ['My best friend is {}', '{} is'],
    ];
    for (const [prompt, expected] of table) assert.equal(subjectFirstPrompt(prompt), expected, prompt);
    const already = generateHardCases(characters, { ...request, prompt: '{} went to the' })[0]!;
    assert.match(already.note ?? '', /already starts with its subject/);
    assert.equal(generateHardCases(characters, request)[0]!.note, undefined);
  });

  test('the subject span is refused when the subject merges with its neighbours', () => {
    // a tokenizer that joins "ab" into one token
    const joining: HardCaseVocabulary = {
      tokenize: (text, bos) => {
        const out = bos ? [1] : [];
        for (let i = 0; i < text.length; i++) {
          if (text.startsWith('ab', i)) {
            out.push(1000);
            i++;
          } else out.push(2 + text.charCodeAt(i));
        }
        return Int32Array.from(out);
      },
      nVocab: 0x10000,
    };
    assert.deepEqual(Array.from(subjectTokens(joining, 'x {} y', 'cd')!), [2 + 32, 2 + 99, 2 + 100]);
    assert.equal(subjectTokens(joining, 'x {}b y', 'a'), undefined);
    assert.equal(subjectTokens(joining, 'xa{} y', 'b'), undefined);
  });

  test('bad options and requests are refused', () => {
    assert.throws(() => generateHardCases(characters, request, { repeats: 1 }), /repeats must be an integer of at least 2/);
    assert.throws(() => generateHardCases(characters, request, { sameLayerEdits: 100 }), /sameLayerEdits must be an integer from 2/);
    assert.throws(() => generateHardCases(characters, request, { minTargetTokens: 0 }), /minTargetTokens/);
    assert.throws(() => generateHardCases(characters, request, { repeats: 30 }), /distinct targets are available for 30 repeated edits/);
    assert.throws(() => generateHardCases(characters, { ...request, prompt: 'no marker' }), /request\.prompt: has no \{\}/);
  });
});
