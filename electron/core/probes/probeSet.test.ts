// Probe and prompt sets: every accepted format, the hash that identifies a set across
// formats, the messages for bad files (file and line or entry), the shipped defaults, and
// ME-PPL's own file.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

import { tempDir } from '../testing/fixtures.ts';
import { defaultKlPrompts } from './defaultKlPrompts.ts';
import { defaultProbeSentences } from './defaultProbeSet.ts';
import { detectFormat, loadProbeSet, loadPromptSet, parseTextList, ProbeSetError, textListSha256 } from './probeSet.ts';

function write(dir: string, name: string, content: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, content);
  return file;
}

async function rejectsWith(p: Promise<unknown>, file: string, location: { line?: number; entry?: number }, message: RegExp) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ProbeSetError, `expected a ProbeSetError, got ${String(e)}`);
    assert.equal(e.file, file);
    assert.deepEqual(e.location, location);
    assert.ok(e.message.startsWith(file), `message should start with the file: ${e.message}`);
    assert.match(e.message, message);
    return true;
  });
}

describe('probe set formats', () => {
  const expected = ['The cat sat on the mat.', 'Water boils at 100 degrees.', '"Hello," she said.'];

  test('plain text, JSON lines and JSON lists give the same sentences and the same hash', async () => {
    const dir = tempDir();
    const files = [
      write(dir, 'a.txt', `\uFEFF  ${expected[0]}  \r\n\r\n${expected[1]}\n\n${expected[2]}\n`),
      write(dir, 'b.jsonl', [JSON.stringify({ Text: expected[0], Corpus: 'x' }), '', JSON.stringify({ text: expected[1] }), JSON.stringify(expected[2])].join('\n') + '\n'),
      write(dir, 'c.json', JSON.stringify(expected, null, 2)),
      write(dir, 'd.json', JSON.stringify(expected.map((Text) => ({ Corpus: 'Made up', Text })), null, 4)),
    ];
    const sets = await Promise.all(files.map((f) => loadProbeSet(f)));
    for (const [i, set] of sets.entries()) {
      assert.deepEqual(set.sentences, expected, files[i]);
      assert.equal(set.sha256, textListSha256(expected));
      assert.equal(set.file, files[i]);
    }
    assert.deepEqual(sets.map((s) => s.name), ['a', 'b', 'c', 'd']);
    const other = await loadProbeSet(write(dir, 'e.txt', expected.slice(0, 2).join('\n')));
    assert.notEqual(other.sha256, sets[0]!.sha256);
  });

  test('JSON texts keep their leading space; plain-text lines are trimmed', () => {
    assert.deepEqual(parseTextList('[{"Text": " Regions and cities"}]', 'x.json'), [' Regions and cities']);
    assert.deepEqual(parseTextList('  Regions and cities \n', 'x.txt'), ['Regions and cities']);
  });

  test('the format comes from the extension, else from the first character', () => {
    assert.equal(detectFormat('s.txt', '[Applause] and more'), 'text');
    assert.deepEqual(parseTextList('[Applause] and more\n{braces}', 's.txt'), ['[Applause] and more', '{braces}']);
    assert.equal(detectFormat('s', '  ["a"]'), 'json');
    assert.equal(detectFormat('s.data', '{"Text": "a"}'), 'jsonl');
    assert.equal(detectFormat('s', 'Plain words'), 'text');
    assert.equal(detectFormat('s.json', '{"Text": "a"}\n{"Text": "b"}'), 'jsonl');
    assert.equal(detectFormat('s.ndjson', '["a"]'), 'jsonl');
    assert.deepEqual(parseTextList('{"Text": "a"}', 's.txt', { format: 'jsonl' }), ['a']);
  });

  test('prompt sets accept a "prompt" field as well', async () => {
    const dir = tempDir();
    const file = write(dir, 'p.jsonl', '{"prompt": "The capital of Italy is"}\n{"Text": "Once upon a"}\n');
    const set = await loadPromptSet(file);
    assert.deepEqual(set.prompts, ['The capital of Italy is', 'Once upon a']);
    assert.equal(set.sha256, textListSha256(set.prompts));
    // a probe set does not take "prompt" as its text field
    await rejectsWith(loadProbeSet(file), file, { line: 1 }, /record has no "Text" or "text" field \(it has "prompt"\)/);
  });
});

