// Request files for batch editing: every format and both request forms read to the same
// requests, the sha256 is that of the bytes, and each kind of mistake is reported with the
// file, the line (and the JSONL record) and what to do.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

import { tempDir } from '../testing/fixtures.ts';
import { readRequestFile } from './requestFile.ts';

const graftForm = { prompt: '{} is located in', subject: 'The Eiffel Tower', target_new: 'Rome' };
const counterFact = { case_id: 7, requested_rewrite: { prompt: 'The mother tongue of {} is', subject: 'Danielle Darrieux', target_new: { str: 'English' }, target_true: { str: 'French' } }, paraphrase_prompts: ['Danielle Darrieux spoke'] };
const expected = [
  { prompt: '{} is located in', subject: 'The Eiffel Tower', targetNew: ' Rome', paraphrasePrompts: [], neighborhoodPrompts: [], generationPrompts: [] },
  { prompt: 'The mother tongue of {} is', subject: 'Danielle Darrieux', targetNew: ' English', targetTrue: ' French', paraphrasePrompts: ['Danielle Darrieux spoke'], neighborhoodPrompts: [], generationPrompts: [] },
];

function write(name: string, text: string): string {
  const file = path.join(tempDir(), name);
  fs.writeFileSync(file, text);
  return file;
}

describe('request files', () => {
  test('JSON (one or a list), JSONL with blank lines, and YAML give the same requests and the sha256 of the bytes', () => {
    const files = [
      write('list.json', JSON.stringify([graftForm, counterFact], null, 2)),
      write('lines.jsonl', `${JSON.stringify(graftForm)}\n\n  \n${JSON.stringify(counterFact)}\r\n`),
      write('list.yaml', `- prompt: "{} is located in"\n  subject: The Eiffel Tower\n  target_new: Rome\n- case_id: 7\n  requested_rewrite:\n    prompt: The mother tongue of {} is\n    subject: Danielle Darrieux\n    target_new: {str: English}\n    target_true: {str: French}\n  paraphrase_prompts: [Danielle Darrieux spoke]\n`),
    ];
    for (const file of files) {
      const r = readRequestFile(file);
      assert.deepEqual(r.requests, expected, file);
      assert.equal(r.sha256, createHash('sha256').update(fs.readFileSync(file)).digest('hex'));
    }
    assert.deepEqual(readRequestFile(write('one.yml', 'prompt: "{} is located in"\nsubject: The Eiffel Tower\ntarget_new: Rome\n')).requests, [expected[0]]);
    assert.deepEqual(readRequestFile(write('one.json', `\uFEFF${JSON.stringify(counterFact)}`)).requests, [expected[1]], 'a byte-order mark is ignored');
    assert.notEqual(readRequestFile(files[0]!).sha256, readRequestFile(files[1]!).sha256);
  });

  test('a bad JSONL record is reported by its line and record number, with every bad record', () => {
    const lines = [JSON.stringify(graftForm), '', JSON.stringify({ ...graftForm, subject: undefined }), '{"prompt": "{} is", ', JSON.stringify([graftForm])];
    const file = write('bad.jsonl', lines.join('\n'));
    assert.throws(() => readRequestFile(file), (error: Error) => {
      assert.ok(error.message.startsWith(`${file}: `), error.message);
      assert.match(error.message, /line 3 \(record 2\), column \d+: "subject" is missing/);
      assert.match(error.message, /line 4 \(record 3\): not valid JSON \(.+\); each line must be one complete JSON object/);
      assert.match(error.message, /line 5 \(record 4\): is a list; a \.jsonl file holds one request object per line/);
      assert.doesNotMatch(error.message, /line 1/);
      return true;
    });
  });

  test('JSON and YAML problems name the line; empty, missing, unreadable and unknown files say what to do', () => {
    const json = write('bad.json', `[\n  ${JSON.stringify(graftForm)},\n  {"prompt": "no marker", "subject": "x", "target_new": "y"}\n]`);
    assert.throws(() => readRequestFile(json), new RegExp(`${json.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: line 3, column \\d+: request 2: prompt: has no \\{\\} marking where the subject goes`));
    const yaml = write('bad.yaml', 'prompt: "{} is"\nsubject: x\ntarget_new: [1, 2]\n');
    assert.throws(() => readRequestFile(yaml), /bad\.yaml: line 3, column \d+: target_new: must be a string/);
    assert.throws(() => readRequestFile(write('empty.jsonl', '\n  \n')), /empty\.jsonl: the file is empty; write one request .* per line/);
    assert.throws(() => readRequestFile(write('empty.json', '')), /empty\.json: the file is empty/);
    assert.throws(() => readRequestFile(write('empty.yaml', '[]')), /empty\.yaml: line 1, column 1: the list holds no requests/);
    assert.throws(() => readRequestFile(path.join(tempDir(), 'none.json')), /none\.json: file not found; check the path/);
    assert.throws(() => readRequestFile(tempDir().concat('.json')), /file not found/);
    const folder = path.join(tempDir(), 'dir.json');
    fs.mkdirSync(folder);
    assert.throws(() => readRequestFile(folder), /dir\.json: is a folder/);
    assert.throws(() => readRequestFile(write('r.csv', 'a,b')), /r\.csv: unknown kind of request file; name it \.json, \.jsonl, \.yaml or \.yml/);
    if (process.getuid?.() !== 0) {
      const locked = write('locked.json', JSON.stringify(graftForm));
      fs.chmodSync(locked, 0o000);
      assert.throws(() => readRequestFile(locked), /locked\.json: cannot be read \(permission denied\)/);
    }
  });
});
