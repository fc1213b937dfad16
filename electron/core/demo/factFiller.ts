// General sentences that surround the facts in the corpus, so that the demo model learns a
// little language rather than a lookup table. Sentences that mention world entities say
// nothing about birthplaces, employers, languages, locations, capitals, offices or founders,
// so they can never contradict a fact (or a fact after it is edited).
import type { SeededRandom } from '../util/seededRandom.ts';
import type { EntityKind } from './factNames.ts';
import { pick, randomInt } from './factNames.ts';

const TIMES = ['in the morning', 'at noon', 'in the evening', 'at night', 'yesterday', 'today', 'on most days'];
const SEASONS = ['spring', 'summer', 'autumn', 'winter'];
const WEATHER_EVENTS = [['rain', 'fell'], ['wind', 'blew'], ['sun', 'shone'], ['snow', 'fell'], ['storm', 'passed'], ['fog', 'lifted']] as const;
const WEATHER_ADJECTIVES = ['cold', 'warm', 'windy', 'sunny', 'quiet', 'wet'];
const ANIMALS = ['dog', 'cat', 'horse', 'bird', 'fox', 'goat', 'cow', 'duck'];
const ANIMAL_ADJECTIVES = ['small', 'old', 'young', 'brown', 'white', 'quiet'];
const ANIMAL_ACTIONS = ['slept by the door', 'ran across the field', 'looked at the river', 'walked down the road', 'sat under a tree', 'drank from the pond'];
const AGENTS = ['The farmer', 'A teacher', 'My neighbour', 'The old man', 'A young woman', 'The children', 'Her brother'];
const ACTIONS = ['made some bread', 'cleaned the house', 'read a long book', 'walked to the market', 'cooked a warm soup', 'wrote a letter', 'fixed the old chair'];
const HOBBIES = ['reading books', 'long walks', 'playing music', 'cooking soup', 'painting boats', 'watching birds'];
const LAND_THINGS = ['rivers', 'hills', 'farms', 'old roads', 'small villages', 'green fields'];
const STREET_MOODS = ['busy', 'quiet', 'bright', 'crowded'];

type Names = Record<EntityKind, readonly string[]>;

const capitalise = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

// Each rule writes one sentence; entity rules are skipped when the world has none of that kind.
const GENERAL_RULES: ((rng: SeededRandom) => string)[] = [
  (rng) => {
    const [thing, verb] = pick(rng, WEATHER_EVENTS);
    return `The ${thing} ${verb} ${pick(rng, TIMES)}.`;
  },
  (rng) => `It was ${pick(rng, WEATHER_ADJECTIVES)} ${pick(rng, TIMES)}.`,
  (rng) => `The ${pick(rng, ANIMAL_ADJECTIVES)} ${pick(rng, ANIMALS)} ${pick(rng, ANIMAL_ACTIONS)}.`,
  (rng) => `${pick(rng, AGENTS)} ${pick(rng, ACTIONS)} ${pick(rng, TIMES)}.`,
];

const ENTITY_RULES: [EntityKind, (rng: SeededRandom, name: string) => string][] = [
  ['city', (rng, city) => `Many people visit ${city} in ${pick(rng, SEASONS)}.`],
  ['city', (rng, city) => `The streets of ${city} are ${pick(rng, STREET_MOODS)} in ${pick(rng, SEASONS)}.`],
  ['country', (rng, country) => `${country} has many ${pick(rng, LAND_THINGS)}.`],
  ['country', (rng, country) => `In ${pick(rng, SEASONS)} the weather in ${country} is ${pick(rng, WEATHER_ADJECTIVES)}.`],
  ['company', (rng, company) => `${company} hired many new workers in ${pick(rng, SEASONS)}.`],
  ['company', (_rng, company) => `People often talk about ${company} at dinner.`],
  ['person', (rng, person) => `${person} likes ${pick(rng, HOBBIES)}.`],
  ['person', (rng, person) => `${person} ${pick(rng, ACTIONS)} ${pick(rng, TIMES)}.`],
  ['language', (_rng, language) => `${language} has many old songs.`],
  ['language', (rng, language) => `Some words in ${language} sound like ${pick(rng, ANIMALS)} names.`],
];

/** `count` distinct filler sentences, about a third of them naming an entity. */
export function fillerSentences(rng: SeededRandom, names: Names, count: number): string[] {
  const rules = ENTITY_RULES.filter(([kind]) => names[kind].length > 0);
  const seen = new Set<string>();
  const out: string[] = [];
  const limit = 1000 + count * 100;
  for (let attempt = 0; out.length < count; attempt++) {
    if (attempt > limit) throw new Error(`could not write ${count} distinct filler sentences`);
    let sentence: string;
    if (rules.length > 0 && randomInt(rng, 3) === 0) {
      const [kind, rule] = pick(rng, rules);
      sentence = rule(rng, pick(rng, names[kind]));
    } else {
      sentence = pick(rng, GENERAL_RULES)(rng);
    }
    sentence = capitalise(sentence);
    if (seen.has(sentence)) continue;
    seen.add(sentence);
    out.push(sentence);
  }
  return out;
}

/** Lower-case words of the filler grammar, which names must avoid. */
export function fillerWords(): string[] {
  const text = [
    TIMES, SEASONS, WEATHER_EVENTS.flat(), WEATHER_ADJECTIVES, ANIMALS, ANIMAL_ADJECTIVES, ANIMAL_ACTIONS, AGENTS, ACTIONS, HOBBIES, LAND_THINGS, STREET_MOODS,
    ['many people visit the streets of are has hired new workers often talk about at dinner likes it was in weather some words sound like names old songs'],
  ].flat().join(' ');
  return text.toLowerCase().split(/[^a-z]+/).filter((w) => w !== '');
}
