// The backend without a transport: request documents with positions, settings that outlive
// a restart, clear import errors, and the job registry's order, throttling and cancel.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';

import type { Job } from '../api/contract.ts';
import { tempDir } from '../core/testing/fixtures.ts';
import { EventHub } from './events.ts';
import { createBackend } from './index.ts';
import { CancelledError, JobRegistry } from './jobs.ts';
import { defaultThresholds } from '../core/probes/verdict.ts';

const options = (dataDir: string) => ({ dataDir, threads: 1, gpu: 'off' as const, mode: 'web' as const, demoModelDir: null });

describe('request documents', () => {
  const backend = createBackend(options(tempDir()));

  test('a missing "subject" is placed on its request, in JSON and in YAML', async () => {
    const json = '[\n  {"prompt": "The {} is in", "subject": "Eiffel Tower", "target_new": "Rome"},\n  {\n    "prompt": "The {} is in",\n    "target_new": "Paris"\n  }\n]\n';
    const j = await backend.checkRequestDocument(json, 'json');
    assert.deepEqual(j.requests.map((r) => [r.subject, r.targetNew]), [['Eiffel Tower', ' Rome']]);
    assert.equal(j.problems.length, 1);
    assert.equal(j.problems[0]!.message, 'request 2: "subject" is missing');
    assert.deepEqual([j.problems[0]!.line, j.problems[0]!.column], [3, 3]);

    const yaml = 'prompt: The {} is in\ntarget_new: Rome\nparaphrase_prompts:\n  - Where is {}?\n';
    const y = await backend.checkRequestDocument(yaml, 'yaml');
    assert.deepEqual(y.requests, []);
    assert.deepEqual(y.problems.map((p) => [p.message, p.line, p.column]), [['"subject" is missing', 1, 1]]);
  });

  test('wrong types, parser rules and syntax errors point at their text', async () => {
    const typed = await backend.checkRequestDocument('prompt: The {} is in\nsubject: Eiffel\ntarget_new: 3\n', 'yaml');
    assert.deepEqual(typed.problems.map((p) => [p.message, p.line, p.column, p.endColumn]), [['target_new: must be a string, got an integer', 3, 13, 14]]);
    const noBraces = await backend.checkRequestDocument('{\n  "prompt": "The tower is in",\n  "subject": "Eiffel",\n  "target_new": "Rome"\n}', 'json');
    assert.deepEqual(noBraces.problems.map((p) => [p.message, p.line, p.column]), [['prompt: has no {} marking where the subject goes', 2, 13]]);
    const broken = await backend.checkRequestDocument('{"prompt": "x"\n "subject": "y"}', 'json');
    assert.equal(broken.problems.length, 1);
    assert.equal(broken.problems[0]!.line, 2);
    const badYaml = await backend.checkRequestDocument('prompt: [unclosed\nsubject: x\n', 'yaml');
    assert.ok(badYaml.problems.length >= 1 && badYaml.problems[0]!.line >= 1);
    const counterfact = await backend.checkRequestDocument(JSON.stringify({ requested_rewrite: { prompt: '{} plays', subject: 'Messi', target_new: { str: 'golf' } } }), 'json');
    assert.deepEqual(counterfact, { requests: [{ prompt: '{} plays', subject: 'Messi', targetNew: ' golf', paraphrases: [], neighbours: [] }], problems: [] });
  });

  test('the schema is the one Monaco gets', async () => {
    const schema = await backend.editRequestSchema() as { oneOf: { required: string[] }[] };
    assert.deepEqual(schema.oneOf[0]!.required, ['prompt', 'subject', 'target_new']);
  });
});

