// A small seeded world of made-up people, places, companies and languages with known facts.
// Graft's demo model is trained on a corpus written from it, so every fact the model knows
// has a ground truth, and edits of those facts can be measured against it. Everything is a
// function of the seed: the same seed gives the same world, corpus and rewrites everywhere.
import { SeededRandom } from '../util/seededRandom.ts';
import type { EditRequest } from '../edits/request.ts';
import { drawNames, pick, shuffled, type EntityKind } from './factNames.ts';
import { RELATIONS, SUBJECT_SLOT, renderTemplate, templatePrompt, templateWords, type RelationId, type RelationSpec } from './factTemplates.ts';
import { fillerSentences, fillerWords } from './factFiller.ts';

export type { EntityKind } from './factNames.ts';
export type { RelationId, RelationSpec } from './factTemplates.ts';

export interface FactWorldOptions {
  people: number;
  cities: number;
  countries: number;
  companies: number;
  languages: number;
  /** Distinct filler sentences in the corpus. */
  fillerSentences: number;
  /** Whether companies have a founded_by fact. */
  founders: boolean;
}

// Small on purpose: the demo model has about 1.6M parameters and must learn nearly all facts.
export const DEFAULT_FACT_WORLD_OPTIONS: Readonly<FactWorldOptions> = {
  people: 60,
  cities: 20,
  countries: 8,
  companies: 15,
  languages: 6,
  fillerSentences: 300,
  founders: true,
};

export interface Entity {
  kind: EntityKind;
  name: string;
}

export interface Fact {
  /** `relation:subject`; each subject has one object per relation. */
  id: string;
  relation: RelationId;
  subject: string;
  object: string;
  /** The two phrasings of the relation this fact is never written in: its paraphrases. */
  paraphrases: string[];
}

export interface FactWorld {
  seed: number;
  options: FactWorldOptions;
  entities: Entity[];
  facts: Fact[];
  relations: RelationSpec[];
  /** General sentences for the corpus, stating no facts. */
  filler: string[];
}

export interface FactPrompt {
  /** Sentence text before the object, subject filled in. */
  prompt: string;
  subject: string;
  /** ' ' + object. */
  answer: string;
  template: string;
}

export interface RewriteCase {
  fact: Fact;
  request: EditRequest;
  /** The neighbourhood prompts with the answers they must keep. */
  neighbours: { prompt: string; answer: string }[];
}

export interface GroundTruth {
  format: 'graft-fact-world';
  version: 2;
  seed: number;
  options: FactWorldOptions;
  entities: Entity[];
  relations: {
    id: RelationId;
    subjectKind: EntityKind;
    objectKind: EntityKind;
    templates: { text: string; split: 'phrasing' | 'unseen' }[];
  }[];
  facts: Fact[];
}

/**
 * Gives every subject one object, every object at least `minPerObject` subjects (so that
 * neighbourhood prompts exist for it), and the remaining subjects to objects with weights
 * 1, 1/2, 1/3, … over a shuffled order, so some objects are common and some rare.
 */
function assignObjects(rng: SeededRandom, subjects: readonly string[], objects: readonly string[], minPerObject: number): Map<string, string> {
  if (objects.length === 0) throw new Error('no objects to assign');
  const floor = Math.min(minPerObject, Math.floor(subjects.length / objects.length));
  const order = shuffled(rng, objects);
  const weights = order.map((_, i) => 1 / (i + 1));
  const total = weights.reduce((a, b) => a + b, 0);
  const out = new Map<string, string>();
  shuffled(rng, subjects).forEach((subject, i) => {
    if (i < floor * order.length) {
      out.set(subject, order[i % order.length]!);
      return;
    }
    let r = rng.next() * total;
    let k = 0;
    while (k < order.length - 1 && r >= weights[k]!) r -= weights[k++]!;
    out.set(subject, order[k]!);
  });
  return out;
}

