// Made-up names for the fact world. They are built from syllables so that they are
// pronounceable and split into a handful of BPE pieces, and no real-world knowledge of a
// name can leak into (or out of) the demo model.
import type { SeededRandom } from '../util/seededRandom.ts';

export type EntityKind = 'person' | 'city' | 'country' | 'company' | 'language';

/** Uniform integer in [0, n). */
export function randomInt(rng: SeededRandom, n: number): number {
  return Math.floor(rng.next() * n);
}

export function pick<T>(rng: SeededRandom, items: readonly T[]): T {
  if (items.length === 0) throw new Error('cannot pick from an empty list');
  return items[randomInt(rng, items.length)]!;
}

/** Fisher–Yates on a copy. */
export function shuffled<T>(rng: SeededRandom, items: readonly T[]): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = randomInt(rng, i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

// Clusters only start a word: inside a name they would meet a coda ("nbr") and stop
// being pronounceable.
const FIRST_ONSETS = ['b', 'd', 'f', 'g', 'h', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'z', 'br', 'dr', 'gr', 'kr', 'tr', 'st', 'sh'];
const INNER_ONSETS = ['b', 'd', 'f', 'g', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'z'];
const VOWELS = ['a', 'e', 'i', 'o', 'u'];
const CODAS = ['', '', 'n', 'r', 'l', 's', 'm'];

// A final syllable per kind lets the tiny model tell a city from a company by its spelling,
// which makes answers of the wrong kind less likely before any fact has been learnt.
const KIND_ENDINGS: Record<Exclude<EntityKind, 'person'>, string[]> = {
  city: ['ton', 'dal', 'holm', 'vik', 'burg'],
  country: ['ria', 'nia', 'dor', 'via'],
  company: ['tek', 'lux', 'tron', 'max'],
  language: ['nish', 'lese', 'ric', 'dic'],
};

function syllable(rng: SeededRandom, first: boolean, last: boolean): string {
  const onset = pick(rng, first ? FIRST_ONSETS : INNER_ONSETS);
  return onset + pick(rng, VOWELS) + (last ? pick(rng, CODAS) : '');
}

function capitalise(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

/** One candidate word of 2–3 syllables for a kind; a person's first and last names use 'person'. */
export function nameWord(rng: SeededRandom, kind: EntityKind): string {
  const syllables = 2 + randomInt(rng, 2);
  let word = '';
  if (kind === 'person') {
    for (let i = 0; i < syllables; i++) word += syllable(rng, i === 0, i === syllables - 1);
  } else {
    for (let i = 0; i < syllables - 1; i++) word += syllable(rng, i === 0, false);
    word += pick(rng, KIND_ENDINGS[kind]);
  }
  return capitalise(word);
}

/**
 * Draws `count` names of a kind, every word distinct from all words in `taken` (which is
 * updated) and from the lower-case `reserved` words of templates and filler, so that no
 * name is also an ordinary word of the corpus.
 */
export function drawNames(rng: SeededRandom, kind: EntityKind, count: number, taken: Set<string>, reserved: ReadonlySet<string>): string[] {
  const names: string[] = [];
  const fresh = (word: string) => !taken.has(word) && !reserved.has(word.toLowerCase());
  const limit = 1000 + count * 200;
  for (let attempt = 0; names.length < count; attempt++) {
    if (attempt > limit) throw new Error(`could not draw ${count} distinct ${kind} names`);
    if (kind === 'person') {
      const first = nameWord(rng, kind);
      const last = nameWord(rng, kind);
      // Every first and last name is used once: two people sharing "Tavo" would make the
      // subject's first token ambiguous for a model this small.
      if (first === last || !fresh(first) || !fresh(last)) continue;
      taken.add(first);
      taken.add(last);
      names.push(`${first} ${last}`);
    } else {
      const word = nameWord(rng, kind);
      if (!fresh(word)) continue;
      taken.add(word);
      names.push(word);
    }
  }
  return names;
}
