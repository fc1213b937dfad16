// The graft command as a user runs it: a child process, its exit code, stdout and stderr.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';

import { writeLoraAdapter } from '../core/export/loraAdapter.ts';
import { openDatabase } from '../core/store/database.ts';
import { beginEdit, finishEdit, upsertModel, workspaceFor } from '../core/store/repository.ts';
import { loadNative } from '../core/native/binding.ts';
import { filesIn, realModel, tempDir } from '../core/testing/fixtures.ts';
import { parseCurveFile } from '../../renderer/src/lib/curveFile.ts';

const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'graft.js');

function graft(args: string[], env: Record<string, string> = { GRAFT_NATIVE_VARIANT: 'cpu' }) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function assertOneLineError(r: ReturnType<typeof graft>, pattern: RegExp) {
  assert.notEqual(r.code, 0, 'expected a failure exit code');
  const lines = r.stderr.trim().split('\n');
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'a stack trace was printed');
  assert.equal(r.stdout, '');
}

const modelArgs = ['--layers', '2', '--embd', '64', '--ff', '128', '--heads', '4', '--kv-heads', '2', '--vocab', '320', '--seed', '3'];

describe('graft make-model and graft info', () => {
  test('make-model writes a model that info describes (native variant chosen through node-llama-cpp)', () => {
    const dir = tempDir();
    const out = path.join(dir, 'm.gguf');
    const made = graft(['make-model', '--arch', 'qwen2', ...modelArgs, '--type', 'q8_0', '--out', out, '--json'], {});
    assert.equal(made.code, 0, made.stderr);
    assert.equal(JSON.parse(made.stdout).bytes, fs.statSync(out).size);
    const info = graft(['info', out, '--json'], {});
    assert.equal(info.code, 0, info.stderr);
    const parsed = JSON.parse(info.stdout);
    assert.equal(parsed.architecture, 'qwen2');
    assert.equal(parsed.layers, 2);
    assert.equal(parsed.editable, true);
    assert.match(parsed.sha256, /^[0-9a-f]{64}$/);
    assert.deepEqual(parsed.ffnDownTypes, { 'blk.0.ffn_down.weight': 'q8_0', 'blk.1.ffn_down.weight': 'q8_0' });
  });

  test('text output names every field a researcher looks for', { skip: realModel('stories260K-Q8_0.gguf').skip }, () => {
    const r = graft(['info', realModel('stories260K-Q8_0.gguf').path!]);
    assert.equal(r.code, 0, r.stderr);
    for (const field of ['architecture  llama', 'layers        5', 'n_ff          172', 'heads         8 (kv 4)', 'ffn_down      f16 (all 5 layers)',
      'sha256        2a87a9aba8320850c56da63c24bc94a02c040ec4605e4b1a0a07b10242a8fe8f', 'editable      yes']) {
      assert.ok(r.stdout.includes(field), `missing '${field}' in\n${r.stdout}`);
    }
  });

  test('an unsupported architecture is described, with editable false and the reason', async () => {
    const dir = tempDir();
    const out = path.join(dir, 'm.gguf');
    assert.equal(graft(['make-model', '--arch', 'llama', ...modelArgs, '--out', out]).code, 0);
    // Relabel the architecture the way a converter for another family would.
    const gpt2 = path.join(dir, 'gpt2.gguf');
    const native = await loadNative();
    await native.rewrite(out, gpt2, { setKv: [{ key: 'general.architecture', type: 'str', value: 'gpt2' }] });
    const r = graft(['info', gpt2, '--json', '--no-sha256']);
    assert.equal(r.code, 0, r.stderr);
    const parsed = JSON.parse(r.stdout);
    assert.equal(parsed.architecture, 'gpt2');
    assert.equal(parsed.editable, false);
    assert.match(parsed.notEditableReason, /architecture 'gpt2' is not supported yet/);
  });
});

describe('graft logits and graft keys', () => {
  test('JSON with one full log-probability row per position, and one key per position', () => {
    const dir = tempDir();
    const out = path.join(dir, 'm.gguf');
    assert.equal(graft(['make-model', ...modelArgs, '--out', out]).code, 0);
    const logits = graft(['logits', out, '--text', 'the king', '--json']);
    assert.equal(logits.code, 0, logits.stderr);
    const parsed = JSON.parse(logits.stdout);
    assert.equal(parsed.logprobs.length, parsed.tokens.length);
    for (const row of parsed.logprobs) {
      assert.equal(row.length, 320);
      assert.ok(Math.abs(row.reduce((s: number, x: number) => s + Math.exp(x), 0) - 1) < 1e-4);
    }
    const keys = JSON.parse(graft(['keys', out, '--text', 'the king', '--layer', '1', '--json']).stdout);
    assert.equal(keys.keys.length, keys.tokens.length);
    assert.equal(keys.keys[0].length, 128);
    assertOneLineError(graft(['keys', out, '--text', 'the king', '--layer', '2']), /layer 2 is out of range \(the model has 2 layers, 0 to 1\)/);
    assertOneLineError(graft(['logits', out, '--text', '   ']), /--text is empty/);
    assertOneLineError(graft(['logits', out, '--text', 'x', '--engine', 'gpt']), /--engine must be llama or graph/);
  });
});