export function generateFactWorld(seed: number, options: Partial<FactWorldOptions> = {}): FactWorld {
  const opts: FactWorldOptions = { ...DEFAULT_FACT_WORLD_OPTIONS, ...options };
  for (const key of ['people', 'cities', 'countries', 'companies', 'languages'] as const) {
    if (!Number.isInteger(opts[key]) || opts[key] < 1) throw new RangeError(`${key} must be a positive integer`);
  }
  if (opts.cities < opts.countries) throw new RangeError('every country needs a city for its capital: cities must be at least countries');
  const rng = new SeededRandom(seed);
  const reserved = new Set([...templateWords(), ...fillerWords()]);
  const taken = new Set<string>();
  const names: Record<EntityKind, string[]> = {
    person: drawNames(rng, 'person', opts.people, taken, reserved),
    city: drawNames(rng, 'city', opts.cities, taken, reserved),
    country: drawNames(rng, 'country', opts.countries, taken, reserved),
    company: drawNames(rng, 'company', opts.companies, taken, reserved),
    language: drawNames(rng, 'language', opts.languages, taken, reserved),
  };
  const entities: Entity[] = (['person', 'city', 'country', 'company', 'language'] as const).flatMap((kind) => names[kind].map((name) => ({ kind, name })));

  const byRelation = new Map<RelationId, Map<string, string>>();
  byRelation.set('born_in', assignObjects(rng, names.person, names.city, 2));
  byRelation.set('works_for', assignObjects(rng, names.person, names.company, 2));
  byRelation.set('speaks', assignObjects(rng, names.person, names.language, 3));
  // Every country gets a city first, so each has a capital inside its borders.
  const located = new Map<string, string>();
  const cityOrder = shuffled(rng, names.city);
  names.country.forEach((country, i) => located.set(cityOrder[i]!, country));
  for (const [city, country] of assignObjects(rng, cityOrder.slice(names.country.length), names.country, 1)) located.set(city, country);
  byRelation.set('located_in', new Map(names.city.map((c) => [c, located.get(c)!])));
  const capitals = new Map<string, string>();
  for (const country of names.country) capitals.set(country, pick(rng, names.city.filter((c) => located.get(c) === country)));
  byRelation.set('capital', capitals);
  // Head offices and founders come from small pools: with one object per company, most
  // objects would otherwise have a single subject and no neighbours.
  const poolSize = Math.max(1, Math.floor(opts.companies / 3));
  byRelation.set('headquartered_in', assignObjects(rng, names.company, shuffled(rng, names.city).slice(0, poolSize), 2));
  if (opts.founders) byRelation.set('founded_by', assignObjects(rng, names.company, shuffled(rng, names.person).slice(0, poolSize), 2));

  const relations = RELATIONS.filter((r) => byRelation.has(r.id)).map((r) => ({ ...r, phrasings: r.phrasings.slice(), unseen: r.unseen.slice() }));
  const facts: Fact[] = [];
  for (const r of relations) {
    const assigned = byRelation.get(r.id)!;
    // Held-out phrasings rotate over the subjects, so every phrasing is trained with most
    // subjects and held out for a third of them.
    const p = r.phrasings.length;
    const offset = rng.nextUint32() % p;
    names[r.subjectKind].forEach((subject, i) => {
      const object = assigned.get(subject)!;
      const paraphrases = [r.phrasings[(offset + i) % p]!, r.phrasings[(offset + i + Math.floor(p / 2)) % p]!];
      facts.push({ id: `${r.id}:${subject}`, relation: r.id, subject, object, paraphrases });
    });
  }
  const filler = fillerSentences(rng, names, opts.fillerSentences);
  return { seed, options: opts, entities, facts, relations, filler };
}

function relationOf(world: FactWorld, id: RelationId): RelationSpec {
  const r = world.relations.find((x) => x.id === id);
  if (!r) throw new Error(`the world has no relation ${id}`);
  return r;
}

/** Which phrasings ask about a fact: those it is trained in, its held-out paraphrases, or wording never in the corpus. */
export type PromptSet = 'train' | 'heldout' | 'unseen';

function templatesFor(world: FactWorld, fact: Fact, which: PromptSet): string[] {
  const r = relationOf(world, fact.relation);
  if (which === 'heldout') return fact.paraphrases.slice();
  if (which === 'unseen') return r.unseen.slice();
  return r.phrasings.filter((t) => !fact.paraphrases.includes(t));
}

/** Every fact through each of its trained phrasings, plus the filler, in a seeded order. */
export function trainingCorpus(world: FactWorld, seed: number = world.seed): string[] {
  const sentences: string[] = [];
  for (const fact of world.facts) {
    for (const t of templatesFor(world, fact, 'train')) sentences.push(renderTemplate(t, fact.subject, fact.object));
  }
  sentences.push(...world.filler);
  return shuffled(new SeededRandom(seed), sentences);
}

export function factPrompts(world: FactWorld, fact: Fact, which: PromptSet): FactPrompt[] {
  return templatesFor(world, fact, which).map((template) => ({
    prompt: templatePrompt(template).replace(SUBJECT_SLOT, fact.subject),
    subject: fact.subject,
    answer: ` ${fact.object}`,
    template,
  }));
}

