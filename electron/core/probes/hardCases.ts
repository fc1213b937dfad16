// Hard cases in the spirit of HardEdit (Yang et al. 2024): variations of the researcher's
// own edit that are known to push locate-then-edit methods towards collapse. Each case is a
// short sequence of requests to apply in order on a throwaway stack; the collapse probes then
// say whether the model survived. Cases are built against the model's own tokenizer, because
// "short", "one token" and "long" only mean something under the vocabulary being edited.
import { continuationTokens } from '../engine/graphModel.ts';
import { parseEditRequest, type EditRequest } from '../edits/request.ts';
import { SeededRandom } from '../util/seededRandom.ts';

export interface HardCaseVocabulary {
  /** Token ids of `text`; addBos adds the model's start token as llama.cpp does. */
  tokenize(text: string, addBos: boolean): Int32Array;
  /** The text of one token; without it, short subjects are searched among letter strings. */
  tokenPiece?(token: number): string;
  nVocab: number;
}

/** The vocabulary view of a graph model or llama session. */
export function vocabularyOf(model: {
  tokenize(text: string, addSpecial?: boolean): Int32Array;
  tokenPiece(token: number): string;
  info?: { nVocab: number };
  nVocab?: number;
}): HardCaseVocabulary {
  const nVocab = model.info?.nVocab ?? model.nVocab;
  if (nVocab === undefined) throw new Error('the model reports no vocabulary size');
  return { tokenize: (t, bos) => model.tokenize(t, bos), tokenPiece: (id) => model.tokenPiece(id), nVocab };
}

export type HardCaseId = 'subject-first' | 'short-subject' | 'numeric-target' | 'long-target' | 'repeated-subject' | 'many-on-one-layer';

export interface HardCase {
  id: HardCaseId;
  title: string;
  /** One sentence on the danger the case probes. */
  why: string;
  /** Apply in this order, each on the stack left by the previous ones. */
  requests: EditRequest[];
  /** true: every request must go to the same layer (whichever the caller picks). */
  sameLayer: boolean;
  /** Set when the case could not be built exactly as intended under this vocabulary. */
  note?: string;
}

export interface HardCaseOptions {
  seed?: number;
  /** How many times the repeated case edits its subject (default 3). */
  repeats?: number;
  /** How many subjects the one-layer case edits (default 8). */
  sameLayerEdits?: number;
  /** The long target's minimum length in tokens (default 6). */
  minTargetTokens?: number;
}

// Plain, common words: they tokenise compactly in large vocabularies and are at least
// spellable in tiny story vocabularies, so the cases stay about the edit, not about rare text.
const names = ['Anna', 'Ben', 'Clara', 'David', 'Emma', 'Finn', 'Grace', 'Henry', 'Ivy', 'Jack', 'Kate', 'Leo', 'Mia', 'Noah', 'Olivia', 'Paul', 'Rosa', 'Sam', 'Tara', 'Victor'];
const places = ['moon', 'garden', 'river', 'castle', 'forest', 'school', 'kitchen', 'ocean', 'village', 'market', 'library', 'mountain', 'island', 'bakery', 'farm', 'station', 'bridge', 'desert', 'harbour', 'museum'];
const adjectives = ['old', 'little', 'green', 'quiet', 'tall', 'red', 'cold', 'bright', 'small', 'happy'];

const descriptions: Record<HardCaseId, { title: string; why: string }> = {
  'subject-first': {
    title: 'Subject is the first token',
    why: 'With nothing before the subject its key is computed from almost no context, so the update can be large and reach prompts that merely start the same way.',
  },
  'short-subject': {
    title: 'Very short subject',
    why: 'A one- or two-character subject is a single common token seen in countless contexts, so an edit keyed on it can leak into ordinary text.',
  },
  'numeric-target': {
    title: 'Numeric target',
    why: 'Number tokens are shared by dates, counts and prices everywhere, so forcing a year as the answer risks shifting numbers across the model.',
  },
  'long-target': {
    title: 'Long multi-token target',
    why: 'Writing many target tokens through one low-rank update needs a large change of the layer output, which tends to disturb unrelated text.',
  },
  'repeated-subject': {
    title: 'Same subject edited repeatedly',
    why: 'Successive edits of one subject stack updates on nearly the same key, a pattern under which sequential ROME-style editing is known to collapse.',
  },
  'many-on-one-layer': {
    title: 'Many edits on one layer',
    why: 'Updates to one weight add up, and its norm and the perplexity of ordinary text can break down after a handful of edits.',
  },
};

