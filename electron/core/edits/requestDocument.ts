// A request document as the app's editor holds it (JSON or YAML; one request or a list),
// checked against the request schema and then by parseEditRequest, every problem placed on the
// text it concerns (1-based lines and columns, end exclusive) so the editor can mark it.
import { LineCounter, parseDocument, isMap, isSeq, type Node as YamlNode } from 'yaml';

import { editRequestSchema } from '../../api/editRequestSchema.ts';
import { parseEditRequest, RequestError, type EditRequest } from './request.ts';

export interface Problem {
  message: string;
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
}

type Path = (string | number)[];

/** Where each value of the document is: [start, end) offsets, keyed by its path. */
type Locate = (path: Path) => { start: number; end: number } | null;

// ---- the schema subset editRequestSchema uses: type, required, properties, items, minLength, oneOf

interface SchemaNode {
  type?: string;
  required?: readonly string[];
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  minLength?: number;
  oneOf?: readonly SchemaNode[];
}

interface SchemaError {
  path: Path;
  message: string;
  /** a required property is absent: the problem belongs to the object at `path` */
  missing?: boolean;
}

function typeOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v === 'number' ? (Number.isInteger(v) ? 'integer' : 'number') : typeof v;
}

function validate(schema: SchemaNode, value: unknown, path: Path): SchemaError[] {
  if (schema.oneOf) {
    // the branch the document most likely means: fewest errors, then most of its required keys present
    const present = (s: SchemaNode) => (s.required ?? []).filter((k) => typeof value === 'object' && value !== null && k in value).length;
    const scored = schema.oneOf.map((s) => ({ errors: validate(s, value, path), present: present(s) }));
    if (scored.some((s) => s.errors.length === 0)) return [];
    scored.sort((a, b) => a.errors.length - b.errors.length || b.present - a.present);
    return scored[0]!.errors;
  }
  const actual = typeOf(value);
  if (schema.type && actual !== schema.type && !(schema.type === 'number' && actual === 'integer')) {
    return [{ path, message: `must be ${schema.type === 'array' || schema.type === 'object' || schema.type === 'integer' ? 'an' : 'a'} ${schema.type}, got ${actual === 'array' || actual === 'object' || actual === 'integer' ? 'an' : 'a'} ${actual}` }];
  }
  const errors: SchemaError[] = [];
  if (actual === 'string' && schema.minLength !== undefined && (value as string).length < schema.minLength) errors.push({ path, message: 'is empty' });
  if (actual === 'object') {
    const obj = value as Record<string, unknown>;
    for (const k of schema.required ?? []) if (!(k in obj)) errors.push({ path, message: `"${k}" is missing`, missing: true });
    for (const [k, s] of Object.entries(schema.properties ?? {})) if (k in obj) errors.push(...validate(s, obj[k], [...path, k]));
  }
  if (actual === 'array' && schema.items) (value as unknown[]).forEach((x, i) => errors.push(...validate(schema.items!, x, [...path, i])));
  return errors;
}

// ---- positions

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === '\n') starts.push(i + 1);
  return starts;
}

function position(starts: number[], offset: number): { line: number; column: number } {
  let lo = 0, hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return { line: lo + 1, column: offset - starts[lo]! + 1 };
}

function problemAt(text: string, starts: number[], message: string, start: number, end: number): Problem {
  const s = position(starts, Math.min(start, text.length));
  const e = position(starts, Math.min(Math.max(end, start + 1), text.length));
  return { message, line: s.line, column: s.column, endLine: e.line, endColumn: e.line === s.line && e.column === s.column ? s.column + 1 : e.column };
}

