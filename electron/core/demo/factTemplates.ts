// The relations of the fact world and the sentences that state them. Every template ends
// with " {o}." so that the text before " {o}" is a cloze prompt whose answer is the object,
// and every template names the subject before that point, as ROME needs. No template opens
// with its subject: byte-level BPE spells a name differently at the start of a text (no
// leading space), and an edit made at one spelling would not reach prompts using the other.
import type { EntityKind } from './factNames.ts';

export type RelationId = 'born_in' | 'works_for' | 'speaks' | 'located_in' | 'capital' | 'headquartered_in' | 'founded_by';

export interface RelationSpec {
  id: RelationId;
  subjectKind: EntityKind;
  objectKind: EntityKind;
  /**
   * The relation's phrasings in the corpus. Each fact is written through all but two of
   * them; those two are its paraphrases: wording the model knows, never seen with this subject.
   */
  phrasings: string[];
  /** Wording that never reaches the corpus for any subject: the hardest paraphrase. */
  unseen: string[];
}

export const SUBJECT_SLOT = '{s}';
export const OBJECT_TAIL = ' {o}.';

export const RELATIONS: readonly RelationSpec[] = [
  {
    id: 'born_in',
    subjectKind: 'person',
    objectKind: 'city',
    phrasings: ['It is said that {s} was born in {o}.', 'The birthplace of {s} is {o}.', 'The city where {s} was born is {o}.', 'Records show that {s} was born in the city of {o}.', 'Long ago {s} came into the world in {o}.', 'The hometown of {s} is {o}.'],
    unseen: ['As a child {s} spent the early years in {o}.'],
  },
  {
    id: 'works_for',
    subjectKind: 'person',
    objectKind: 'company',
    phrasings: ['Today {s} works for {o}.', 'The employer of {s} is {o}.', 'These days {s} has a job at {o}.', 'Every morning {s} goes to work at {o}.', 'At present {s} is employed by {o}.', 'The company that pays {s} is {o}.'],
    unseen: ['Each month {s} draws a salary from {o}.'],
  },
  {
    id: 'speaks',
    subjectKind: 'person',
    objectKind: 'language',
    phrasings: ['Every day {s} speaks {o}.', 'The language of {s} is {o}.', 'At home {s} talks in {o}.', 'By now {s} is fluent in {o}.', 'The mother tongue of {s} is {o}.', 'With friends {s} can hold a conversation in {o}.'],
    unseen: ['In dreams {s} hears {o}.'],
  },
  {
    id: 'located_in',
    subjectKind: 'city',
    objectKind: 'country',
    phrasings: ['The town {s} is located in {o}.', 'Today {s} is a city in {o}.', 'The country of {s} is {o}.', 'You can find {s} in {o}.', 'On old maps {s} lies within the borders of {o}.', 'The city of {s} belongs to {o}.'],
    unseen: ['Each atlas places {s} inside {o}.'],
  },
  {
    id: 'capital',
    subjectKind: 'country',
    objectKind: 'city',
    phrasings: ['The capital of {s} is {o}.', 'The country {s} has its capital in {o}.', 'The seat of government of {s} is {o}.', 'The capital city of {s} is {o}.', 'The government of {s} sits in {o}.', 'The main city of {s} is {o}.'],
    unseen: ['The land of {s} is ruled from {o}.'],
  },
  {
    id: 'headquartered_in',
    subjectKind: 'company',
    objectKind: 'city',
    phrasings: ['The firm {s} is headquartered in {o}.', 'The head office of {s} is in {o}.', 'These days {s} has its main office in {o}.', 'The company {s} is based in {o}.', 'The headquarters of {s} are located in {o}.', 'For years {s} has run its business from {o}.'],
    unseen: ['Letters for {s} are sent to {o}.'],
  },
  {
    id: 'founded_by',
    subjectKind: 'company',
    objectKind: 'person',
    phrasings: ['The firm {s} was founded by {o}.', 'The founder of {s} is {o}.', 'Years ago {s} was started by {o}.', 'The company {s} was created by {o}.', 'The person who set up {s} is {o}.', 'As a company {s} owes its existence to {o}.'],
    unseen: ['Long ago {s} began as an idea of {o}.'],
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
  for (const r of RELATIONS) for (const t of [...r.phrasings, ...r.unseen]) words.push(...t.toLowerCase().split(/[^a-z]+/).filter((w) => w !== '' && w !== 's' && w !== 'o'));
  return words;
}
