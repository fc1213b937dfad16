// A file of edit requests for batch and sequential editing: .json (one request or a list),
// .jsonl (one request per line) or .yaml/.yml, in Graft's form or as CounterFact records. The
// sha256 of the bytes identifies the file for resuming a run. Every error names the file and
// the line, and (for JSONL) which record, so a 2,000-line file can be fixed where it is wrong.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import type { EditRequest } from './request.ts';
import { checkRequestDocument, type Problem } from './requestDocument.ts';

const formats: Record<string, 'json' | 'jsonl' | 'yaml'> = { '.json': 'json', '.jsonl': 'jsonl', '.yaml': 'yaml', '.yml': 'yaml' };

/** Problems listed in one message; a long file can have hundreds, the first few locate the kind of mistake. */
const shownProblems = 5;

function failure(file: string, located: string[]): Error {
  const more = located.length > shownProblems ? `; and ${located.length - shownProblems} more` : '';
  return new Error(`${file}: ${located.slice(0, shownProblems).join('; ')}${more}`);
}

function readBytes(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`${file}: file not found; check the path`);
    if (code === 'EISDIR') throw new Error(`${file}: is a folder; give the request file inside it`);
    if (code === 'EACCES' || code === 'EPERM') throw new Error(`${file}: cannot be read (permission denied); check its permissions`);
    throw new Error(`${file}: cannot be read (${(error as Error).message})`);
  }
}

function jsonlRequests(file: string, text: string): EditRequest[] {
  const requests: EditRequest[] = [];
  const located: string[] = [];
  let record = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') return;
    record++;
    const where = `line ${i + 1} (record ${record})`;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (error) {
      located.push(`${where}: not valid JSON (${(error as Error).message}); each line must be one complete JSON object`);
      return;
    }
    if (Array.isArray(parsed)) {
      located.push(`${where}: is a list; a .jsonl file holds one request object per line (use .json for a list)`);
      return;
    }
    const checked = checkRequestDocument(line, 'json');
    // the line is checked alone, so a problem's column is on this line; its own "line 1" is not
    located.push(...checked.problems.map((p) => `${where}, column ${p.column}: ${p.message}`));
    requests.push(...checked.requests);
  });
  if (located.length > 0) throw failure(file, located);
  return requests;
}

function documentRequests(file: string, text: string, format: 'json' | 'yaml'): EditRequest[] {
  const { requests, problems } = checkRequestDocument(text, format);
  if (problems.length > 0) throw failure(file, problems.map((p: Problem) => `line ${p.line}, column ${p.column}: ${p.message}`));
  return requests;
}

export function readRequestFile(file: string): { requests: EditRequest[]; sha256: string } {
  const format = formats[path.extname(file).toLowerCase()];
  if (!format) throw new Error(`${file}: unknown kind of request file; name it .json, .jsonl, .yaml or .yml`);
  const bytes = readBytes(file);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const text = bytes.toString('utf8').replace(/^\uFEFF/, '');
  if (text.trim() === '') throw new Error(`${file}: the file is empty; write one request ({"prompt", "subject", "target_new"}) ${format === 'jsonl' ? 'per line' : 'or a list of them'}`);
  const requests = format === 'jsonl' ? jsonlRequests(file, text) : documentRequests(file, text, format);
  return { requests, sha256 };
}
