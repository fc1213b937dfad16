import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { parseEditRequest } from '../edits/request.ts';
import { factPrompts, generateFactWorld, groundTruth, rewriteRequests, trainingCorpus, type FactWorld } from './factWorld.ts';

const SEED = 20240611;
const world = generateFactWorld(SEED);
const corpus = trainingCorpus(world);
const corpusSet = new Set(corpus);

function countBy<T>(items: readonly T[], key: (x: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of items) out[key(x)] = (out[key(x)] ?? 0) + 1;
  return out;
}

test('the same seed gives the same world, corpus and rewrites', () => {
  const again = generateFactWorld(SEED);
  assert.deepEqual(again, world);
  assert.deepEqual(trainingCorpus(again), corpus);
  assert.deepEqual(rewriteRequests(again, 12, 7), rewriteRequests(world, 12, 7));
  assert.deepEqual(groundTruth(again), groundTruth(world));
});

test('the world for a seed is pinned, so a trained model keeps matching its ground truth', () => {
  // A change here means every model trained on an earlier corpus no longer matches the
  // world its seed names: retrain and recommit the demo model along with the new digest.
  const digest = createHash('sha256').update(JSON.stringify([groundTruth(world), corpus, world.filler])).digest('hex');
  assert.equal(digest, '267acdfacbb207fa8fbbe442f63bb3f61a7be5ebcda372f9bebd62872d8e1535');
});

test('different seeds give different worlds, corpus orders and rewrites', () => {
  const other = generateFactWorld(SEED + 1);
  assert.notDeepEqual(other.entities, world.entities);
  assert.notDeepEqual(other.facts, world.facts);
  assert.notDeepEqual(trainingCorpus(world, 1), corpus);
  assert.deepEqual([...trainingCorpus(world, 1)].sort(), [...corpus].sort(), 'the corpus seed changes the order only');
  assert.notDeepEqual(rewriteRequests(world, 12, 1), rewriteRequests(world, 12, 2));
});

test('entity counts follow the options and every name is distinct, capitalised ASCII', () => {
  assert.deepEqual(countBy(world.entities, (e) => e.kind), { person: 60, city: 20, country: 8, company: 15, language: 6 });
  const names = world.entities.map((e) => e.name);
  assert.equal(new Set(names).size, names.length);
  const words = names.flatMap((n) => n.split(' '));
  assert.equal(new Set(words).size, words.length, 'no first, last or place name is reused');
  for (const e of world.entities) {
    const parts = e.name.split(' ');
    assert.equal(parts.length, e.kind === 'person' ? 2 : 1, e.name);
    for (const p of parts) assert.match(p, /^[A-Z][a-z]{3,13}$/, e.name);
  }
  const small = generateFactWorld(3, { people: 10, cities: 5, countries: 2, companies: 3, languages: 2, fillerSentences: 40, founders: false });
  assert.deepEqual(countBy(small.entities, (e) => e.kind), { person: 10, city: 5, country: 2, company: 3, language: 2 });
  assert.equal(small.facts.some((f) => f.relation === 'founded_by'), false);
  assert.equal(small.filler.length, 40);
});

test('facts are consistent with the world and every object has several subjects', () => {
  const kindOf = new Map(world.entities.map((e) => [e.name, e.kind]));
  const ids = new Set(world.facts.map((f) => f.id));
  assert.equal(ids.size, world.facts.length);
  for (const f of world.facts) {
    const r = world.relations.find((x) => x.id === f.relation)!;
    assert.equal(kindOf.get(f.subject), r.subjectKind, f.id);
    assert.equal(kindOf.get(f.object), r.objectKind, f.id);
  }
  const located = new Map(world.facts.filter((f) => f.relation === 'located_in').map((f) => [f.subject, f.object]));
  for (const f of world.facts.filter((x) => x.relation === 'capital')) assert.equal(located.get(f.object), f.subject, `capital of ${f.subject} lies in it`);
  for (const f of world.facts) {
    const r = world.relations.find((x) => x.id === f.relation)!;
    const subjects = world.entities.filter((e) => e.kind === r.subjectKind).length;
    assert.equal(world.facts.filter((x) => x.relation === f.relation).length, subjects, `every ${r.subjectKind} has a ${f.relation} fact`);
    if (f.relation === 'capital') continue;
    const sharing = world.facts.filter((x) => x.relation === f.relation && x.object === f.object).length;
    assert.ok(sharing >= 2, `${f.relation} ${f.object} has ${sharing} subjects`);
  }
});