/** The hard cases for `request`, deterministic for a seed and a vocabulary. */
export function generateHardCases(vocabulary: HardCaseVocabulary, request: EditRequest, options: HardCaseOptions = {}): HardCase[] {
  const seed = options.seed ?? 0;
  const repeats = options.repeats ?? 3;
  const sameLayerEdits = options.sameLayerEdits ?? 8;
  const minTargetTokens = options.minTargetTokens ?? 6;
  if (!Number.isInteger(repeats) || repeats < 2) throw new Error(`repeats must be an integer of at least 2, got ${repeats}`);
  if (!Number.isInteger(sameLayerEdits) || sameLayerEdits < 2 || sameLayerEdits > names.length) {
    throw new Error(`sameLayerEdits must be an integer from 2 to ${names.length}, got ${sameLayerEdits}`);
  }
  if (!Number.isInteger(minTargetTokens) || minTargetTokens < 1) throw new Error(`minTargetTokens must be a positive integer, got ${minTargetTokens}`);
  const base = parseEditRequest(raw(request), 'request');
  // Words the generated cases must not reuse: a new target equal to the old answer would
  // be rejected, and a pool name equal to the subject would make two cases the same.
  const taken = new Set([base.subject, base.targetNew, base.targetTrue ?? ''].map(norm));
  const rng = (id: HardCaseId) => new SeededRandom((Math.imul(seed >>> 0, 0x9e3779b1) ^ stringHash(id)) >>> 0);

  const cases: HardCase[] = [];
  const add = (id: HardCaseId, requests: Partial<EditRequest>[], extra: { sameLayer?: boolean; note?: string } = {}) => {
    const parsed = requests.map((r, i) => parseEditRequest(raw({ ...base, ...r }), `hardCases.${id}[${i}]`));
    cases.push({ id, ...descriptions[id], requests: parsed, sameLayer: extra.sameLayer ?? false, ...(extra.note ? { note: extra.note } : {}) });
  };
  // Requests about a different subject keep the neighbourhood (prompts whose answers must
  // not change whatever is edited) but not paraphrases or generation prompts, which name
  // the researcher's subject.
  const otherSubject = { paraphrasePrompts: [], generationPrompts: [] };

  add('subject-first', [{ prompt: subjectFirstPrompt(base.prompt), subject: base.subject.trim() }],
    base.prompt.startsWith('{}') ? { note: 'the researcher\'s prompt already starts with its subject, so this case repeats that edit' } : {});

  const short = shortSubject(vocabulary, base.prompt, taken, rng('short-subject'));
  add('short-subject', [{ subject: short.subject, targetTrue: undefined, ...otherSubject }], short.note ? { note: short.note } : {});

  const r = rng('numeric-target');
  let year = '';
  do year = ` ${1200 + Math.floor(r.next() * 900)}`; while (taken.has(norm(year)));
  add('numeric-target', [{ targetNew: year }]);

  add('long-target', [{ targetNew: longTarget(vocabulary, fill(base), minTargetTokens, rng('long-target')) }]);

  const more = shuffled(places.filter((p) => !taken.has(p)), rng('repeated-subject')).slice(0, repeats - 1);
  if (more.length < repeats - 1) throw new Error(`only ${more.length + 1} distinct targets are available for ${repeats} repeated edits`);
  const targets = [base.targetNew, ...more.map((p) => ` ${p}`)];
  // After the first edit the model's answer is the previous target, so that is what each
  // later edit changes.
  add('repeated-subject', targets.map((targetNew, i) => ({ targetNew, targetTrue: i === 0 ? base.targetTrue : targets[i - 1] })));

  const m = rng('many-on-one-layer');
  // A name that a neighbourhood prompt mentions would turn that prompt into an edited one.
  const inNeighbourhood = (n: string) => base.neighborhoodPrompts.some((p) => new RegExp(`\\b${n}\\b`, 'i').test(p));
  const subjects = shuffled(names.filter((n) => !taken.has(norm(n)) && !inNeighbourhood(n)), m).slice(0, sameLayerEdits - 1);
  if (subjects.length < sameLayerEdits - 1) throw new Error(`only ${subjects.length + 1} distinct subjects are available for the one-layer case`);
  const manyTargets = shuffled(places.filter((p) => !taken.has(p)), m);
  add('many-on-one-layer', [
    {},
    ...subjects.map((subject, i) => ({ subject, targetNew: ` ${manyTargets[i % manyTargets.length]}`, targetTrue: undefined, ...otherSubject })),
  ], { sameLayer: true });
  return cases;
}

