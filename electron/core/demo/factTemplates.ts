// The relations of the fact world and the sentences that state them. Every template ends
// with " {o}." so that the text before " {o}" is a cloze prompt whose answer is the object,
// and every template names the subject before that point, as ROME needs.
import type { EntityKind } from './factNames.ts';

export type RelationId = 'born_in' | 'works_for' | 'speaks' | 'located_in' | 'capital' | 'headquartered_in' | 'founded_by';

export interface RelationSpec {
  id: RelationId;
  subjectKind: EntityKind;
  objectKind: EntityKind;
  /** Templates rendered into the training corpus. */
  train: string[];
  /** Templates kept out of the corpus, for paraphrase evaluation only. */
  heldout: string[];
}

export const SUBJECT_SLOT = '{s}';
export const OBJECT_TAIL = ' {o}.';

export const RELATIONS: readonly RelationSpec[] = [
  {
    id: 'born_in',
    subjectKind: 'person',
    objectKind: 'city',
    train: ['{s} was born in {o}.', 'The birthplace of {s} is {o}.', 'The city where {s} was born is {o}.', 'Records show that {s} was born in the city of {o}.'],
    heldout: ['{s} came into the world in {o}.', 'The hometown of {s} is {o}.'],
  },
  {
    id: 'works_for',
    subjectKind: 'person',
    objectKind: 'company',
    train: ['{s} works for {o}.', 'The employer of {s} is {o}.', '{s} has a job at {o}.', 'Every morning {s} goes to work at {o}.'],
    heldout: ['{s} is employed by {o}.', 'The company that pays {s} is {o}.'],
  },
  {
    id: 'speaks',
    subjectKind: 'person',
    objectKind: 'language',
    train: ['{s} speaks {o}.', 'The language of {s} is {o}.', 'At home {s} talks in {o}.', '{s} is fluent in {o}.'],
    heldout: ['The mother tongue of {s} is {o}.', '{s} can hold a conversation in {o}.'],
  },
  {
    id: 'located_in',
    subjectKind: 'city',
    objectKind: 'country',
    train: ['{s} is located in {o}.', '{s} is a city in {o}.', 'The country of {s} is {o}.', 'You can find {s} in {o}.'],
    heldout: ['{s} lies within the borders of {o}.', 'The city of {s} belongs to {o}.'],
  },
  {
    id: 'capital',
    subjectKind: 'country',
    objectKind: 'city',
    train: ['The capital of {s} is {o}.', '{s} has its capital in {o}.', 'The seat of government of {s} is {o}.', 'The capital city of {s} is {o}.'],
    heldout: ['The government of {s} sits in {o}.', 'The main city of {s} is {o}.'],
  },
  {
    id: 'headquartered_in',
    subjectKind: 'company',
    objectKind: 'city',
    train: ['{s} is headquartered in {o}.', 'The head office of {s} is in {o}.', '{s} has its main office in {o}.', 'The company {s} is based in {o}.'],
    heldout: ['The headquarters of {s} are located in {o}.', '{s} runs its business from {o}.'],
  },
  {
    id: 'founded_by',
    subjectKind: 'company',
    objectKind: 'person',
    train: ['{s} was founded by {o}.', 'The founder of {s} is {o}.', '{s} was started by {o}.', 'The company {s} was created by {o}.'],
    heldout: ['The person who set up {s} is {o}.', '{s} owes its existence to {o}.'],
  },
];

/** The cloze prompt of a template: its text before " {o}.", with the subject still as {s}. */
export function templatePrompt(template: string): string {
  if (!template.endsWith(OBJECT_TAIL)) throw new Error(`template "${template}" does not end with "${OBJECT_TAIL}"`);
  const prompt = template.slice(0, -OBJECT_TAIL.length);
  if (prompt.split(SUBJECT_SLOT).length !== 2) throw new Error(`template "${template}" must name its subject exactly once`);
  return prompt;
}

export function renderTemplate(template: string, subject: string, object: string): string {
  return `${templatePrompt(template).replace(SUBJECT_SLOT, subject)} ${object}.`;
}

/** Lower-case words of all templates, which names must avoid. */
export function templateWords(): string[] {
  const words: string[] = [];
  for (const r of RELATIONS) for (const t of [...r.train, ...r.heldout]) words.push(...t.toLowerCase().split(/[^a-z]+/).filter((w) => w !== '' && w !== 's' && w !== 'o'));
  return words;
}
