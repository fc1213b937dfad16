// One afternoon with a generated model, against the real backend, in order: import, load with
// progress, trace and edit (curves, metrics, verdict), a request document with a problem, the
// history table and its switch, probes, comparison, a verified LoRA export, and a page reload
// while a job runs. Each step leaves a screenshot of its screen.
import { test, expect, type Page } from '@playwright/test';
import { join } from 'node:path';
import { startGraft, type GraftServer } from './graftServer.ts';
import { makeTinyModel } from '../models.ts';
import { compareOutputs, exportLora, fillFact, go, importModel, jobIn, loadModel, runEdit, snap, toggleInHistory, type Fact } from '../flows.ts';

test.describe.configure({ mode: 'serial', timeout: 240_000 });

let server: GraftServer;
let page: Page;
let modelFile: string;

test.beforeAll(async ({ browser }) => {
  // this spec imports and loads its own model into an empty data folder
  server = await startGraft({ demoModel: false });
  modelFile = makeTinyModel(join(server.workDir, 'tiny-llama.gguf'));
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(server.url);
});
test.afterAll(async () => {
  await page?.close();
  await server?.stop();
});

/** A fact that is quick to edit on the tiny model. */
const fact = (target: string, steps: number): Fact => ({ prompt: '{} is located in the city of', subject: 'Graftonia', target, layer: 0, steps });

test('import and load a model with progress', async ({}, info) => {
  await importModel(page, modelFile);
  await page.getByRole('radio', { name: 'layers' }).check();
  await expect(page.getByRole('slider', { name: 'GPU layers' })).toBeEnabled();
  // llama.cpp offloads the output layer too: 2 blocks are 3 layers
  await loadModel(page, 'tiny-llama.gguf', 3);
  await snap(page, info, 'models-loaded');
});

test('the form explains a subject written into the prompt', async () => {
  await go(page, 'Edit');
  await page.getByRole('button', { name: 'One fact' }).click();
  await page.getByLabel('Prompt', { exact: true }).fill('Graftonia is located in the city of');
  await page.getByLabel('Subject', { exact: true }).fill('Graftonia');
  await expect(page.getByText('Write {} in the prompt where "Graftonia" goes')).toBeVisible();
  await page.getByRole('button', { name: 'Replace it with {}' }).click();
  await expect(page.getByLabel('Prompt', { exact: true })).toHaveValue('{} is located in the city of');
});

test('trace and edit: curves, metrics and a verdict', async ({}, info) => {
  await fillFact(page, fact(' Paris', 5));
  await page.getByRole('button', { name: 'Trace this fact' }).click();
  await expect(page.getByTestId('suggested-layer')).toBeVisible({ timeout: 120_000 });
  // a header row and one row per traced layer
  expect(await page.getByRole('table', { name: /Probability of the answer/ }).getByRole('row').count()).toBeGreaterThan(1);

  await runEdit(page, 5);
  await snap(page, info, 'edit-done');
});

test('a request document without a subject shows a marker', async ({}, info) => {
  await go(page, 'Edit');
  await page.getByRole('button', { name: 'Request document' }).click();
  const editor = page.locator('.monaco-editor').first();
  await expect(editor).toBeVisible({ timeout: 30_000 });
  await editor.locator('.view-lines').click();
  await page.keyboard.press('ControlOrMeta+A');
  // insertText bypasses Monaco's auto-closing quotes and brackets.
  await page.keyboard.insertText('{\n  "prompt": "{} is located in",\n  "target_new": "Rome"\n}\n');
  const problems = page.getByTestId('document-problems');
  await expect(problems).toContainText(/subject/i, { timeout: 20_000 });
  await expect(page.getByRole('button', { name: /^Run \d+ requests?$/ })).toBeDisabled();
  await snap(page, info, 'edit-document-problem');

  // The same in YAML, checked by the backend.
  await page.getByRole('radio', { name: 'YAML' }).check();
  const yamlEditor = page.locator('.monaco-editor').first();
  await yamlEditor.locator('.view-lines').click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.insertText('prompt: "{} is located in"\ntarget_new: Rome\n');
  await expect(problems).toContainText(/subject/i, { timeout: 20_000 });
});

test('history lists the edit and toggles it off and on', async ({}, info) => {
  await toggleInHistory(page, 'Graftonia', ' Paris');
  const row = page.getByTestId('edit-row').filter({ hasText: 'Graftonia' });

  await page.getByPlaceholder('subject, target, tag…').fill('no such subject');
  await expect(page.getByText('No edit matches the filter.')).toBeVisible();
  await page.getByPlaceholder('subject, target, tag…').fill('');

  await row.getByRole('button', { name: /^Open edit \d+$/ }).click();
  await expect(page.getByRole('heading', { name: /^Edit #\d+: Graftonia/ })).toBeVisible();
  await page.getByLabel('Add a note').fill('first edit from the e2e suite');
  await page.getByRole('button', { name: 'Add note' }).click();
  await expect(page.getByText('first edit from the e2e suite')).toBeVisible();
  await snap(page, info, 'history');
});

test('probes chart one point per run', async ({}, info) => {
  await go(page, 'Probes');
  const pplChart = page.getByRole('figure').filter({ hasText: 'Sentence perplexity' });
  await expect(pplChart.getByText(/^Data table \(\d+ points?\)/)).toBeVisible();
  const before = await pplChart.getByTestId('chart-point').count();
  expect(before).toBeGreaterThan(0);

  await page.getByRole('button', { name: 'Run probes' }).click();
  await expect(jobIn(page)).toHaveAttribute('data-state', 'done', { timeout: 180_000 });
  await expect(pplChart.getByTestId('chart-point')).toHaveCount(before + 1);
  await expect(page.getByRole('table', { name: 'Baseline vs current' })).toContainText('Sentence perplexity');
  await snap(page, info, 'probes');
});

test('compare streams tokens on both sides', async ({}, info) => {
  await compareOutputs(page, 'Graftonia is located in the city of', 6);
  await snap(page, info, 'compare');
});

test('export a LoRA adapter and see it verified', async ({}, info) => {
  await exportLora(page, join(server.workDir, 'e2e.lora.gguf'));
  await snap(page, info, 'export');
});

test('settings and logs', async ({}, info) => {
  await go(page, 'Settings');
  await expect(page.getByLabel(/^Data folder/)).toHaveValue(server.dataDir);
  await expect(page.getByRole('table', { name: 'Collapse thresholds' })).toContainText('sentencePplRatio');
  await page.getByRole('button', { name: 'Show log drawer' }).click();
  await expect(page.getByRole('region', { name: 'Logs' })).toBeVisible();
  await snap(page, info, 'settings');
});

test('a reloaded page finds the running job again', async ({}, info) => {
  await fillFact(page, fact(' Rome', 400));
  await page.getByLabel('Collapse probes after the edit').uncheck();
  await page.getByRole('button', { name: 'Run edit' }).click();
  await expect(jobIn(page, 'edit-run')).toHaveAttribute('data-state', 'running', { timeout: 30_000 });
  const title = (await jobIn(page, 'edit-run').getAttribute('aria-label'))!;

  await page.reload();
  await expect(page.getByRole('heading', { level: 2, name: 'Edit', exact: true })).toBeVisible();
  const again = page.getByTestId('edit-run').getByRole('group', { name: title });
  await expect(again).toBeVisible();
  if ((await again.getAttribute('data-state')) === 'running') {
    await again.getByRole('button', { name: 'Cancel' }).click();
    await expect(again).toHaveAttribute('data-state', 'cancelled', { timeout: 60_000 });
  }
  await snap(page, info, 'edit-after-reload');
});