/**
 * The researcher's relation with the subject moved to the front: "The mother tongue of {} is"
 * → "{}'s mother tongue is", "One day, {} went to the" → "{} went to the". A prompt that
 * ends with its subject keeps no usable relation after it and becomes "{} is".
 */
export function subjectFirstPrompt(prompt: string): string {
  if (prompt.startsWith('{}')) return prompt;
  const of = /^(?:the|a|an)\s+(.+?)\s+of\s+\{\}(.*)$/is.exec(prompt);
  if (of) return `{}'s ${of[1]}${of[2]}`;
  const after = prompt.slice(prompt.indexOf('{}') + 2);
  // ", went to" loses its comma; "'s home is" stays attached to the subject.
  return /[\p{L}\p{N}]/u.test(after) ? `{}${after.replace(/^[,;:]?\s+/, ' ')}` : '{} is';
}

/**
 * The tokens the subject takes inside `prompt` (with its leading space, if any): undefined
 * when the subject merges with the text around it, so that no token span is its own.
 */
export function subjectTokens(vocabulary: Pick<HardCaseVocabulary, 'tokenize'>, prompt: string, subject: string): Int32Array | undefined {
  const at = prompt.indexOf('{}');
  const before = prompt.slice(0, at);
  const throughSubject = vocabulary.tokenize(before + subject, true);
  const prefix = vocabulary.tokenize(before.trimEnd(), true);
  const all = vocabulary.tokenize(prompt.replace('{}', subject), true);
  const startsWith = (a: Int32Array, b: Int32Array) => b.length <= a.length && b.every((t, i) => a[i] === t);
  if (!startsWith(throughSubject, prefix) || !startsWith(all, throughSubject)) return undefined;
  return throughSubject.slice(prefix.length);
}

function shortSubject(vocabulary: HardCaseVocabulary, prompt: string, taken: Set<string>, rng: SeededRandom): { subject: string; note?: string } {
  const found = new Set<string>();
  if (vocabulary.tokenPiece) {
    for (let t = 0; t < vocabulary.nVocab; t++) {
      const piece = vocabulary.tokenPiece(t).replace(/^[\s\u2581]/, '');
      if (/^\p{L}{1,2}$/u.test(piece)) found.add(piece);
    }
  } else {
    const letters = 'abcdefghijklmnopqrstuvwxyz';
    for (const a of letters) {
      found.add(a).add(a.toUpperCase());
      for (const b of letters) found.add(a + b).add(a.toUpperCase() + b);
    }
  }
  const candidates = shuffled([...found].filter((s) => !taken.has(norm(s))).sort(), rng);
  let best: { subject: string; tokens: number } | undefined;
  for (const subject of candidates) {
    const tokens = subjectTokens(vocabulary, prompt, subject)?.length ?? Infinity;
    if (tokens === 1) return { subject };
    if (!best || tokens < best.tokens) best = { subject, tokens };
  }
  if (!best) throw new Error('the vocabulary holds no one- or two-letter piece to use as a short subject');
  return { subject: best.subject, note: `no one- or two-letter subject is a single token in this prompt; "${best.subject}" takes ${best.tokens}` };
}

/** A plain phrase, lengthened until the tokenizer gives it at least `min` tokens after `text`. */
function longTarget(vocabulary: HardCaseVocabulary, text: string, min: number, rng: SeededRandom): string {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rng.next() * xs.length)]!;
  let target = ` the ${pick(adjectives)} ${pick(places)}`;
  for (let i = 0; i < 64; i++) {
    if (continuationTokens((t, bos) => vocabulary.tokenize(t, bos), text, target).length >= min) return target;
    target += ` of the ${pick(adjectives)} ${pick(places)}`;
  }
  throw new Error(`could not build a target of ${min} tokens`);
}

function shuffled<T>(xs: T[], rng: SeededRandom): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function norm(s: string): string {
  return s.trim().toLowerCase();
}

function stringHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function fill(r: EditRequest): string {
  return r.prompt.replace('{}', r.subject);
}

/** An EditRequest in the input form parseEditRequest validates. */
function raw(r: EditRequest) {
  return {
    prompt: r.prompt,
    subject: r.subject,
    target_new: r.targetNew,
    target_true: r.targetTrue,
    paraphrase_prompts: r.paraphrasePrompts,
    neighborhood_prompts: r.neighborhoodPrompts,
    generation_prompts: r.generationPrompts,
  };
}
