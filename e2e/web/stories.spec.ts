// The main flow on a real pretrained model, stories260K (a tiny llama trained on children's
// stories), when $GRAFT_TEST_MODELS has it: import, load, edit "Lily went to the" → " park" at
// layer 1, metrics and verdict, the History switch, base vs edited generation, a verified LoRA,
// and a screenshot of every screen. Skipped, saying why, without the model.
import { test, expect, type Page } from '@playwright/test';
import { join } from 'node:path';
import { startGraft, type GraftServer } from './graftServer.ts';
import { storiesModel } from '../models.ts';
import {
  compareOutputs, comparedText, exportLora, fillFact, go, importModel, loadModel, runEdit, screenNames, snap, toggleInHistory, type Fact,
} from '../flows.ts';

const stories = storiesModel();
test.skip('skip' in stories, 'skip' in stories ? stories.skip : '');
test.describe.configure({ mode: 'serial', timeout: 240_000 });

const fact: Fact = { prompt: '{} went to the', subject: 'Lily', target: ' park', layer: 1, steps: 8 };
let server: GraftServer;
let page: Page;

test.beforeAll(async ({ browser }) => {
  if ('skip' in stories) return;
  // this spec imports and loads its own model into an empty data folder
  server = await startGraft({ demoModel: false });
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(server.url);
});
test.afterAll(async () => {
  await page?.close();
  await server?.stop();
});

test('stories260K: import and load', async ({}, info) => {
  const { file } = stories as { file: string };
  await snap(page, info, 'stories-models-empty');
  await importModel(page, file);
  const row = page.getByRole('table', { name: 'Imported models' }).getByRole('row').filter({ has: page.getByTitle(file) });
  await expect(row).toContainText('yes');  // editable
  // 5 blocks and the output layer
  await loadModel(page, 'stories260K-F32.gguf', 6);
  await snap(page, info, 'stories-models-loaded');
});

test('stories260K: edit Lily → park at layer 1; metrics and verdict', async ({}, info) => {
  await fillFact(page, fact);
  await runEdit(page, fact.steps);
  const metrics = page.getByTestId('edit-run').getByRole('table', { name: 'Request metrics' });
  await expect(metrics).toContainText('Efficacy');
  await snap(page, info, 'stories-edit-done');
});

test('stories260K: the edit in History, off and on', async ({}, info) => {
  await toggleInHistory(page, fact.subject, fact.target);
  await snap(page, info, 'stories-history');
});

test('stories260K: base and edited continue the prompt side by side', async ({}, info) => {
  await compareOutputs(page, 'Lily went to the', 6);
  const base = await comparedText(page, 'base');
  const edited = await comparedText(page, 'edited');
  expect(base.length).toBeGreaterThan(0);
  expect(edited.length).toBeGreaterThan(0);
  info.annotations.push({ type: 'compare', description: `base: ${JSON.stringify(base)} · edited: ${JSON.stringify(edited)}` });
  await snap(page, info, 'stories-compare');
});

test('stories260K: a LoRA of the edit, verified', async ({}, info) => {
  await exportLora(page, join(server.workDir, 'stories-lily-park.lora.gguf'));
  await snap(page, info, 'stories-export');
});

test('stories260K: every screen, with the edit in place', async ({}, info) => {
  for (const name of screenNames) {
    await go(page, name);
    await snap(page, info, `stories-screen-${name.toLowerCase()}`);
  }
});
