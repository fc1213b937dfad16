// A byte-level BPE tokenizer that Graft trains for its own demo model and writes into the
// GGUF as llama.cpp's "gpt2" vocabulary. Everything here mirrors what llama.cpp does with
// such a vocabulary (src/llama-vocab.cpp, src/unicode.cpp), because the demo model is only
// useful if llama.cpp turns a prompt into exactly the ids the model was trained on.

/** llama.cpp's `tokenizer.ggml.pre` whose pre-tokenizer is the split in pretokenize(). */
export const GPT2_PRE_TOKENIZER = 'gpt-2';

/** llama.cpp token types. */
export const TOKEN_TYPE_NORMAL = 1;
export const TOKEN_TYPE_CONTROL = 3;

export const BOS_TEXT = '<s>';
export const EOS_TEXT = '</s>';

// GPT-2 maps every byte to a printable code point so that tokens never hold spaces or
// control characters: the merges list separates its two halves with a space, and llama.cpp
// maps pre-tokenized bytes through the same table before looking merges up.
function buildByteTable(): string[] {
  const table: string[] = new Array(256);
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 256;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(printable(b) ? b : next++);
  return table;
}

export const BYTE_TO_UNICODE: readonly string[] = buildByteTable();
const UNICODE_TO_BYTE = new Map(BYTE_TO_UNICODE.map((ch, b) => [ch, b]));

// The GPT-2 pattern. llama.cpp runs a hand-written equivalent whose \s is the Unicode
// White_Space set (JS's \s differs: it adds U+FEFF and lacks U+0085), hence the spelling.
// The trailing bare whitespace alternative covers what llama.cpp's code does for a single
// whitespace before a non-space, which the published pattern leaves unmatched.
const GPT2_SPLIT =
  /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\p{White_Space}\p{L}\p{N}]+|\p{White_Space}+(?!\P{White_Space})|\p{White_Space}+/gu;

/** Text split into the words BPE works within, as llama.cpp's "gpt-2" pre-tokenizer splits it. */
export function pretokenize(text: string): string[] {
  return text.match(GPT2_SPLIT) ?? [];
}

const utf8 = new TextEncoder();

/** A word in the byte-mapped alphabet, one code point per UTF-8 byte. */
export function byteEncode(word: string): string {
  let out = '';
  for (const b of utf8.encode(word)) out += BYTE_TO_UNICODE[b];
  return out;
}

export interface BpeTokenizerJson {
  format: 'graft-bpe';
  version: 1;
  pre: string;
  tokens: string[];
  types: number[];
  merges: string[];
  bos: number;
  eos: number;
}

export interface TrainBpeOptions {
  /** Pairs seen fewer times than this are never merged (default 2); training may then stop short of vocabSize. */
  minPairCount?: number;
}

export class BpeTokenizer {
  /** Token texts in the byte-mapped alphabet, indexed by id. */
  readonly tokens: readonly string[];
  readonly types: readonly number[];
  /** "left right" in the byte-mapped alphabet, highest priority first. */
  readonly merges: readonly string[];
  readonly bos: number;
  readonly eos: number;
  private readonly ids = new Map<string, number>();
  private readonly ranks = new Map<string, number>();
  private readonly wordCache = new Map<string, number[]>();

  constructor(tokens: string[], types: number[], merges: string[], bos: number, eos: number) {
    if (tokens.length !== types.length) throw new Error(`${tokens.length} tokens but ${types.length} token types`);
    if (!(bos in tokens) || !(eos in tokens)) throw new Error('the BOS and EOS ids must be tokens');
    this.tokens = tokens;
    this.types = types;
    this.merges = merges;
    this.bos = bos;
    this.eos = eos;
    // First id wins for duplicate texts; llama.cpp's text-to-id map keeps the last, so a
    // vocabulary with duplicates would tokenize differently there and is refused.
    tokens.forEach((t, id) => {
      if (this.ids.has(t)) throw new Error(`token text '${t}' appears twice (ids ${this.ids.get(t)} and ${id})`);
      this.ids.set(t, id);
    });
    for (const b of BYTE_TO_UNICODE) if (!this.ids.has(b)) throw new Error('the vocabulary lacks a byte token');
    merges.forEach((m, rank) => {
      const space = m.indexOf(' ', 1);
      if (space < 0) throw new Error(`merge '${m}' has no separating space`);
      if (!this.ranks.has(m)) this.ranks.set(m, rank);
    });
  }