describe("graft logits --engine graph and graft grad (Graft's own graph)", () => {
  test('the two engines agree, with and without a LoRA adapter; grad reports the NLL llama.cpp gives', async () => {
    const dir = tempDir();
    const out = path.join(dir, 'm.gguf');
    assert.equal(graft(['make-model', ...modelArgs, '--out', out]).code, 0);
    const adapter = path.join(dir, 'edit.gguf');
    writeLoraAdapter(await loadNative(), adapter, { architecture: 'llama', factors: [{
      base: 'blk.0.ffn_down.weight', nIn: 128, nOut: 64, rank: 1,
      a: Float32Array.from({ length: 128 }, (_, i) => Math.sin(i)), b: Float32Array.from({ length: 64 }, (_, i) => Math.cos(i)),
    }] });
    const logprobs = (args: string[]) => {
      const r = graft(['logits', out, '--text', 'the king of the city', ...args, '--json']);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as { engine: string; tokens: number[]; logprobs: number[][] };
    };
    for (const lora of [[], ['--lora', `${adapter}@0.5`]]) {
      const llama = logprobs(lora), graph = logprobs(['--engine', 'graph', ...lora]);
      assert.equal(graph.engine, 'graph');
      assert.deepEqual(graph.tokens, llama.tokens);
      const diff = Math.max(...graph.logprobs.flatMap((row, i) => row.map((x, v) => Math.abs(x - llama.logprobs[i]![v]!))));
      assert.ok(diff < 1e-3, `engines differ by ${diff} with [${lora}]`);
    }

    const grad = graft(['grad', out, '--text', 'the king', '--target', ' of the city', '--layer', '0', '--site', 'resid', '--json']);
    assert.equal(grad.code, 0, grad.stderr);
    const g = JSON.parse(grad.stdout);
    assert.equal(g.gradient.length, 64);
    assert.ok(Math.hypot(...g.gradient) > 0);
    // the NLL of the target tokens after the text, from llama.cpp's log-probabilities
    const prefix = g.tokens.length - g.targetTokens.length + 1;
    const full = JSON.parse(graft(['logits', out, '--text', 'the king of the city', '--json']).stdout);
    assert.deepEqual(full.tokens.slice(0, g.tokens.length), g.tokens);
    const nll = -g.targetTokens.reduce((sum: number, t: number, i: number) => sum + full.logprobs[prefix - 1 + i][t], 0);
    assert.ok(Math.abs(nll - g.nll) < 1e-3, `grad says NLL ${g.nll}, llama.cpp ${nll}`);

    assertOneLineError(graft(['grad', out, '--text', 'the king', '--target', '  ', '--layer', '0']), /--target is empty/);
    assertOneLineError(graft(['grad', out, '--text', 'the king', '--target', 'x', '--layer', '5']), /layer 5 is out of range/);
    assertOneLineError(graft(['grad', out, '--text', 'the king', '--target', 'x', '--layer', '0', '--position', '99']), /--position 99 is outside/);
    assertOneLineError(graft(['grad', out, '--text', 'the king', '--target', 'x', '--layer', '0', '--site', 'attn']), /--site must be mlp_out or resid/);
    assertOneLineError(graft(['logits', out, '--text', 'x', '--engine', 'graph', '--lora', out]), /is not a LoRA adapter/);
  });
});