describe('probe set errors name the file and the line or entry', () => {
  test('missing file, folder, empty set', async () => {
    const dir = tempDir();
    const missing = path.join(dir, 'nope.txt');
    await rejectsWith(loadProbeSet(missing), missing, {}, /file not found/);
    await rejectsWith(loadProbeSet(dir), dir, {}, /is a folder/);
    const blank = write(dir, 'blank.txt', '\n   \n\r\n');
    await rejectsWith(loadProbeSet(blank), blank, {}, /holds no sentences/);
    const emptyList = write(dir, 'empty.json', ' [ ] ');
    await rejectsWith(loadProbeSet(emptyList), emptyList, {}, /holds no sentences/);
    const emptyPrompts = write(dir, 'empty.jsonl', '\n');
    await rejectsWith(loadPromptSet(emptyPrompts), emptyPrompts, {}, /holds no prompts/);
  });

  test('malformed JSON line', async () => {
    const dir = tempDir();
    const file = write(dir, 'bad.jsonl', '{"Text": "one"}\n\n{"Text": "two",}\n{"Text": "three"}\n');
    await rejectsWith(loadProbeSet(file), file, { line: 3 }, /malformed JSON/);
  });

  test('malformed JSON list, or a JSON file that is not a list', async () => {
    const dir = tempDir();
    const file = write(dir, 'bad.json', '[\n  "one",\n  "two"\n  "three"\n]');
    await rejectsWith(loadProbeSet(file), file, { line: 4 }, /malformed JSON/);
    const object = write(dir, 'object.json', '{\n "Text": "one"\n}');
    await assert.rejects(loadProbeSet(object), (e: unknown) => e instanceof ProbeSetError && e.file === object);
    const single = write(dir, 'single.data', '[{"Text": "one"}');
    await rejectsWith(loadProbeSet(single), single, { line: 1 }, /malformed JSON/);
  });

  test('record without text, non-string text, empty text', async () => {
    const dir = tempDir();
    const noText = write(dir, 'no-text.jsonl', '{"Text": "fine"}\n{"Corpus": "C4"}\n');
    await rejectsWith(loadProbeSet(noText), noText, { line: 2 }, /record has no "Text" or "text" field \(it has "Corpus"\)/);
    const listNoText = write(dir, 'no-text.json', JSON.stringify([{ Text: 'a' }, { Text: 'b' }, {}]));
    await rejectsWith(loadProbeSet(listNoText), listNoText, { entry: 3 }, /record has no "Text" or "text" field \(it has no fields\)/);
    const numberText = write(dir, 'number.json', JSON.stringify([{ Text: 'a' }, { Text: 42 }]));
    await rejectsWith(loadProbeSet(numberText), numberText, { entry: 2 }, /"Text" must be a string, got a number \(42\)/);
    const bareNumber = write(dir, 'bare.jsonl', '"a"\n7\n');
    await rejectsWith(loadProbeSet(bareNumber), bareNumber, { line: 2 }, /must be a string or a record with a text field, got a number/);
    const nullText = write(dir, 'null.jsonl', '{"text": null}\n');
    await rejectsWith(loadProbeSet(nullText), nullText, { line: 1 }, /"text" must be a string, got null/);
    const listInList = write(dir, 'nested.json', JSON.stringify(['a', ['b']]));
    await rejectsWith(loadProbeSet(listInList), listInList, { entry: 2 }, /got a list/);
    const emptyText = write(dir, 'empty-text.json', JSON.stringify(['a', '   ']));
    await rejectsWith(loadProbeSet(emptyText), emptyText, { entry: 2 }, /the sentence is empty/);
  });
});

describe('shipped sets', () => {
  test('the default probe set: at least 120 distinct, trimmed, non-empty sentences', async () => {
    const set = await loadProbeSet();
    assert.ok(set.sentences.length >= 120, `${set.sentences.length} sentences`);
    assert.equal(new Set(set.sentences).size, set.sentences.length, 'duplicates in the default set');
    for (const s of set.sentences) {
      assert.ok(s.trim() !== '' && s === s.trim() && !s.includes('\n'), JSON.stringify(s));
      assert.ok(s.split(' ').length >= 3, `too short to measure: ${s}`);
    }
    assert.equal(set.sha256, textListSha256(defaultProbeSentences));
    assert.equal(set.file, undefined);
    // the caller's copy must not alias the shipped list
    set.sentences.pop();
    assert.equal((await loadProbeSet()).sentences.length, defaultProbeSentences.length);
  });

  test('the default KL prompts: at least 40 distinct prompts that do not end in whitespace', async () => {
    const set = await loadPromptSet();
    assert.ok(set.prompts.length >= 40, `${set.prompts.length} prompts`);
    assert.equal(new Set(set.prompts).size, set.prompts.length);
    for (const p of set.prompts) assert.ok(p.trim() !== '' && p === p.trim(), JSON.stringify(p));
    assert.equal(set.sha256, textListSha256(defaultKlPrompts));
    assert.notEqual(set.sha256, (await loadProbeSet()).sha256);
  });

  const data = process.env.GRAFT_TEST_DATA;
  test('ME-PPL_50.json loads as 50 sentences; none of the default sentences come from ME-PPL', { skip: data ? false : 'GRAFT_TEST_DATA is unset; point it at a folder holding ME-PPL_50.json (e.g. ../shared/data)' }, async () => {
    const file = path.join(data!, 'ME-PPL_50.json');
    const set = await loadProbeSet(file);
    assert.equal(set.sentences.length, 50);
    assert.equal(set.name, 'ME-PPL_50');
    const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as { Text: string }[];
    assert.deepEqual(set.sentences, raw.map((r) => r.Text));
    const thousand = path.join(data!, 'ME-PPL_1k.json');
    if (fs.existsSync(thousand)) {
      const theirs = new Set((await loadProbeSet(thousand)).sentences.map((s) => s.trim()));
      for (const s of defaultProbeSentences) assert.ok(!theirs.has(s), `copied from ME-PPL: ${s}`);
    }
  });
});