describe('settings and imports', () => {
  test('settings persist across restarts; bad values are refused and change nothing', async () => {
    const dir = tempDir();
    const first = createBackend(options(dir));
    assert.deepEqual(await first.getSettings(), { dataFolder: dir, threads: 1, gpu: 'off', thresholds: defaultThresholds });
    await first.setSettings({ threads: 3, gpu: 'auto', thresholds: { klMean: { degraded: 0.2, collapsed: 2 } } });
    await assert.rejects(first.setSettings({ threads: 0 }), /threads must be a whole number of at least 1/);
    await assert.rejects(first.setSettings({ thresholds: { klMean: { degraded: 3, collapsed: 2 } } }), /'collapsed' \(2\) must be at least 'degraded' \(3\)/);
    await assert.rejects(first.setSettings({ thresholds: { nonsense: { degraded: 1, collapsed: 2 } } }), /unknown threshold 'nonsense'/);
    await first.close();
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith('settings')), ['settings.json'], 'no temporary file left behind');
    const second = createBackend(options(dir));
    assert.deepEqual(await second.getSettings(), { dataFolder: dir, threads: 3, gpu: 'auto', thresholds: { ...defaultThresholds, klMean: { degraded: 0.2, collapsed: 2 } } });
    await second.close();
  });

  test('importing a missing file, a folder or a file that is not GGUF says which', async () => {
    const dir = tempDir();
    const backend = createBackend(options(path.join(dir, 'data')));
    await assert.rejects(backend.importModel(path.join(dir, 'gone.gguf')), /gone\.gguf does not exist; give the path of a \.gguf model file/);
    await assert.rejects(backend.importModel(dir), /is a folder; choose a \.gguf file inside it/);
    fs.writeFileSync(path.join(dir, 'notes.gguf'), 'these are notes, not a model');
    await assert.rejects(backend.importModel(path.join(dir, 'notes.gguf')), /is not a GGUF file/);
    assert.deepEqual(await backend.listModels(), []);
    assert.deepEqual(await backend.listBatchRuns(), [], 'no model loaded, no workspace, no runs');
    await assert.rejects(backend.startEdit({ prompt: '{} is', subject: 'x', targetNew: 'y' }, {}), /load a model first/);
    // the file dialog belongs to the desktop shell; the web mode says to type the path
    await assert.rejects(backend.chooseModelFile(), (e: Error & { code?: string }) => e.code === 'not-available' && /type the path/.test(e.message));
    await assert.rejects(backend.chooseRequestFile(), (e: Error & { code?: string }) => e.code === 'not-available' && /type the path of the request file/.test(e.message));
    await backend.close();
  });

  test('the transport sees only the contract', () => {
    const backend = createBackend(options(tempDir()));
    const surface = backend.rpcSurface() as unknown as Record<string, unknown>;
    assert.equal(typeof surface.listModels, 'function');
    assert.equal(surface.close, undefined);
    assert.equal(surface.subscribe, undefined);
    void backend.close();
  });
});

describe('jobs', () => {
  test('jobs run in turn, progress is throttled, a failure is logged, a cancel ends as cancelled', async () => {
    const events = new EventHub();
    const updates: Job[] = [];
    events.subscribe((event, ...data) => { if (event === 'jobUpdate') updates.push(data[0] as Job); });
    const failed: Job[] = [];
    const jobs = new JobRegistry(events, (j) => failed.push(j), 100);
    const order: string[] = [];
    const first = jobs.start('probe', 'first', async (c) => {
      order.push('first start');
      for (let i = 0; i < 50; i++) c.progress({ fraction: (i + 1) / 50 });
      await new Promise((r) => setTimeout(r, 30));
      order.push('first end');
      return 42;
    });
    const second = jobs.start('probe', 'second', async (c) => {
      order.push('second start');
      await new Promise<void>((_resolve, reject) => c.signal.addEventListener('abort', () => reject(new CancelledError())));
    });
    const third = jobs.start('export', 'third', async () => { throw new Error('disk full'); });
    while (!order.includes('second start')) await new Promise((r) => setTimeout(r, 5));
    jobs.cancel(second);
    await jobs.exclusive(() => undefined);
    assert.deepEqual(order, ['first start', 'first end', 'second start']);
    const final = new Map(jobs.list().map((j) => [j.id, j]));
    assert.deepEqual([final.get(first)!.state, final.get(first)!.result, final.get(first)!.progress.fraction], ['done', 42, 1]);
    assert.equal(final.get(second)!.state, 'cancelled');
    assert.deepEqual([final.get(third)!.state, final.get(third)!.error], ['failed', 'disk full']);
    assert.deepEqual(failed.map((j) => j.title), ['third']);
    // 50 progress calls within one window: far fewer pushes
    const pushed = updates.filter((u) => u.id === first);
    assert.ok(pushed.length < 10, `${pushed.length} pushes`);
    // the job ended inside a throttle window: its last progress still went out before the end
    assert.deepEqual(pushed.slice(-2).map((u) => [u.state, u.progress.fraction]), [['running', 1], ['done', 1]]);
  });
});

describe('graft serve', () => {
  test('prints exactly the URL line, answers with the token, and stops cleanly on SIGTERM', async () => {
    const dir = tempDir();
    const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'graft.js');
    const child = spawn(process.execPath, [bin, 'serve', '--port', '0', '--data', dir, '--token', 'serve-test-token'], { env: { ...process.env, GRAFT_GPU: 'off' } });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    const line = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d) => {
        stdout += d;
        if (stdout.includes('\n')) resolve(stdout.split('\n')[0]!);
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
    });
    const m = /^Graft is running at http:\/\/127\.0\.0\.1:(\d+)\/\?token=serve-test-token$/.exec(line);
    assert.ok(m, line);
    assert.notEqual(Number(m[1]), 0, 'the real port');
    const page = await fetch(`http://127.0.0.1:${m[1]}/`);
    assert.equal(page.status, 401);
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
    assert.equal(stdout, `${line}\n`, 'nothing else on stdout');
  });
});