describe('graft logits --lora and graft moments', () => {
  test('logits with LoRA adapters (FILE or FILE@SCALE); bad adapters and scales are one-line errors', async () => {
    const dir = tempDir();
    const out = path.join(dir, 'm.gguf');
    assert.equal(graft(['make-model', ...modelArgs, '--out', out]).code, 0);
    const native = await loadNative();
    const adapter = path.join(dir, 'edit.gguf');
    writeLoraAdapter(native, adapter, { architecture: 'llama', factors: [{
      base: 'blk.1.ffn_down.weight', nIn: 128, nOut: 64, rank: 1,
      a: Float32Array.from({ length: 128 }, (_, i) => Math.sin(i)), b: Float32Array.from({ length: 64 }, (_, i) => Math.cos(i)),
    }] });
    const last = (r: ReturnType<typeof graft>) => { assert.equal(r.code, 0, r.stderr); return JSON.parse(r.stdout).logprobs.at(-1) as number[]; };
    const base = last(graft(['logits', out, '--text', 'the king', '--json']));
    const edited = last(graft(['logits', out, '--text', 'the king', '--lora', adapter, '--json']));
    const zero = last(graft(['logits', out, '--text', 'the king', '--lora', `${adapter}@0`, '--threads', '1', '--json']));
    assert.ok(base.some((x, i) => Math.abs(x - edited[i]!) > 1e-3), 'the adapter must change the log-probs');
    assert.deepEqual(zero, base);
    assertOneLineError(graft(['logits', out, '--text', 'x', '--lora', out]), /is not a LoRA adapter/);
    assertOneLineError(graft(['logits', out, '--text', 'x', '--lora', path.join(dir, 'none.gguf')]), /file not found/);
    assertOneLineError(graft(['logits', out, '--text', 'x', '--lora', `${adapter}@big`]), /the scale after @ must be a number/);
    assertOneLineError(graft(['logits', out, '--text', 'x', '--threads', '0']), /--threads must be at least 1/);
  });

  test('moments: JSON per layer, progress on stderr, cached on the second run', () => {
    const dir = tempDir();
    const model = path.join(dir, 'm.gguf');
    assert.equal(graft(['make-model', ...modelArgs, '--out', model]).code, 0);
    const corpus = path.join(dir, 'corpus.txt');
    fs.writeFileSync(corpus, 'the king of the city said that the river ran to the sea .\n'.repeat(30));
    const stats = path.join(dir, 'stats');
    fs.mkdirSync(stats);
    const args = ['moments', model, '--corpus', corpus, '--layer', '0,1', '--context', '32', '--tokens', '100', '--out', stats, '--threads', '1', '--json'];
    const first = graft(args);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /moments: 100\/100 tokens \(100\.0%/);
    const parsed = JSON.parse(first.stdout);
    assert.deepEqual(parsed.layers.map((l: { layer: number }) => l.layer), [0, 1]);
    for (const l of parsed.layers) {
      assert.equal(l.n, 100);
      assert.equal(l.nFf, 128);
      assert.ok(l.trace > 0);
      assert.equal(l.cached, false);
      assert.ok(fs.existsSync(l.file));
    }
    const again = JSON.parse(graft(args).stdout);
    assert.ok(again.layers.every((l: { cached: boolean }) => l.cached));
    assert.deepEqual(again.layers.map((l: { trace: number }) => l.trace), parsed.layers.map((l: { trace: number }) => l.trace));
  });

  test('moments: bad input is a one-line error and writes nothing', () => {
    const dir = tempDir();
    const model = path.join(dir, 'm.gguf');
    assert.equal(graft(['make-model', ...modelArgs, '--out', model]).code, 0);
    const corpus = path.join(dir, 'corpus.txt');
    fs.writeFileSync(corpus, 'the king of the city said that the river ran to the sea .\n'.repeat(5));
    const empty = path.join(dir, 'empty.txt');
    fs.writeFileSync(empty, '\n');
    const stats = path.join(dir, 'stats');
    fs.mkdirSync(stats);
    const base = ['moments', model, '--corpus', corpus, '--out', stats];
    assertOneLineError(graft([...base, '--layer', '2']), /layer 2 is out of range \(the model has 2 layers, 0 to 1\)/);
    assertOneLineError(graft([...base, '--layer', 'one']), /--layer must be an integer, got 'one'/);
    assertOneLineError(graft([...base]), /--layer is required/);
    assertOneLineError(graft([...base, '--layer', '0,0']), /layer 0 is listed twice/);
    assertOneLineError(graft(['moments', model, '--corpus', empty, '--out', stats, '--layer', '0']), /the corpus .*empty\.txt is empty/);
    assertOneLineError(graft([...base, '--layer', '0', '--tokens', '100000']), /has only \d+ tokens, fewer than the 100000 asked for/);
    assertOneLineError(graft([...base, '--layer', '0', '--tokens', '0']), /--tokens must be at least 1/);
    assertOneLineError(graft([...base, '--layer', '0', '--context', '1']), /--context must be at least 2/);
    assertOneLineError(graft(['moments', model, '--corpus', path.join(dir, 'none.txt'), '--out', stats, '--layer', '0']), /corpus file not found/);
    assertOneLineError(graft(['moments', model, '--corpus', corpus, '--out', path.join(dir, 'nope'), '--layer', '0']), /output folder .*nope does not exist/);
    assertOneLineError(graft(['moments', model, '--layer', '0']), /--corpus is required/);
    assertOneLineError(graft([...base, '--layer', '0', '--threads', 'x']), /--threads must be an integer/);
    assert.deepEqual(filesIn(stats), []);
  });
});

