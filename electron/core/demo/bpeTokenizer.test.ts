import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { loadNative, type GraftNative } from '../native/binding.ts';
import { openLlamaSession } from '../engine/llamaSession.ts';
import { makeTestModel } from '../models/testModels/makeTestModel.ts';
import { tempDir } from '../testing/fixtures.ts';
import { SeededRandom } from '../util/seededRandom.ts';
import { BYTE_TO_UNICODE, BpeTokenizer, TOKEN_TYPE_CONTROL, pretokenize, trainBpe } from './bpeTokenizer.ts';
import { gpt2VocabularyKv } from './gpt2Vocabulary.ts';

// A stand-in for the demo corpus: invented names and places in fact sentences, plus filler.
function generateCorpus(sentences: number, seed: number): string[] {
  const rng = new SeededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng.next() * xs.length)]!;
  const onsets = ['v', 'k', 't', 'r', 'm', 'n', 's', 'd', 'l', 'br', 'th', 'z', 'g', 'p', 'sk'];
  const vowels = ['a', 'e', 'i', 'o', 'u', 'ai', 'ou'];
  const codas = ['', 'n', 'r', 's', 'k', 'l', 'th', 'x', 'nd'];
  const syllable = () => pick(onsets) + pick(vowels) + pick(codas);
  const name = (n: number) => {
    let s = '';
    for (let i = 0; i < n; i++) s += syllable();
    return s[0]!.toUpperCase() + s.slice(1);
  };
  const people = Array.from({ length: 300 }, () => `${name(2)} ${name(2)}`);
  const places = Array.from({ length: 80 }, () => name(3));
  const jobs = ['painter', 'farmer', 'sailor', 'doctor', 'teacher', 'baker', 'poet', 'engineer'];
  const fillers = [
    'The weather was mild that year.', 'It rained for three days.', 'Nobody knew why.',
    'The river froze in winter.', 'Many people came to the market.', 'The old bridge was closed.',
  ];
  const out: string[] = [];
  for (let i = 0; i < sentences; i++) {
    const p = pick(people);
    switch (Math.floor(rng.next() * 6)) {
      case 0: out.push(`${p} was born in ${pick(places)}.`); break;
      case 1: out.push(`${p} works as a ${pick(jobs)}.`); break;
      case 2: out.push(`${p} lives in ${pick(places)}, near the river.`); break;
      case 3: out.push(`In ${1700 + Math.floor(rng.next() * 320)}, ${p} moved to ${pick(places)}.`); break;
      case 4: out.push(`${p}'s brother is ${pick(people)}.`); break;
      default: out.push(pick(fillers));
    }
  }
  return out;
}

const oddTexts = [
  'Zürich – 東京', 'double  spaces  here', 'line one\nline two', 'trailing space ', '  leading', 'tab\tafter',
  'digits 1234567890 and 3.14', "it's, they're; we'll: I'd!?", '((nested)) [brackets] {braces} <s> </s>',
  'emoji 🙂 ok', 'ÄÖÜ äöü ß ñ é', 'a\r\nb', '\n\n\nmany newlines\n\n', '   ', "'", 'x  \n y', 'CAPS and MiXeD',
  'é', '\u00a0nbsp\u2003em', 'ends with newline\n',
];

const corpus = generateCorpus(10_000, 1);
let tokenizer: BpeTokenizer;
let trainMs = 0;

before(() => {
  const start = performance.now();
  tokenizer = trainBpe(corpus, 1024);
  trainMs = performance.now() - start;
});

describe('byte-level BPE training', () => {
  test('is fast, reaches the exact vocabulary size and keeps the fixed layout', () => {
    const chars = corpus.reduce((n, s) => n + s.length, 0);
    assert.ok(chars > 250_000, `corpus holds ${chars} characters`);
    assert.ok(trainMs < 10_000, `training took ${trainMs.toFixed(0)} ms`);
    console.log(`# trained vocab 1024 on ${corpus.length} sentences / ${chars} chars in ${trainMs.toFixed(0)} ms`);
    assert.equal(tokenizer.size, 1024);
    assert.equal(new Set(tokenizer.tokens).size, 1024);
    assert.deepEqual([tokenizer.tokens[0], tokenizer.tokens[1]], ['<s>', '</s>']);
    assert.deepEqual([tokenizer.bos, tokenizer.eos], [0, 1]);
    assert.deepEqual(tokenizer.tokens.slice(2, 258), BYTE_TO_UNICODE);
    assert.equal(tokenizer.types.filter((t) => t === TOKEN_TYPE_CONTROL).length, 2);
    // Frequent words of the corpus become single tokens.
    assert.deepEqual(tokenizer.encode(' was born in'), [tokenizer.tokenId('Ġwas'), tokenizer.tokenId('Ġborn'), tokenizer.tokenId('Ġin')]);
  });

  test('is deterministic', () => {
    const again = trainBpe([...corpus], 1024);
    assert.deepEqual(again.tokens, tokenizer.tokens);
    assert.deepEqual(again.merges, tokenizer.merges);
    // Order of the corpus lines must not matter either: only word counts do.
    const shuffled = trainBpe([...corpus].reverse(), 1024);
    assert.deepEqual(shuffled.merges, tokenizer.merges);
  });

  test('stops early when no pair is frequent enough, and refuses too small a vocabulary', () => {
    const small = trainBpe(['ab ab ab'], 2000);
    assert.ok(small.size < 2000 && small.size > 258);
    assert.throws(() => trainBpe(corpus, 100), /vocabSize must be/);
  });

  test('merges spell tokens in the byte alphabet, separated by one space', () => {
    for (const m of tokenizer.merges) {
      const [a, b, ...rest] = m.split(' ');
      assert.equal(rest.length, 0, m);
      assert.ok(tokenizer.tokenId(a!) !== undefined && tokenizer.tokenId(a! + b!) !== undefined, m);
    }
  });
});

