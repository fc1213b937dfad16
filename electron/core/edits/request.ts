// An edit request: the fact to change, as the CLI, the app and batch files state it. Plain
// objects in Graft's own form or CounterFact records ({requested_rewrite: …}) are accepted;
// every problem is reported with the field it concerns.
export interface EditRequest {
  /** The prompt, with {} where the subject goes: "The {} is located in". */
  prompt: string;
  subject: string;
  /** The new answer, e.g. " Rome" (a leading space is added when missing, as ROME does). */
  targetNew: string;
  targetTrue?: string;
  paraphrasePrompts: string[];
  /** Prompts about other subjects whose answers must not change. */
  neighborhoodPrompts: string[];
  generationPrompts: string[];
}

export { editRequestSchema } from '../../api/editRequestSchema.ts';

export class RequestError extends Error {
  constructor(readonly field: string, problem: string) {
    super(`${field}: ${problem}`);
    this.name = 'RequestError';
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function text(v: unknown, field: string, required: boolean): string | undefined {
  if (v === undefined || v === null) {
    if (required) throw new RequestError(field, 'is missing');
    return undefined;
  }
  if (typeof v !== 'string') throw new RequestError(field, `must be a string, got ${Array.isArray(v) ? 'an array' : typeof v}`);
  return v;
}

function texts(v: unknown, field: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new RequestError(field, 'must be an array of strings');
  return v.map((x, i) => text(x, `${field}[${i}]`, true)!);
}

/** Validates and normalises a request given in Graft's form or as a CounterFact record. */
export function parseEditRequest(input: unknown, where = 'request'): EditRequest {
  if (!isObject(input)) throw new RequestError(where, 'must be an object');
  let prompt: string | undefined, subject: string | undefined, targetNew: string | undefined, targetTrue: string | undefined;
  // field names as the user wrote them, for the messages below
  let field = { prompt: `${where}.prompt`, subject: `${where}.subject`, targetNew: `${where}.target_new`, targetTrue: `${where}.target_true` };
  if ('requested_rewrite' in input) {
    const rr = input.requested_rewrite;
    const f = `${where}.requested_rewrite`;
    field = { prompt: `${f}.prompt`, subject: `${f}.subject`, targetNew: `${f}.target_new.str`, targetTrue: `${f}.target_true.str` };
    if (!isObject(rr)) throw new RequestError(f, 'must be an object');
    prompt = text(rr.prompt, `${f}.prompt`, true);
    subject = text(rr.subject, `${f}.subject`, true);
    if (!isObject(rr.target_new)) throw new RequestError(`${f}.target_new`, 'must be an object {str}');
    targetNew = text(rr.target_new.str, `${f}.target_new.str`, true);
    if (rr.target_true !== undefined) {
      if (!isObject(rr.target_true)) throw new RequestError(`${f}.target_true`, 'must be an object {str}');
      targetTrue = text(rr.target_true.str, `${f}.target_true.str`, false);
    }
  } else {
    prompt = text(input.prompt, `${where}.prompt`, true);
    subject = text(input.subject, `${where}.subject`, true);
    targetNew = text(input.target_new ?? input.targetNew, `${where}.target_new`, true);
    targetTrue = text(input.target_true ?? input.targetTrue, `${where}.target_true`, false);
  }
  if (!prompt!.includes('{}')) throw new RequestError(field.prompt, 'has no {} marking where the subject goes');
  if (prompt!.split('{}').length > 2) throw new RequestError(field.prompt, 'has more than one {}');
  if (subject!.trim() === '') throw new RequestError(field.subject, 'is empty');
  if (targetNew!.trim() === '') throw new RequestError(field.targetNew, 'is empty or only whitespace');
  if (targetTrue !== undefined && targetTrue.trim() === '') throw new RequestError(field.targetTrue, 'is empty or only whitespace');
  if (targetTrue !== undefined && targetTrue.trim() === targetNew!.trim()) throw new RequestError(field.targetNew, 'equals target_true: there is nothing to change');
  return {
    prompt: prompt!,
    subject: subject!,
    targetNew: /^\s/.test(targetNew!) ? targetNew! : ` ${targetNew}`,
    ...(targetTrue !== undefined ? { targetTrue: /^\s/.test(targetTrue) ? targetTrue : ` ${targetTrue}` } : {}),
    paraphrasePrompts: texts(input.paraphrase_prompts, `${where}.paraphrase_prompts`),
    neighborhoodPrompts: texts(input.neighborhood_prompts, `${where}.neighborhood_prompts`),
    generationPrompts: texts(input.generation_prompts, `${where}.generation_prompts`),
  };
}

/** The prompt with its subject filled in. */
export function filledPrompt(request: Pick<EditRequest, 'prompt' | 'subject'>): string {
  return request.prompt.replace('{}', request.subject);
}

/**
 * The prompt with {} where the subject goes: "The Eiffel Tower is in" with the subject
 * "Eiffel Tower" works as well as a prompt that already has its {}.
 */
export function markSubject(prompt: string, subject: string): string {
  const marked = prompt.includes('{}') ? prompt : subject !== '' && prompt.includes(subject) ? prompt.replace(subject, '{}') : prompt;
  if (!marked.includes('{}')) throw new Error(`the subject '${subject}' does not occur in the prompt "${prompt}"; mark its place with {} or fix the spelling`);
  return marked;
}

/** The requests a recorded edit holds: one (ROME), a batch (an array), or none (a merge of other edits). */
export function requestsOfEdit(stored: unknown): EditRequest[] {
  if (Array.isArray(stored)) return stored as EditRequest[];
  if (typeof stored === 'object' && stored !== null && 'prompt' in stored && 'subject' in stored) return [stored as EditRequest];
  return [];
}