/** Offsets of every value in a JSON text that JSON.parse accepted. */
function jsonLocator(text: string): Locate {
  const found = new Map<string, { start: number; end: number }>();
  let i = 0;
  const ws = () => { while (i < text.length && /\s/.test(text[i]!)) i++; };
  const str = (): string => {
    const start = i++;
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (path: Path): void => {
    ws();
    const start = i;
    if (text[i] === '{') {
      i++;
      ws();
      while (text[i] !== '}') {
        const key = str();
        ws();
        i++;  // :
        value([...path, key]);
        ws();
        if (text[i] === ',') { i++; ws(); }
      }
      i++;
    } else if (text[i] === '[') {
      i++;
      ws();
      for (let n = 0; text[i] !== ']'; n++) {
        value([...path, n]);
        ws();
        if (text[i] === ',') { i++; ws(); }
      }
      i++;
    } else if (text[i] === '"') {
      str();
    } else {
      const m = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;
      m.lastIndex = i;
      i = m.exec(text) ? m.lastIndex : i + 1;
    }
    found.set(JSON.stringify(path), { start, end: i });
  };
  value([]);
  return (path) => found.get(JSON.stringify(path)) ?? null;
}

function yamlLocator(contents: YamlNode | null): Locate {
  return (path) => {
    let node: unknown = contents;
    for (const key of path) {
      if (isMap(node)) node = node.get(key, true);
      else if (isSeq(node)) node = node.get(key as number, true);
      else return null;
    }
    const range = (node as YamlNode | undefined)?.range;
    return range ? { start: range[0], end: range[1] } : null;
  };
}

/** "request[1].requested_rewrite.target_new.str" → [1, 'requested_rewrite', 'target_new', 'str'] after the prefix */
function pathOfField(field: string, prefix: string, base: Path): Path {
  const rest = field.startsWith(prefix) ? field.slice(prefix.length) : '';
  const out: Path = [...base];
  for (const m of rest.matchAll(/\.([^.[\]]+)|\[(\d+)\]/g)) out.push(m[1] !== undefined ? m[1] : Number(m[2]));
  return out;
}

function label(path: Path, list: boolean): string {
  const parts = (list ? path.slice(1) : path).map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('').replace(/^\./, '');
  return list ? `request ${(path[0] as number) + 1}${parts ? `: ${parts}` : ''}` : parts;
}

export function checkRequestDocument(text: string, format: 'json' | 'yaml'): { requests: EditRequest[]; problems: Problem[] } {
  const starts = lineStarts(text);
  const problems: Problem[] = [];
  if (text.trim() === '') {
    return { requests: [], problems: [problemAt(text, starts, 'the document is empty: write one request ({"prompt", "subject", "target_new"}) or a list of them', 0, 1)] };
  }
  let data: unknown;
  let locate: Locate;
  if (format === 'json') {
    try {
      data = JSON.parse(text);
    } catch (error) {
      const message = (error as Error).message;
      const at = /position (\d+)/.exec(message);
      const offset = at ? Number(at[1]) : text.length - 1;
      return { requests: [], problems: [problemAt(text, starts, message.replace(/^JSON\.parse: /, ''), offset, offset + 1)] };
    }
    locate = jsonLocator(text);
  } else {
    const lineCounter = new LineCounter();
    const doc = parseDocument(text, { lineCounter, prettyErrors: false });
    if (doc.errors.length > 0) {
      return { requests: [], problems: doc.errors.map((e) => problemAt(text, starts, e.message.split('\n')[0]!, e.pos[0], e.pos[1])) };
    }
    data = doc.toJS();
    locate = yamlLocator(doc.contents as YamlNode | null);
  }
  const list = Array.isArray(data);
  const items = list ? (data as unknown[]) : [data];
  if (list && items.length === 0) {
    const r = locate([])!;
    return { requests: [], problems: [problemAt(text, starts, 'the list holds no requests', r.start, r.end)] };
  }
  const place = (path: Path, message: string, missing = false) => {
    const r = locate(path) ?? locate(path.slice(0, -1)) ?? { start: 0, end: 1 };
    // a missing property is marked on the first line of the object that lacks it
    const newline = text.indexOf('\n', r.start);
    const end = missing ? Math.min(r.end, newline === -1 ? r.end : newline) : r.end;
    const where = label(path, list);
    problems.push(problemAt(text, starts, where ? `${where}: ${message}` : message, r.start, end));
  };
  const requests: EditRequest[] = [];
  items.forEach((item, i) => {
    const base: Path = list ? [i] : [];
    const errors = validate(editRequestSchema as unknown as SchemaNode, item, base);
    if (errors.length > 0) {
      for (const e of errors) place(e.path, e.message, e.missing);
      return;
    }
    const prefix = list ? `request[${i}]` : 'request';
    try {
      requests.push(parseEditRequest(item, prefix));
    } catch (error) {
      if (!(error instanceof RequestError)) throw error;
      place(pathOfField(error.field, prefix, base), error.message.slice(error.field.length + 2));
    }
  });
  return { requests, problems };
}