  get size(): number {
    return this.tokens.length;
  }

  tokenId(text: string): number | undefined {
    return this.ids.get(text);
  }

  /** Token ids of the text without BOS/EOS; special-token texts in it are encoded as plain text. */
  encode(text: string): number[] {
    const out: number[] = [];
    for (const word of pretokenize(text)) {
      let ids = this.wordCache.get(word);
      if (!ids) {
        ids = this.encodeWord(byteEncode(word));
        if (this.wordCache.size < 100_000) this.wordCache.set(word, ids);
      }
      for (const id of ids) out.push(id);
    }
    return out;
  }

  // Like llama.cpp: start from bytes and keep merging the adjacent pair of lowest rank,
  // the leftmost one on ties, until no pair has a rank.
  private encodeWord(mapped: string): number[] {
    const symbols = Array.from(mapped);
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const rank = this.ranks.get(`${symbols[i]} ${symbols[i + 1]}`);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          best = i;
        }
      }
      if (best < 0) break;
      symbols.splice(best, 2, symbols[best]! + symbols[best + 1]!);
    }
    const ids: number[] = [];
    for (const s of symbols) {
      const id = this.ids.get(s);
      if (id !== undefined) ids.push(id);
      // A merge whose result is not a token (only in a hand-made vocabulary): llama.cpp falls back to bytes.
      else for (const ch of s) ids.push(this.ids.get(ch)!);
    }
    return ids;
  }

  /** The bytes a token stands for (control tokens: none). */
  tokenBytes(id: number): Uint8Array {
    const text = this.tokens[id];
    if (text === undefined) throw new Error(`token id ${id} is out of range (vocabulary of ${this.size})`);
    if (this.types[id] === TOKEN_TYPE_CONTROL) return new Uint8Array(0);
    const bytes: number[] = [];
    for (const ch of text) {
      const b = UNICODE_TO_BYTE.get(ch);
      if (b === undefined) throw new Error(`token ${id} holds '${ch}', which is not in the byte alphabet`);
      bytes.push(b);
    }
    return Uint8Array.from(bytes);
  }

  /** Text of the ids; control tokens are dropped unless `special`, then written as their text. */
  decode(ids: ArrayLike<number>, options: { special?: boolean } = {}): string {
    const parts: Uint8Array[] = [];
    let length = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const bytes = this.types[id] === TOKEN_TYPE_CONTROL && options.special ? utf8.encode(this.tokens[id]!) : this.tokenBytes(id);
      parts.push(bytes);
      length += bytes.length;
    }
    const all = new Uint8Array(length);
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    return new TextDecoder().decode(all);
  }

  toJSON(): BpeTokenizerJson {
    return {
      format: 'graft-bpe', version: 1, pre: GPT2_PRE_TOKENIZER,
      tokens: [...this.tokens], types: [...this.types], merges: [...this.merges], bos: this.bos, eos: this.eos,
    };
  }

  static fromJSON(json: BpeTokenizerJson): BpeTokenizer {
    if (json?.format !== 'graft-bpe' || json.version !== 1) throw new Error('not a graft-bpe tokenizer (version 1)');
    if (json.pre !== GPT2_PRE_TOKENIZER) throw new Error(`unsupported pre-tokenizer '${json.pre}'`);
    return new BpeTokenizer(json.tokens, json.types, json.merges, json.bos, json.eos);
  }
}

