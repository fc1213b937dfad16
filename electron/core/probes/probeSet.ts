// Probe sets (sentences for per-sentence perplexity) and prompt sets (prompts for KL to the
// base model), from the shipped defaults or from a user's file in any of the shapes such
// lists come in: plain text, JSON lines, or a JSON list (ME-PPL's [{"Text": …}] included).
// A set is identified by a hash of its normalised entries, so that two files holding the
// same sentences in different formats are recognised as the same set, and a probe result
// can say exactly which sentences produced it.
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

import { defaultKlPromptSetName, defaultKlPrompts } from './defaultKlPrompts.ts';
import { defaultProbeSentences, defaultProbeSetName } from './defaultProbeSet.ts';

export interface ProbeSet {
  name: string;
  /** sha256 (hex) of the entries after normalisation; see textListSha256. */
  sha256: string;
  sentences: string[];
  /** The file the set was read from; absent for the shipped set. */
  file?: string;
}

export interface PromptSet {
  name: string;
  sha256: string;
  prompts: string[];
  file?: string;
}

/** text: one entry per non-empty line; jsonl: one JSON string or record per line; json: one list. */
export type TextListFormat = 'text' | 'jsonl' | 'json';

export interface TextListOptions {
  /** Overrides the format guessed from the file's extension and first character. */
  format?: TextListFormat;
}

export class ProbeSetError extends Error {
  constructor(readonly file: string, readonly location: { line?: number; entry?: number }, problem: string) {
    const where = location.line !== undefined ? `:${location.line}` : location.entry !== undefined ? `, entry ${location.entry}` : '';
    super(`${file}${where}: ${problem}`);
    this.name = 'ProbeSetError';
  }
}

const sentenceFields = ['Text', 'text'] as const;
const promptFields = ['Text', 'text', 'prompt'] as const;

/**
 * The hash that names a set. JSON of the list rather than the joined lines, because JSON
 * entries may themselves contain newlines and joining would make different lists collide.
 */
export function textListSha256(entries: readonly string[]): string {
  return createHash('sha256').update(JSON.stringify(entries)).digest('hex');
}

export function defaultProbeSet(): ProbeSet {
  const sentences = [...defaultProbeSentences];
  return { name: defaultProbeSetName, sha256: textListSha256(sentences), sentences };
}

export function defaultPromptSet(): PromptSet {
  const prompts = [...defaultKlPrompts];
  return { name: defaultKlPromptSetName, sha256: textListSha256(prompts), prompts };
}

/** The shipped probe set, or the sentences of `file`. */
export async function loadProbeSet(file?: string, options: TextListOptions = {}): Promise<ProbeSet> {
  if (file === undefined) return defaultProbeSet();
  const sentences = parseTextList(await readList(file), file, { ...options, fields: sentenceFields, what: 'sentence' });
  return { name: setName(file), sha256: textListSha256(sentences), sentences, file };
}

/** The shipped KL prompts, or the prompts of `file` (records may also use a "prompt" field). */
export async function loadPromptSet(file?: string, options: TextListOptions = {}): Promise<PromptSet> {
  if (file === undefined) return defaultPromptSet();
  const prompts = parseTextList(await readList(file), file, { ...options, fields: promptFields, what: 'prompt' });
  return { name: setName(file), sha256: textListSha256(prompts), prompts, file };
}

function setName(file: string): string {
  return path.basename(file).replace(/\.(txt|jsonl|ndjson|json)$/i, '');
}

async function readList(file: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const problem = code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a folder, not a file' : `cannot be read (${(e as Error).message})`;
    throw new ProbeSetError(file, {}, problem);
  }
}

/**
 * The format a file is in: its extension when that says, otherwise its first character
 * ('[' a JSON list, '{' JSON lines). A .txt file is always plain text, so a sentence that
 * happens to start with a bracket is not taken for JSON.
 */
export function detectFormat(file: string, content: string): TextListFormat {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.txt') return 'text';
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  const first = content.replace(/^\uFEFF/, '').trimStart()[0];
  if (ext === '.json') return first === '[' ? 'json' : 'jsonl';
  return first === '[' ? 'json' : first === '{' ? 'jsonl' : 'text';
}

/**
 * The entries of a list file's content. `file` is only used in messages. Plain-text lines
 * are trimmed (stray indentation and \r are accidents of editing); JSON strings are kept
 * exactly, because a leading space is part of how ME-PPL's sentences are tokenised.
 */
export function parseTextList(
  content: string,
  file: string,
  options: TextListOptions & { fields?: readonly string[]; what?: string } = {},
): string[] {
  const fields = options.fields ?? sentenceFields;
  const what = options.what ?? 'sentence';
  const text = content.replace(/^\uFEFF/, '');
  const format = options.format ?? detectFormat(file, text);
  let entries: string[];
  if (format === 'text') {
    entries = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  } else if (format === 'jsonl') {
    entries = [];
    text.split(/\n/).forEach((raw, i) => {
      const line = raw.trim();
      if (line === '') return;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (e) {
        throw new ProbeSetError(file, { line: i + 1 }, `malformed JSON (${(e as Error).message})`);
      }
      entries.push(entryText(value, fields, what, file, { line: i + 1 }));
    });
  } else {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      const message = (e as Error).message;
      const position = /at position (\d+)/.exec(message);
      const location = position ? { line: text.slice(0, Number(position[1])).split('\n').length } : {};
      throw new ProbeSetError(file, location, `malformed JSON (${message.split('\n')[0]})`);
    }
    if (!Array.isArray(value)) {
      throw new ProbeSetError(file, {}, `a JSON file must hold a list of strings or of {"Text": …} records, or one JSON value per line`);
    }
    entries = value.map((v, i) => entryText(v, fields, what, file, { entry: i + 1 }));
  }
  if (entries.length === 0) throw new ProbeSetError(file, {}, `holds no ${what}s`);
  return entries;
}

function entryText(value: unknown, fields: readonly string[], what: string, file: string, location: { line?: number; entry?: number }): string {
  let text: unknown = value;
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const record = value as Record<string, unknown>;
    const field = fields.find((f) => f in record);
    if (field === undefined) {
      const keys = Object.keys(record);
      throw new ProbeSetError(file, location, `record has no ${fields.map((f) => `"${f}"`).join(' or ')} field (it has ${keys.length ? keys.map((k) => `"${k}"`).join(', ') : 'no fields'})`);
    }
    text = record[field];
    if (typeof text !== 'string') throw new ProbeSetError(file, location, `"${field}" must be a string, got ${describe(text)}`);
  } else if (typeof text !== 'string') {
    throw new ProbeSetError(file, location, `each ${what} must be a string or a record with a text field, got ${describe(text)}`);
  }
  if (text.trim() === '') throw new ProbeSetError(file, location, `the ${what} is empty`);
  return text;
}

function describe(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : `a ${typeof v} (${JSON.stringify(v)})`;
}