describe('bad input gives a one-line error, a failure exit code and no output file', () => {
  test('missing path', () => assertOneLineError(graft(['info', '/nonexistent/model.gguf']), /file not found: \/nonexistent\/model\.gguf/));

  test('a directory', () => assertOneLineError(graft(['info', tempDir()]), /is a directory/));

  test('a file that is not GGUF', () => {
    const file = path.join(tempDir(), 'notes.txt');
    fs.writeFileSync(file, 'these are not weights\n');
    assertOneLineError(graft(['info', file]), /is not a GGUF file: it starts with 'thes'/);
  });

  test('a truncated model', () => {
    const dir = tempDir();
    const out = path.join(dir, 'm.gguf');
    graft(['make-model', ...modelArgs, '--out', out]);
    const cut = path.join(dir, 'cut.gguf');
    fs.writeFileSync(cut, fs.readFileSync(out).subarray(0, fs.statSync(out).size - 1000));
    assertOneLineError(graft(['info', cut]), /is truncated: tensor 'blk\.1\.ffn_down\.weight' ends at byte \d+ but the file has only \d+ bytes/);
    const header = path.join(dir, 'header.gguf');
    fs.writeFileSync(header, fs.readFileSync(out).subarray(0, 500));
    assertOneLineError(graft(['info', header]), /not a valid GGUF file: .*may be truncated/);
  });

  test('a corrupted header and an out-of-range tensor offset', () => {
    const dir = tempDir();
    const out = path.join(dir, 'm.gguf');
    graft(['make-model', ...modelArgs, '--out', out]);
    const bytes = fs.readFileSync(out);
    const version = Buffer.from(bytes);
    version.writeUInt32LE(99, 4);
    fs.writeFileSync(path.join(dir, 'v.gguf'), version);
    assertOneLineError(graft(['info', path.join(dir, 'v.gguf')]), /not a valid GGUF file: .*version 99/);
    // The last tensor's offset field is the 8 bytes before the padding that ends the table.
    const table = Buffer.from(bytes);
    const name = Buffer.from('blk.1.ffn_down.weight');
    const at = table.lastIndexOf(name) + name.length + 4 + 2 * 8 + 4;
    table.writeBigUInt64LE(1n << 40n, at);
    fs.writeFileSync(path.join(dir, 'o.gguf'), table);
    assertOneLineError(graft(['info', path.join(dir, 'o.gguf')]), /not a valid GGUF file: tensor 'blk\.1\.ffn_down\.weight' has offset 1099511627776/);
  });

  test('make-model refuses an unsupported architecture, bad numbers and a missing folder, writing nothing', () => {
    const dir = tempDir();
    const out = path.join(dir, 'm.gguf');
    const arch = graft(['make-model', '--arch', 'gpt2', ...modelArgs, '--out', out]);
    assertOneLineError(arch, /--arch must be one of llama, qwen2, qwen3, got 'gpt2'/);
    assertOneLineError(graft(['make-model', ...modelArgs, '--heads', 'four', '--out', out]), /--heads must be an integer/);
    assertOneLineError(graft(['make-model', ...modelArgs, '--out', path.join(dir, 'no', 'm.gguf')]), /output folder .* does not exist/);
    assertOneLineError(graft(['make-model', ...modelArgs]), /--out is required/);
    assertOneLineError(graft(['info']), /give exactly one model file/);
    assert.deepEqual(filesIn(dir), []);
    // An existing file is never replaced without --force.
    fs.writeFileSync(out, 'precious');
    assertOneLineError(graft(['make-model', ...modelArgs, '--out', out]), /already exists; choose another --out or add --force/);
    assert.equal(fs.readFileSync(out, 'utf8'), 'precious');
    assert.equal(graft(['make-model', ...modelArgs, '--out', out, '--force']).code, 0);
    assert.equal(fs.readFileSync(out).subarray(0, 4).toString(), 'GGUF');
  });

  test('demo-model never replaces a model without --force and refuses bad numbers, writing nothing', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'ground-truth.json'), 'precious');
    assertOneLineError(graft(['demo-model', '--out', dir]), /already holds ground-truth\.json; choose another --out or add --force/);
    assert.equal(fs.readFileSync(path.join(dir, 'ground-truth.json'), 'utf8'), 'precious');
    const empty = tempDir();
    assertOneLineError(graft(['demo-model', '--out', empty, '--steps', '0']), /--steps must be at least 1/);
    assertOneLineError(graft(['demo-model', '--out', empty, '--seed', 'x']), /--seed must be an integer/);
    assert.deepEqual(filesIn(empty), []);
  });

  test('an unknown native variant is named', () => {
    assertOneLineError(graft(['info', '/nonexistent.gguf'], { GRAFT_NATIVE_VARIANT: 'gpu' }), /GRAFT_NATIVE_VARIANT must be one of cpu, cuda, vulkan, got 'gpu'/);
  });

  test('unknown commands and options', () => {
    assert.equal(graft(['frobnicate']).code, 2);
    assertOneLineError(graft(['info', '--bogus', 'x']), /Unknown option '--bogus'/);
  });
});