/**
 * Byte-level BPE trained on the corpus: ids 0 and 1 are <s> and </s>, 2..257 the bytes in
 * byte order, then one token per merge until the vocabulary holds vocabSize tokens.
 * Deterministic: the most frequent pair wins, ties go to the smaller (left id, right id).
 */
export function trainBpe(corpus: readonly string[], vocabSize: number, options: TrainBpeOptions = {}): BpeTokenizer {
  const minPairCount = options.minPairCount ?? 2;
  if (!Number.isInteger(vocabSize) || vocabSize < 258) throw new Error(`vocabSize must be an integer ≥ 258 (2 special + 256 byte tokens), got ${vocabSize}`);
  const tokens = [BOS_TEXT, EOS_TEXT, ...BYTE_TO_UNICODE];
  const types = [TOKEN_TYPE_CONTROL, TOKEN_TYPE_CONTROL, ...BYTE_TO_UNICODE.map(() => TOKEN_TYPE_NORMAL)];
  const ids = new Map(tokens.map((t, i) => [t, i]));
  const merges: string[] = [];

  // Merging works on distinct words weighted by their counts; the corpus is read once.
  const wordCounts = new Map<string, number>();
  for (const line of corpus) for (const w of pretokenize(line)) wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
  const distinct = [...wordCounts.keys()].sort();
  const words: number[][] = distinct.map((w) => Array.from(utf8.encode(w), (b) => b + 2));
  const counts = distinct.map((w) => wordCounts.get(w)!);

  // Pair key packs two ids below 2^21 into one exact double.
  const SHIFT = 2 ** 21;
  if (vocabSize >= SHIFT) throw new Error(`vocabSize ${vocabSize} is too large`);
  const pairCounts = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const addPairs = (w: number, sign: 1 | -1) => {
    const s = words[w]!;
    for (let i = 0; i + 1 < s.length; i++) {
      const key = s[i]! * SHIFT + s[i + 1]!;
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + sign * counts[w]!);
      if (sign > 0) {
        let set = pairWords.get(key);
        if (!set) pairWords.set(key, (set = new Set()));
        set.add(w);
      }
    }
  };
  for (let w = 0; w < words.length; w++) addPairs(w, 1);

  while (tokens.length < vocabSize) {
    let bestKey = -1;
    let bestCount = 0;
    for (const [key, count] of pairCounts) {
      if (count > bestCount || (count === bestCount && count > 0 && key < bestKey)) {
        bestKey = key;
        bestCount = count;
      }
    }
    if (bestKey < 0 || bestCount < minPairCount) break;
    const left = Math.floor(bestKey / SHIFT);
    const right = bestKey - left * SHIFT;
    const text = tokens[left]! + tokens[right]!;
    merges.push(`${tokens[left]} ${tokens[right]}`);
    // Two merge paths can spell the same text ("ab c", "a bc"); both merges then lead to one token.
    let merged = ids.get(text);
    if (merged === undefined) {
      merged = tokens.length;
      tokens.push(text);
      types.push(TOKEN_TYPE_NORMAL);
      ids.set(text, merged);
    }
    const affected = [...pairWords.get(bestKey)!].sort((a, b) => a - b);
    for (const w of affected) {
      const s = words[w]!;
      let has = false;
      for (let i = 0; i + 1 < s.length && !has; i++) has = s[i] === left && s[i + 1] === right;
      if (!has) continue;
      addPairs(w, -1);
      const next: number[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === left && s[i + 1] === right) {
          next.push(merged);
          i++;
        } else next.push(s[i]!);
      }
      words[w] = next;
      addPairs(w, 1);
    }
    pairCounts.delete(bestKey);
    pairWords.delete(bestKey);
    for (const [key, count] of pairCounts) if (count === 0) pairCounts.delete(key);
  }
  return new BpeTokenizer(tokens, types, merges, 0, 1);
}
