// The built app through `_electron.launch` with a throwaway userData folder: the empty state,
// then the workbench flow of the web specs (the same steps from ./flows.ts) in the app's own
// window: import a generated model, load it, edit, switch the edit off and on in History,
// compare, export a verified LoRA; and the stories260K flow when $GRAFT_TEST_MODELS has it.
// The Electron binary is downloaded lazily and that download fails on the development/CI
// machines, so every test here skips there, saying why, instead of failing.
import { test, expect, _electron, type ElectronApplication, type Page } from '@playwright/test';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { makeTinyModel, root, storiesModel } from './models.ts';
import {
  compareOutputs, exportLora, fillFact, importModel, loadModel, runEdit, screenNames, go, snap, toggleInHistory, type Fact,
} from './flows.ts';

const require = createRequire(import.meta.url);
// electron writes path.txt only once its binary is in place.
const hasElectron =
  !!process.env.ELECTRON_OVERRIDE_DIST_PATH ||
  existsSync(join(dirname(require.resolve('electron/package.json')), 'path.txt'));
const noElectron = 'no Electron binary on this machine (electron/path.txt missing and ELECTRON_OVERRIDE_DIST_PATH unset)';

test.skip(!hasElectron, noElectron);
test.describe.configure({ mode: 'serial', timeout: 240_000 });

let app: ElectronApplication;
let win: Page;
let userData: string;

test.beforeAll(async () => {
  if (!hasElectron) return;
  expect(existsSync(join(root, 'out/main/index.js')), 'run `npx electron-vite build` first').toBe(true);
  userData = mkdtempSync(join(tmpdir(), 'graft-e2e-'));
  // Chromium refuses to start as root without --no-sandbox (CI containers).
  const args = process.getuid?.() === 0 ? ['.', '--no-sandbox'] : ['.'];
  // these tests import their own models into an empty profile; the demo model's first run is in web/firstRun.spec.ts
  app = await _electron.launch({ args, cwd: root, env: { ...process.env, GRAFT_USER_DATA: userData, GRAFT_THREADS: process.env.GRAFT_THREADS ?? '1', GRAFT_DEMO_MODEL: 'none' } });
  win = await app.firstWindow();
});
test.afterAll(async () => {
  await app?.close();
  if (userData) rmSync(userData, { recursive: true, force: true });
});

test('window opens on the empty state with its own userData', { tag: '@electron' }, async ({}, info) => {
  await expect(win).toHaveTitle('Graft');
  await expect(win.getByText('No model is open yet.')).toBeVisible();
  expect(await app.evaluate(({ app }) => app.getPath('userData'))).toBe(userData);
  // the renderer sees the preload's bridge, not a WebSocket
  expect(await win.evaluate(() => typeof (window as { bridge?: unknown }).bridge)).toBe('object');
  await snap(win, info, 'electron-models-empty');
});

test('a generated model: import, load, edit, History switch, compare, verified LoRA', { tag: '@electron' }, async ({}, info) => {
  const model = makeTinyModel(join(userData, 'tiny-llama.gguf'));
  const fact: Fact = { prompt: '{} is located in the city of', subject: 'Graftonia', target: ' Paris', layer: 0, steps: 5 };
  await importModel(win, model);
  await loadModel(win, 'tiny-llama.gguf', 3);
  await fillFact(win, fact);
  await runEdit(win, fact.steps);
  await snap(win, info, 'electron-edit-done');
  await toggleInHistory(win, fact.subject, fact.target);
  await compareOutputs(win, 'Graftonia is located in the city of', 6);
  await exportLora(win, join(userData, 'e2e.lora.gguf'));
  for (const name of screenNames) {
    await go(win, name);
    await snap(win, info, `electron-${name.toLowerCase()}`);
  }
});

test('stories260K: import, load, edit Lily → park, History switch, compare, verified LoRA', { tag: '@electron' }, async ({}, info) => {
  const stories = storiesModel();
  test.skip('skip' in stories, 'skip' in stories ? stories.skip : '');
  const { file } = stories as { file: string };
  const fact: Fact = { prompt: '{} went to the', subject: 'Lily', target: ' park', layer: 1, steps: 8 };
  await importModel(win, file);
  await loadModel(win, 'stories260K-F32.gguf', 6);
  await fillFact(win, fact);
  await runEdit(win, fact.steps);
  await toggleInHistory(win, fact.subject, fact.target);
  await compareOutputs(win, 'Lily went to the', 6);
  await exportLora(win, join(userData, 'stories.lora.gguf'));
  await snap(win, info, 'electron-stories-export');
});
