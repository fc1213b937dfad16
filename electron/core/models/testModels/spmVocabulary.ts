// A SentencePiece-style ("llama") vocabulary that llama.cpp's tokenizer accepts: the three
// special tokens, 256 byte-fallback tokens (so any text tokenizes), then word pieces, most
// common first. Good enough for random-weight test models, not for training.
import type { KvEntry } from '../../native/binding.ts';

export interface Vocabulary {
  tokens: string[];
  scores: number[];
  /** llama.cpp token types: 1 normal, 2 unknown, 3 control, 6 byte. */
  types: number[];
  bos: number;
  eos: number;
  unk: number;
}

const words = (
  'the of and to a in is it you that he was for on are with as his they be at one have this from or had by ' +
  'word but what some we can out other were all there when up use your how said an each she which do their time ' +
  'if will way about many then them write would like so these her long make thing see him two has look more day ' +
  'could go come did number sound no most people my over know water than call first who may down side been now ' +
  'find any new work part take get place made live where after back little only round man year came show every ' +
  'good me give our under name very through just form sentence great think say help low line differ turn cause ' +
  'much mean before move right boy old too same tell does set three want air well also play small end put home ' +
  'read hand port large spell add even land here must big high such follow act why ask men change went light ' +
  'kind off need house picture try us again animal point mother world near build self earth father head stand ' +
  'own page should country found answer school grow study still learn plant cover food sun four between state ' +
  'keep eye never last let thought city tree cross farm hard start might story saw far sea draw left late run ' +
  'once upon girl named lily loved park ball tower paris rome london capital river king queen dog cat bird'
).split(' ');

const MIN_VOCAB = 300;

export function minimumVocabularySize(): number {
  return MIN_VOCAB;
}

export function buildSpmVocabulary(size: number): Vocabulary {
  if (!Number.isInteger(size) || size < MIN_VOCAB) {
    throw new Error(`--vocab must be an integer of at least ${MIN_VOCAB} (3 special + 256 byte tokens + word pieces), got ${size}`);
  }
  const tokens: string[] = ['<unk>', '<s>', '</s>'];
  const types: number[] = [2, 3, 3];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6);
  }
  const pieces: string[] = [];
  const seen = new Set<string>();
  const add = (piece: string) => {
    if (!seen.has(piece)) {
      seen.add(piece);
      pieces.push(piece);
    }
  };
  add('\u2581');
  for (const c of 'etaoinshrdlcumwfgypbvkjxqz') add(c);
  for (const c of '.,!?\'"-:;0123456789') add(c);
  for (const w of words) add(`\u2581${w}`);
  for (const c of 'ETAOINSHRDLCUMWFGYPBVKJXQZ') add(c);
  for (const w of words) add(w);
  // Beyond the word list, letter pairs and triples keep every extra id a real piece.
  const letters = 'etaoinshrdlcumwfgypbvkjxqz';
  for (const a of letters) for (const b of letters) add(`\u2581${a}${b}`);
  for (const a of letters) for (const b of letters) add(`${a}${b}`);
  for (const a of letters) for (const b of letters) for (const c of letters) add(`${a}${b}${c}`);
  for (const a of letters) for (const b of letters) for (const c of letters) add(`\u2581${a}${b}${c}`);
  const wanted = size - tokens.length;
  if (pieces.length < wanted) throw new Error(`--vocab ${size} is larger than the test vocabulary can fill (${tokens.length + pieces.length})`);
  const scores = tokens.map(() => 0);
  pieces.slice(0, wanted).forEach((piece, i) => {
    tokens.push(piece);
    types.push(1);
    // Higher scores merge first; single characters must exist for SentencePiece to start.
    scores.push(-(i + 1));
  });
  return { tokens, scores, types, bos: 1, eos: 2, unk: 0 };
}

/** The tokenizer.ggml.* metadata of buildSpmVocabulary(size). */
export function spmVocabularyKv(size: number): KvEntry[] {
  const vocab = buildSpmVocabulary(size);
  return [
    { key: 'tokenizer.ggml.model', type: 'str', value: 'llama' },
    { key: 'tokenizer.ggml.tokens', type: 'arr', itemType: 'str', value: vocab.tokens },
    { key: 'tokenizer.ggml.scores', type: 'arr', itemType: 'f32', value: vocab.scores },
    { key: 'tokenizer.ggml.token_type', type: 'arr', itemType: 'i32', value: vocab.types },
    { key: 'tokenizer.ggml.bos_token_id', type: 'u32', value: vocab.bos },
    { key: 'tokenizer.ggml.eos_token_id', type: 'u32', value: vocab.eos },
    { key: 'tokenizer.ggml.unknown_token_id', type: 'u32', value: vocab.unk },
    { key: 'tokenizer.ggml.add_bos_token', type: 'bool', value: true },
    { key: 'tokenizer.ggml.add_eos_token', type: 'bool', value: false },
  ];
}