test('templates end with their object and keep the subject in the prompt', () => {
  for (const r of world.relations) {
    assert.ok(r.phrasings.length >= 6 && r.unseen.length >= 1, r.id);
    assert.equal(new Set([...r.phrasings, ...r.unseen]).size, r.phrasings.length + r.unseen.length, r.id);
    for (const t of [...r.phrasings, ...r.unseen]) assert.match(t, /^[^]*\{s\}[^]* \{o\}\.$/, t);
  }
});

test('each fact holds out two phrasings, and every phrasing is trained with most subjects', () => {
  for (const r of world.relations) {
    const facts = world.facts.filter((f) => f.relation === r.id);
    for (const f of facts) {
      assert.equal(new Set(f.paraphrases).size, 2, f.id);
      for (const t of f.paraphrases) assert.ok(r.phrasings.includes(t), t);
    }
    for (const t of r.phrasings) {
      const heldOut = facts.filter((f) => f.paraphrases.includes(t)).length;
      assert.ok(heldOut <= Math.ceil(facts.length / 3) + 1, `${r.id}: "${t}" held out for ${heldOut} of ${facts.length}`);
    }
  }
});

test('every fact appears through each trained phrasing; its paraphrases and unseen wording never do', () => {
  for (const f of world.facts) {
    for (const p of factPrompts(world, f, 'train')) assert.ok(corpusSet.has(p.prompt + p.answer + '.'), `${p.prompt}${p.answer}.`);
  }
  const joined = corpus.join('\n');
  for (const f of world.facts) {
    for (const p of factPrompts(world, f, 'heldout')) assert.equal(joined.includes(p.prompt), false, `held-out prompt "${p.prompt}" is in the corpus`);
  }
  for (const r of world.relations) {
    for (const t of r.unseen) {
      // The template's wording after the subject, which is what makes it a paraphrase.
      const tail = t.slice(t.indexOf('{s}') + 3, -' {o}.'.length);
      if (tail.trim().split(' ').length >= 3) assert.equal(joined.includes(tail), false, `held-out wording "${tail}" is in the corpus`);
    }
  }
  for (const s of corpus) assert.match(s, /^[A-Z][A-Za-z ]*\.$/, s);
});

test('prompts contain their subject and complete to a rendered sentence', () => {
  for (const f of world.facts) {
    for (const which of ['train', 'heldout'] as const) {
      const prompts = factPrompts(world, f, which);
      const r = world.relations.find((x) => x.id === f.relation)!;
      assert.equal(prompts.length, which === 'train' ? r.phrasings.length - 2 : 2);
      for (const p of prompts) {
        assert.ok(p.prompt.includes(f.subject), p.prompt);
        assert.equal(p.answer, ` ${f.object}`);
        assert.equal(p.prompt + p.answer + '.', p.template.replace('{s}', f.subject).replace('{o}', f.object));
      }
    }
  }
});

test('filler states no facts: it never places an entity before a relation phrase', () => {
  assert.equal(new Set(world.filler).size, world.filler.length);
  assert.ok(world.filler.length >= 200);
  const relationPhrases = world.relations.flatMap((r) => r.phrasings.concat(r.unseen).map((t) => t.slice(0, -' {o}.'.length).replace('{s}', '').trim()));
  for (const s of world.filler) for (const phrase of relationPhrases) if (phrase.split(' ').length >= 2) assert.equal(s.includes(phrase), false, `${s} / ${phrase}`);
  assert.ok(world.filler.some((s) => world.entities.some((e) => s.includes(e.name))), 'some filler names entities');
});