describe('graft edit and graft trace', () => {
  test('an edit writes an adapter and reports metrics; bad requests are one-line errors; trace prints a grid', async () => {
    const dir = tempDir();
    const model = path.join(dir, 'm.gguf');
    assert.equal(graft(['make-model', ...modelArgs, '--out', model]).code, 0);
    const out = path.join(dir, 'adapters');
    fs.mkdirSync(out);
    const stats = path.join(dir, 'stats');
    const db = path.join(dir, 'history.sqlite');
    // random weights: the watch may judge any edit harshly, and this test is about the stack
    const common = ['--layer', '0', '--v-steps', '5', '--stats-tokens', '512', '--out', out, '--db', db, '--json', '--no-auto-disable'];
    const edited = graft(['edit', model, '--prompt', 'the king of {} said', '--subject', 'the city', '--target', 'river', '--target-true', 'sea', ...common],
      { GRAFT_NATIVE_VARIANT: 'cpu', HOME: stats });
    assert.equal(edited.code, 0, edited.stderr);
    const r = JSON.parse(edited.stdout);
    assert.equal(r.layer, 0);
    assert.equal(r.factors.u.length, 64);
    assert.equal(r.factors.v.length, 128);
    assert.equal(r.hyperparameters.vSteps, 5);
    assert.ok(fs.existsSync(r.adapter) && path.dirname(r.adapter) === out);
    assert.ok(r.metrics.after.efficacy.pNew > r.metrics.before.efficacy.pNew);
    assert.match(edited.stderr, /edit: templates/);
    assert.equal(r.stack, 0);
    // the collapse watch ran after the edit: a verdict with the numbers behind it, stored
    assert.ok(['ok', 'degraded', 'collapsed'].includes(r.verdict));
    assert.equal(r.verdict, r.probes.judgement.verdict);
    assert.ok(Number.isFinite(r.probes.judgement.signals.sentencePplRatio) && r.probes.judgement.signals.sentencePplRatio > 0);
    assert.equal(r.probes.baselineReused, false);
    assert.deepEqual(r.probes.editSet, [r.edit]);
    // a second edit in the same workspace is computed on the first, and both are in the history
    const second = graft(['edit', model, '--prompt', 'the {} said', '--subject', 'dog', '--target', 'cat', ...common], { GRAFT_NATIVE_VARIANT: 'cpu', HOME: stats });
    assert.equal(second.code, 0, second.stderr);
    assert.equal(JSON.parse(second.stdout).stack, 1);
    assert.equal(JSON.parse(second.stdout).probes.baselineReused, true, 'the base model is probed once');
    const history = JSON.parse(graft(['history', '--db', db, '--json']).stdout);
    assert.equal(history.length, 1);
    assert.deepEqual(history[0].edits.map((e: { status: string; enabled: boolean }) => [e.status, e.enabled]), [['done', true], ['done', true]]);
    const shown = JSON.parse(graft(['show', String(r.edit), '--db', db, '--json']).stdout);
    assert.deepEqual(shown.factors[0].u, r.factors.u);
    assert.equal(shown.statistics.length, 1, 'the second-moment file the edit used is recorded');
    assert.ok(fs.existsSync(shown.statistics[0].path) && shown.statistics[0].layer === 0);
    const toggled = graft(['toggle', String(r.edit), 'off', '--db', db]);
    assert.equal(toggled.code, 0, toggled.stderr);
    assert.match(toggled.stderr, /computed with edit \d+ applied/);
    assertOneLineError(graft(['toggle', '999', 'off', '--db', db]), /edit 999 is not in the history/);
    const moved = graft(['move', String(JSON.parse(second.stdout).edit), '1', '--db', db]);
    assert.equal(moved.code, 0, moved.stderr);
    assert.equal(moved.stdout, `stack: ${JSON.parse(second.stdout).edit}, ${r.edit}\n`);
    assert.match(moved.stderr, /now comes before an edit it was computed on/);
    assert.equal(graft(['move', String(r.edit), '1', '--db', db]).code, 0);
    assertOneLineError(graft(['move', String(r.edit), '7', '--db', db]), /position 7 is outside the stack/);
    assertOneLineError(graft(['toggle', String(r.edit), 'maybe', '--db', db]), /say on or off/);

    const requestFile = path.join(dir, 'request.json');
    fs.writeFileSync(requestFile, JSON.stringify({ requested_rewrite: { prompt: 'the {} said', subject: 'king', target_new: { str: '   ' } } }));
    assertOneLineError(graft(['edit', model, '--request', requestFile, ...common]), /request\.requested_rewrite\.target_new\.str: is empty or only whitespace/);
    // the failed layer-9 edit below is recorded as failed, nothing else changes
    assertOneLineError(graft(['edit', model, '--request', path.join(dir, 'none.json'), '--db', db]), /--request .*none\.json: file not found/);
    assertOneLineError(graft(['edit', model, '--prompt', 'the king said', '--subject', 'queen', '--target', 'x', '--db', db]), /the subject 'queen' does not occur in the prompt/);
    assertOneLineError(graft(['edit', model, '--prompt', 'the {} said', '--subject', 'king', '--target', 'x', '--db', db, '--layer', '9', '--mom2-adjustment', 'off', '--out', out]), /layer 9 is out of range/);
    assertOneLineError(graft(['edit', model, '--prompt', 'the {} said', '--subject', 'king', '--target', 'x', '--db', db, '--corpus', path.join(dir, 'no.txt')]), /--corpus .*no\.txt: file not found/);
    assertOneLineError(graft(['edit', model, '--prompt', 'the {} said', '--subject', 'king', '--target', 'x', '--db', db, '--mom2-adjustment', 'maybe']), /--mom2-adjustment must be on or off/);
    const empty = path.join(dir, 'empty.txt');
    fs.writeFileSync(empty, '');
    assertOneLineError(graft(['edit', model, '--prompt', 'the {} said', '--subject', 'king', '--target', 'x', '--db', db, '--corpus', empty, '--out', out], { GRAFT_NATIVE_VARIANT: 'cpu', HOME: stats }), /--corpus .*empty\.txt is empty/);
    const gpt2 = path.join(dir, 'gpt2.gguf');
    assert.equal(graft(['make-model', ...modelArgs, '--out', gpt2]).code, 0);
    const relabelled = path.join(dir, 'relabelled.gguf');
    fs.renameSync(gpt2, relabelled);
    await (await loadNative()).rewrite(relabelled, gpt2, { setKv: [{ key: 'general.architecture', type: 'str', value: 'gpt2' }] });
    assertOneLineError(graft(['edit', gpt2, '--prompt', 'the {} said', '--subject', 'king', '--target', 'x', '--db', db, '--out', out]), /cannot be edited/);
    assert.equal(fs.readdirSync(out).length, 2, `failed edits write nothing: ${fs.readdirSync(out).join(', ')}`);

    const editsBefore = JSON.parse(graft(['history', '--db', db, '--json']).stdout)[0].edits;
    const probed = graft(['probe', model, '--db', db, '--workspace', 'm', '--kl', '--hard', '--json'], { GRAFT_NATIVE_VARIANT: 'cpu', HOME: stats });
    assert.equal(probed.code, 0, probed.stderr);
    const p = JSON.parse(probed.stdout);
    assert.deepEqual(p.editSet, [JSON.parse(second.stdout).edit], 'the workspace stack: the first edit is off, the second on');
    assert.equal(p.baselineReused, true);
    assert.ok(p.results.kl.meanKl > 0);
    assert.deepEqual(p.hardCases.map((c: { id: string }) => c.id), ['subject-first', 'short-subject', 'numeric-target', 'long-target', 'repeated-subject', 'many-on-one-layer']);
    for (const c of p.hardCases) assert.ok(c.error === null ? Number.isFinite(c.sentencePplRatio) && c.klMean > 0 : typeof c.error === 'string', JSON.stringify(c));
    assert.deepEqual(JSON.parse(graft(['history', '--db', db, '--json']).stdout)[0].edits, editsBefore, 'hard cases leave the workspace untouched');
    const text = graft(['probe', model, '--db', db, '--workspace', 'm']);
    assert.match(text.stdout, /sentence perplexity \(mean\)/);
    assert.match(text.stdout, /verdict: (ok|degraded|collapsed)/);
    assertOneLineError(graft(['probe', model, '--db', db, '--workspace', 'm', '--lora', out]), /--lora and --workspace exclude each other/);
    assertOneLineError(graft(['probe', model, '--db', db, '--hard']), /--hard builds its cases from a ROME edit/);
    assertOneLineError(graft(['probe', model, '--db', db, '--corpus', empty]), /--corpus .*empty\.txt is empty/);
    assertOneLineError(graft(['probe', model, '--db', db, '--thresholds', '{"sentencePplRatio":{"collapsed":0.5}}']), /'collapsed' \(0\.5\) must be at least 'degraded'/);
    const unprobed = graft(['edit', model, '--prompt', 'the {} said', '--subject', 'dog', '--target', 'cow', ...common, '--no-probes'], { GRAFT_NATIVE_VARIANT: 'cpu', HOME: stats });
    assert.equal(JSON.parse(unprobed.stdout).verdict, null);



    const traced = graft(['trace', model, '--prompt', 'the king of the city said', '--subject', 'the city', '--samples', '2', '--json']);
    assert.equal(traced.code, 0, traced.stderr);
    const t = JSON.parse(traced.stdout);
    assert.equal(t.grids.length, 3);
    assert.equal(t.grids[0].probabilities.length, 2);
    assert.equal(t.grids[0].probabilities[0].length, t.tokens.length);
    assertOneLineError(graft(['trace', model, '--prompt', 'the king said', '--subject', 'queen']), /does not occur in the prompt/);
  });
});