describe('byte-level BPE encoding', () => {
  test('pre-tokenizes like the GPT-2 pattern', () => {
    assert.deepEqual(pretokenize("Varnok Telis's 12 cats  ran!!\n"), ['Varnok', ' Telis', "'s", ' 12', ' cats', ' ', ' ran', '!!', '\n']);
    assert.deepEqual(pretokenize('a\n b'), ['a', '\n', ' b']);
    assert.deepEqual(pretokenize('x\u00a0\u00a0y'), ['x', '\u00a0', '\u00a0', 'y']);
    assert.equal(pretokenize('Zürich – 東京').join(''), 'Zürich – 東京');
  });

  test('round-trips every corpus sentence and odd text', () => {
    for (const s of corpus) assert.equal(tokenizer.decode(tokenizer.encode(s)), s);
    for (const s of oddTexts) assert.equal(tokenizer.decode(tokenizer.encode(s)), s, JSON.stringify(s));
    assert.deepEqual(tokenizer.encode(''), []);
  });

  test('decode drops control tokens unless asked for them', () => {
    const ids = [tokenizer.bos, ...tokenizer.encode('Hello.'), tokenizer.eos];
    assert.equal(tokenizer.decode(ids), 'Hello.');
    assert.equal(tokenizer.decode(ids, { special: true }), '<s>Hello.</s>');
    assert.throws(() => tokenizer.decode([5000]), /out of range/);
  });

  test('survives toJSON / fromJSON', () => {
    const copy = BpeTokenizer.fromJSON(JSON.parse(JSON.stringify(tokenizer)));
    assert.deepEqual(copy.tokens, tokenizer.tokens);
    assert.deepEqual(copy.merges, tokenizer.merges);
    for (const s of [...corpus.slice(0, 200), ...oddTexts]) assert.deepEqual(copy.encode(s), tokenizer.encode(s));
    assert.throws(() => BpeTokenizer.fromJSON({ ...tokenizer.toJSON(), pre: 'llama3' }), /pre-tokenizer/);
  });
});

describe('llama.cpp loads the vocabulary', () => {
  let native: GraftNative;
  const modelPath = path.join(tempDir('graft-bpe-'), 'bpe.gguf');

  before(async () => {
    native = await loadNative();
    makeTestModel(native, {
      arch: 'llama', layers: 1, embd: 32, ff: 64, heads: 2, kvHeads: 2, vocab: tokenizer.size, type: 'f32', seed: 3,
      contextLength: 64, vocabularyKv: gpt2VocabularyKv(tokenizer),
    }, modelPath);
  });

  test('the model metadata holds the gpt2 vocabulary', () => {
    const kv = new Map(native.inspect(modelPath).kv.map((e) => [e.key, e.value]));
    assert.equal(kv.get('tokenizer.ggml.model'), 'gpt2');
    assert.equal(kv.get('tokenizer.ggml.pre'), 'gpt-2');
  });

  test('tokenizes exactly like encode, adds our BOS, and gives the same pieces', async () => {
    const session = await openLlamaSession(native, modelPath, { contextSize: 64 });
    try {
      assert.equal(session.nVocab, tokenizer.size);
      assert.equal(session.bosToken, tokenizer.bos);
      assert.equal(session.addsBos, true);
      const sample = [...generateCorpus(200, 2), ...oddTexts];
      for (const s of sample) {
        assert.deepEqual([...session.tokenize(s, false)], tokenizer.encode(s), JSON.stringify(s));
      }
      const withBos = [...session.tokenize('Varnok Telis was born in Oskadar.', true)];
      assert.deepEqual(withBos, [tokenizer.bos, ...tokenizer.encode('Varnok Telis was born in Oskadar.')]);
      // A piece that is part of a UTF-8 sequence cannot cross into JS as text; all others must match.
      const strict = new TextDecoder('utf-8', { fatal: true });
      let compared = 0;
      for (let id = 0; id < tokenizer.size; id++) {
        if (tokenizer.types[id] === TOKEN_TYPE_CONTROL) {
          assert.equal(session.tokenPiece(id), tokenizer.tokens[id]);
          continue;
        }
        let text: string;
        try {
          text = strict.decode(tokenizer.tokenBytes(id));
        } catch {
          continue;
        }
        assert.equal(session.tokenPiece(id), text, `token ${id}`);
        compared++;
      }
      // Only the 128 lone bytes ≥ 0x80 and the two control tokens are left out.
      assert.ok(compared >= tokenizer.size - 130, `${compared} pieces compared`);
    } finally {
      session.dispose();
    }
  });
});