function checkRewrites(w: FactWorld, n: number, seed: number) {
  const cases = rewriteRequests(w, n, seed);
  const sentences = new Set(trainingCorpus(w));
  assert.equal(cases.length, n);
  const edited = new Set(cases.map((c) => c.fact.id));
  assert.equal(new Set(cases.map((c) => c.fact.subject)).size, n, 'one rewrite per subject');
  for (const c of cases) {
    const { fact, request } = c;
    // Graft reads the prompt lists of a request file in CounterFact's snake_case.
    const asFile = { ...request, paraphrase_prompts: request.paraphrasePrompts, neighborhood_prompts: request.neighborhoodPrompts, generation_prompts: request.generationPrompts };
    assert.deepEqual(parseEditRequest(asFile), request, 'a valid EditRequest as Graft parses it');
    assert.equal(request.subject, fact.subject);
    assert.equal(request.targetTrue, ` ${fact.object}`);
    assert.notEqual(request.targetNew, request.targetTrue);
    const objects = new Set(w.facts.filter((f) => f.relation === fact.relation).map((f) => ` ${f.object}`));
    assert.ok(objects.has(request.targetNew), `${request.targetNew} is an object of ${fact.relation}`);
    const filled = request.prompt.replace('{}', fact.subject);
    assert.ok(factPrompts(w, fact, 'train').some((p) => p.prompt === filled), filled);
    assert.deepEqual(request.paraphrasePrompts, factPrompts(w, fact, 'heldout').map((p) => p.prompt));
    assert.ok(c.neighbours.length >= 2 && c.neighbours.length <= 5, `${c.neighbours.length} neighbours`);
    assert.deepEqual(request.neighborhoodPrompts, c.neighbours.map((x) => x.prompt));
    const seen = new Set<string>();
    for (const nb of c.neighbours) {
      assert.equal(nb.answer, ` ${fact.object}`);
      const other = w.facts.find((f) => f.relation === fact.relation && f.subject !== fact.subject && nb.prompt.includes(f.subject) && f.object === fact.object);
      assert.ok(other, `neighbour "${nb.prompt}" is another subject with ${fact.relation} ${fact.object}`);
      assert.equal(edited.has(other.id), false, 'a neighbour is never itself rewritten');
      assert.equal(seen.has(other.subject), false);
      seen.add(other.subject);
      assert.ok(sentences.has(nb.prompt + nb.answer + '.'), 'neighbour prompts use training wording');
    }
    assert.ok(request.generationPrompts.length > 0 && request.generationPrompts.every((g) => g.startsWith(fact.subject)));
  }
  return cases;
}

test('rewrites change true facts to another object of the relation, with valid neighbours', () => {
  const cases = checkRewrites(world, 30, 11);
  const relations = new Set(cases.map((c) => c.fact.relation));
  assert.ok(relations.size >= 4, `rewrites cover ${[...relations].join(', ')}`);
  assert.equal(relations.has('capital'), false, 'capitals have no neighbours');
  checkRewrites(generateFactWorld(99), 20, 5);
  assert.throws(() => rewriteRequests(world, 10_000, 1), RangeError);
});

test('the ground truth is plain JSON that records facts and template splits', () => {
  const gt = groundTruth(world);
  assert.deepEqual(JSON.parse(JSON.stringify(gt)), gt);
  assert.equal(gt.seed, SEED);
  assert.deepEqual(gt.facts, world.facts);
  for (const r of gt.relations) {
    const spec = world.relations.find((x) => x.id === r.id)!;
    assert.deepEqual(r.templates.filter((t) => t.split === 'phrasing').map((t) => t.text), spec.phrasings);
    assert.deepEqual(r.templates.filter((t) => t.split === 'unseen').map((t) => t.text), spec.unseen);
  }
});

test('the default world is small enough for the demo model', () => {
  const chars = corpus.reduce((a, s) => a + s.length + 1, 0);
  const byRelation = countBy(world.facts, (f) => f.relation);
  console.log(`facts ${world.facts.length} ${JSON.stringify(byRelation)}; corpus ${corpus.length} sentences, ${chars} characters`);
  assert.ok(world.facts.length >= 150 && world.facts.length <= 600, `${world.facts.length} facts`);
  const trainTemplates = world.facts.reduce((a, f) => a + world.relations.find((r) => r.id === f.relation)!.phrasings.length - f.paraphrases.length, 0);
  assert.equal(corpus.length, trainTemplates + world.filler.length);
  assert.ok(chars < 300_000, `${chars} characters`);
});