const MAX_NEIGHBOURS = 5;

/**
 * `n` CounterFact-style rewrites of true facts, spread over the relations in turn. No two
 * rewrites share a subject, and no fact that is rewritten serves as another rewrite's
 * neighbour, so the whole set can be applied as one batch (MEMIT) and still measured.
 * With `allowFewer`, a world too small for `n` gives all it allows instead of throwing.
 */
export function rewriteRequests(world: FactWorld, n: number, seed: number, options: { allowFewer?: boolean } = {}): RewriteCase[] {
  const rng = new SeededRandom(seed);
  const groups = new Map<string, Fact[]>();
  const key = (f: Fact) => `${f.relation}\u0000${f.object}`;
  for (const f of world.facts) {
    const g = groups.get(key(f));
    if (g) g.push(f);
    else groups.set(key(f), [f]);
  }
  const objectsOf = new Map<RelationId, string[]>(world.relations.map((r) => [r.id, relationObjects(world, r.id)]));
  // A fact qualifies when at least two other subjects share its relation and object and
  // it has an alternative object to be rewritten to.
  const queues = world.relations
    .map((r) => shuffled(rng, world.facts.filter((f) => f.relation === r.id && groups.get(key(f))!.length >= 3 && objectsOf.get(r.id)!.length >= 2)))
    .filter((q) => q.length > 0);
  const chosen: Fact[] = [];
  const usedSubjects = new Set<string>();
  const editedInGroup = new Map<string, number>();
  while (chosen.length < n && queues.some((q) => q.length > 0)) {
    for (const q of queues) {
      if (chosen.length >= n) break;
      while (q.length > 0) {
        const f = q.shift()!;
        const edited = editedInGroup.get(key(f)) ?? 0;
        // After this edit, the group must still hold two unedited facts to be neighbours.
        if (usedSubjects.has(f.subject) || groups.get(key(f))!.length - edited - 1 < 2) continue;
        chosen.push(f);
        usedSubjects.add(f.subject);
        editedInGroup.set(key(f), edited + 1);
        break;
      }
    }
  }
  if (chosen.length < n && !options.allowFewer) throw new RangeError(`the world allows only ${chosen.length} rewrites, ${n} were asked for`);
  const editedIds = new Set(chosen.map((f) => f.id));

  return chosen.map((fact) => {
    const others = objectsOf.get(fact.relation)!.filter((o) => o !== fact.object);
    const targetNew = pick(rng, others);
    const template = pick(rng, templatesFor(world, fact, 'train'));
    const candidates = groups.get(key(fact))!.filter((f) => f.subject !== fact.subject && !editedIds.has(f.id));
    const neighbours = shuffled(rng, candidates)
      .slice(0, MAX_NEIGHBOURS)
      .map((f) => ({ prompt: templatePrompt(pick(rng, templatesFor(world, f, 'train'))).replace(SUBJECT_SLOT, f.subject), answer: ` ${f.object}` }));
    const request: EditRequest = {
      prompt: templatePrompt(template).replace(SUBJECT_SLOT, '{}'),
      subject: fact.subject,
      targetNew: ` ${targetNew}`,
      targetTrue: ` ${fact.object}`,
      paraphrasePrompts: factPrompts(world, fact, 'heldout').map((p) => p.prompt),
      neighborhoodPrompts: neighbours.map((x) => x.prompt),
      generationPrompts: [`${fact.subject} is`, `${fact.subject} was`],
    };
    return { fact, request, neighbours };
  });
}

/** The distinct objects a relation has in the world, in the order facts first name them. */
export function relationObjects(world: FactWorld, relation: RelationId): string[] {
  return [...new Set(world.facts.filter((f) => f.relation === relation).map((f) => f.object))];
}

export function groundTruth(world: FactWorld): GroundTruth {
  return {
    format: 'graft-fact-world',
    version: 2,
    seed: world.seed,
    options: { ...world.options },
    entities: world.entities.map((e) => ({ ...e })),
    relations: world.relations.map((r) => ({
      id: r.id,
      subjectKind: r.subjectKind,
      objectKind: r.objectKind,
      templates: [...r.phrasings.map((text) => ({ text, split: 'phrasing' as const })), ...r.unseen.map((text) => ({ text, split: 'unseen' as const }))],
    })),
    facts: world.facts.map((f) => ({ ...f, paraphrases: f.paraphrases.slice() })),
  };
}