describe('graft edit --requests', () => {
  test('a MEMIT sequence from a JSONL file: one edit per batch, one adapter for the run, a table and a summary; mistakes are one-line errors', async () => {
    const native = await loadNative();
    const dir = tempDir();
    const model = path.join(dir, 'm.gguf');
    assert.equal(graft(['make-model', ...modelArgs, '--out', model]).code, 0);
    const file = path.join(dir, 'facts.jsonl');
    fs.writeFileSync(file, [['the king', 'sea'], ['the dog', 'hill'], ['the river', 'road']]
      .map(([subject, target]) => JSON.stringify({ requested_rewrite: { prompt: 'I saw {} near the', subject, target_new: { str: target }, target_true: { str: 'wall' } } })).join('\n'));
    const db = path.join(dir, 'history.sqlite');
    const out = path.join(dir, 'run.gguf');
    const common = ['--db', db, '--layers', '0-1', '--v-steps', '3', '--stats-tokens', '512', '--no-probes'];
    const env = { GRAFT_NATIVE_VARIANT: 'cpu', HOME: path.join(dir, 'home') };
    const run = graft(['edit', model, '--method', 'memit', '--requests', file, '--batch-size', '2', '--sequential', '--curve', '--out', out, '--json', ...common], env);
    assert.equal(run.code, 0, run.stderr);
    const r = JSON.parse(run.stdout);
    assert.equal(r.method, 'memit');
    assert.deepEqual(r.batches.map((b: { requestIndices: number[] }) => b.requestIndices), [[0, 1], [2]]);
    assert.equal(r.summary.requests, 3);
    assert.equal(r.curve.length, 2);
    assert.deepEqual(r.curve.map((c: { edits: number }) => c.edits), [2, 3]);
    // the Probes screen reads this output as a curve file
    assert.deepEqual(parseCurveFile(run.stdout), [{ label: 'memit', points: r.curve.map(({ batchIndex: _, ...p }: { batchIndex: number }) => p) }]);
    assert.equal(r.adapter, out);
    const lora = native.inspect(out).tensors.filter((t) => t.name.endsWith('lora_a')).map((t) => [t.name, t.shape[1]]);
    assert.deepEqual(lora, [['blk.0.ffn_down.weight.lora_a', 3], ['blk.1.ffn_down.weight.lora_a', 3]]);
    const history = JSON.parse(graft(['history', '--db', db, '--json']).stdout);
    assert.deepEqual(history[0].edits.map((e: { method: string; status: string }) => [e.method, e.status]), [['memit', 'done'], ['memit', 'done']]);
    // the same file again: the run is done, so a new one starts on top of it
    const text = graft(['edit', model, '--method', 'memit', '--requests', file, ...common], env);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /3 requests in 1 batch/);
    assert.match(text.stdout, /summary over 3 requests: efficacy/);

    assertOneLineError(graft(['edit', model, '--requests', file, ...common]), /ROME edits one fact at a time: add --sequential/);
    assertOneLineError(graft(['edit', model, '--method', 'memit', '--requests', file, '--batch-size', '2', ...common]), /need --sequential/);
    assertOneLineError(graft(['edit', model, '--method', 'memit', '--requests', path.join(dir, 'none.jsonl'), ...common]), /none\.jsonl/);
    assertOneLineError(graft(['edit', model, '--method', 'memit', '--prompt', 'the {} said', '--subject', 'king', '--target', 'x', '--layer', '0', '--db', db]), /memit edits a range of layers: give --layers/);
    assertOneLineError(graft(['edit', model, '--method', 'rank-one', '--requests', file, '--db', db]), /--method must be rome, memit, emmet or alphaedit/);
    assertOneLineError(graft(['edit', model, '--requests', file, '--prompt', 'x {}', '--db', db]), /not both/);
  });
});

