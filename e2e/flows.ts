// The page-level steps of the workbench, shared by the web specs (Chromium against `graft serve`)
// and the Electron spec (the app's own window): the same clicks and the same expectations, so the
// two projects test one flow. Everything here takes a Playwright Page, which both give.
import { expect, type Page, type TestInfo } from '@playwright/test';

export const screenNames = ['Models', 'Edit', 'History', 'Probes', 'Compare', 'Export', 'Settings'] as const;
export type ScreenName = (typeof screenNames)[number];

export async function go(page: Page, name: ScreenName): Promise<void> {
  await page.getByRole('navigation', { name: 'Screens' }).getByRole('button', { name, exact: true }).click();
  await expect(page.getByRole('heading', { level: 2, name, exact: true })).toBeVisible();
}

/** A full-page screenshot kept as a test artefact: written to the test's output folder and attached to the report. */
export async function snap(page: Page, info: TestInfo, name: string): Promise<void> {
  const file = info.outputPath(`${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  await info.attach(name, { path: file, contentType: 'image/png' });
}

/** The job panel of a screen region: every long operation renders one (role group, "Job: …"). */
export function jobIn(page: Page, region?: string) {
  const scope = region ? page.getByTestId(region) : page.locator('#main');
  return scope.getByRole('group', { name: /^Job: / }).first();
}

/** Models: import a GGUF by path; its row appears with the architecture read from the file. */
export async function importModel(page: Page, file: string, architecture = 'llama'): Promise<void> {
  await go(page, 'Models');
  await page.getByLabel('Path to a .gguf file').fill(file);
  await page.getByRole('button', { name: 'Import' }).click();
  const table = page.getByRole('table', { name: 'Imported models' });
  await expect(table.getByTitle(file)).toBeVisible();
  await expect(table.getByRole('row').filter({ has: page.getByTitle(file) })).toContainText(architecture);
}

/**
 * Models: load the model chosen in the load panel (the last imported) with automatic GPU
 * offload; the load job ends and the status pill names the file. `totalLayers` is llama.cpp's
 * count (blocks + output layer).
 */
export async function loadModel(page: Page, fileName: string, totalLayers?: number): Promise<void> {
  await go(page, 'Models');
  await expect(page.getByTestId('load-estimate')).toContainText('Estimate for');
  await page.getByRole('radio', { name: 'auto' }).check();
  await page.getByRole('button', { name: /^Load( anyway)?$/ }).click();
  const job = jobIn(page);
  await expect(job).toBeVisible();
  await expect(job).toHaveAttribute('data-state', 'done', { timeout: 90_000 });
  const pill = page.getByRole('status', { name: 'Loaded model' });
  await expect(pill).toContainText(fileName);
  if (totalLayers !== undefined) await expect(pill).toContainText(new RegExp(`GPU layers \\d+/${totalLayers}`));
}

export interface Fact {
  /** with {} where the subject goes */
  prompt: string;
  subject: string;
  target: string;
  layer: number;
  steps: number;
}

/** Edit: the one-fact form, with the second-moment adjustment off (it needs a corpus pass first). */
export async function fillFact(page: Page, fact: Fact): Promise<void> {
  await go(page, 'Edit');
  await page.getByRole('button', { name: 'One fact' }).click();
  await page.getByLabel('Prompt', { exact: true }).fill(fact.prompt);
  await page.getByLabel('Subject', { exact: true }).fill(fact.subject);
  await page.getByLabel('New target', { exact: true }).fill(fact.target);
  await page.getByRole('spinbutton', { name: 'Layer' }).fill(String(fact.layer));
  await page.getByRole('spinbutton', { name: 'v* steps' }).fill(String(fact.steps));
  await page.getByLabel('Second-moment adjustment (C⁻¹)').uncheck();
}

/** Edit: run the filled fact to its end; the v* curve (at most `steps` points), the request metrics and a verdict show. */
export async function runEdit(page: Page, steps: number): Promise<void> {
  await page.getByRole('button', { name: 'Run edit' }).click();
  const run = page.getByTestId('edit-run');
  await expect(jobIn(page, 'edit-run')).toHaveAttribute('data-state', 'done', { timeout: 180_000 });
  await run.getByText(/^Data table/).first().click();
  await expect(run.getByTestId('chart-point').first()).toBeVisible();
  // the optimisation may stop early once the target is reached
  const points = await run.getByRole('figure').first().getByTestId('chart-point').count();
  expect(points).toBeGreaterThan(0);
  expect(points).toBeLessThanOrEqual(steps);
  await expect(run.getByTestId('edit-verdict')).toContainText(/ok|degraded|collapsed/);
  await expect(run.getByRole('table', { name: 'Request metrics' })).toContainText('Efficacy');
}

/** History: the edit's row, switched off and on again through its switch. */
export async function toggleInHistory(page: Page, subject: string, target: string): Promise<void> {
  await go(page, 'History');
  const row = page.getByTestId('edit-row').filter({ hasText: subject });
  await expect(row).toHaveCount(1);
  await expect(row).toContainText(target.trim());
  const toggle = row.getByRole('switch');
  await expect(toggle).toBeChecked();
  await toggle.uncheck();
  await expect(toggle).not.toBeChecked();
  await expect(row).toContainText('off');
  await toggle.check();
  await expect(toggle).toBeChecked();
}

/** Compare: base and edited generate side by side, both stream tokens, hovering/focus shows the top-k. */
export async function compareOutputs(page: Page, prompt: string, maxTokens: number): Promise<void> {
  await go(page, 'Compare');
  await page.getByLabel('Prompt', { exact: true }).fill(prompt);
  await page.getByRole('spinbutton', { name: 'Max tokens' }).fill(String(maxTokens));
  await page.getByRole('button', { name: 'Generate both' }).click();
  await expect(page.getByTestId('tokens-base').locator('.tok').first()).toBeVisible({ timeout: 60_000 });
  await expect(page.getByTestId('tokens-edited').locator('.tok').first()).toBeVisible({ timeout: 60_000 });
  await expect(jobIn(page)).toHaveAttribute('data-state', 'done', { timeout: 120_000 });
  await page.getByTestId('tokens-base').locator('.tok').first().focus();
  await expect(page.getByRole('tooltip')).toContainText('p =');
}

/** The tokens one side of the comparison generated, in order. */
export async function comparedText(page: Page, side: 'base' | 'edited'): Promise<string> {
  return (await page.getByTestId(`tokens-${side}`).locator('.tok').allTextContents()).join('');
}

/** Export: a LoRA adapter of the enabled edits to `out`, loaded back and verified. */
export async function exportLora(page: Page, out: string): Promise<void> {
  await go(page, 'Export');
  await page.getByRole('radio', { name: /LoRA adapter/ }).check();
  await page.getByLabel('Output path').fill(out);
  await page.getByRole('button', { name: 'Start export' }).click();
  await expect(jobIn(page)).toHaveAttribute('data-state', 'done', { timeout: 120_000 });
  await expect(page.getByTestId('export-result')).toContainText('Verified');
  await expect(page.getByRole('table', { name: 'Past exports' })).toContainText(out);
}