describe('graft merge', () => {
  test('merges the enabled stack, printing rank before → after and the error per layer; mistakes are one-line errors', () => {
    const dir = tempDir();
    const db = path.join(dir, 'graft.sqlite');
    const history = openDatabase(db);
    const model = upsertModel(history, { path: '/m.gguf', sha256: 'd'.repeat(64), arch: 'llama', nLayer: 2, nEmbd: 4, nFf: 6, nVocab: 320, fileType: 'F32', sizeBytes: 1 });
    const ws = workspaceFor(history, 'facts', model.id);
    workspaceFor(history, 'other', model.id);
    const ids = [1, 2, 3].map((seed) => {
      const id = beginEdit(history, ws.id, { method: 'rome', request: {}, layers: [1], hparams: {}, seed });
      // three rank-1 edits, the third a multiple of the first: rank 2 in all
      const u = Float32Array.from({ length: 4 }, (_, i) => (seed === 2 ? i * i - 1 : i + 1) * (seed === 3 ? 2 : 1));
      const v = Float32Array.from({ length: 6 }, (_, i) => (seed === 2 ? Math.cos(i) : i - 2));
      finishEdit(history, id, { templates: [], factors: [{ layer: 1, rank: 1, u, v }], timings: null, preflight: null, metrics: null, adapterPath: null });
      return id;
    });
    history.close();
    assertOneLineError(graft(['merge', '--db', db]), /say which workspace with --workspace \(facts, other\)/);
    assertOneLineError(graft(['merge', '--db', db, '--workspace', 'facts', '--rank', '2', '--tolerance', '0.1']), /--rank or --tolerance, not both/);
    assertOneLineError(graft(['merge', '--db', db, '--workspace', 'facts', '--tolerance', '1.5']), /--tolerance is the relative Frobenius error allowed, in \[0, 1\)/);
    assertOneLineError(graft(['merge', '--db', db, '--workspace', 'nope']), /there is no workspace 'nope'/);
    assertOneLineError(graft(['merge', '--db', db, '--workspace', 'other']), /nothing to merge/);
    const text = graft(['merge', '--db', db, '--workspace', 'facts']);
    assert.equal(text.code, 0, text.stderr);
    const merge = ids[2]! + 1;
    assert.match(text.stdout, new RegExp(`^edit ${merge} merges edits ${ids.join(', ')} of 'facts' \\(now off; to undo: graft toggle ${merge} off, then toggle ${ids.join(', ')} on\\)\n  L1: rank 3 → 2, relative error 0\\.000e\\+0\n$`));
    const json = graft(['merge', '--db', db, '--workspace', 'facts', '--rank', '1', '--json']);
    assert.equal(json.code, 0, json.stderr);
    const r = JSON.parse(json.stdout);
    assert.deepEqual(r.merged, [merge]);
    assert.deepEqual(r.layers.map((l: { rankBefore: number; rankAfter: number }) => [l.rankBefore, l.rankAfter]), [[2, 1]]);
    assert.ok(r.layers[0].relativeError > 0 && r.layers[0].relativeError < 1);
    assert.match(graft(['history', '--db', db, '--workspace', 'facts']).stdout, new RegExp(`on  done      merge L1  merge of edits ${merge}\n`));
    const edits = JSON.parse(graft(['history', '--db', db, '--workspace', 'facts', '--json']).stdout)[0].edits;
    assert.deepEqual(edits.map((e: { method: string; enabled: boolean }) => [e.method, e.enabled]), [['rome', false], ['rome', false], ['rome', false], ['merge', false], ['merge', true]]);
  });
});
