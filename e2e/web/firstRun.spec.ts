// A fresh data folder: the shipped demo model imported, loaded and ready with facts to edit;
// without it, the empty state, clear errors for bad paths, the token requirement, and every
// screen reachable from the keyboard alone.
import { test, expect } from '@playwright/test';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startGraft, type GraftServer } from './graftServer.ts';
import { root } from '../models.ts';
import { go, jobIn, screenNames, snap } from '../flows.ts';

const demoDir = join(root, 'demo-model');
const demoFile = 'graft-demo-facts.f32.gguf';

test.describe('a fresh install', () => {
  test.skip(!existsSync(join(demoDir, demoFile)), `the demo model is not in ${demoDir}; \`graft demo-model --out demo-model\` builds a stand-in`);

  let server: GraftServer;
  test.beforeAll(async () => {
    server = await startGraft();
  });
  test.afterAll(async () => {
    await server?.stop();
  });

  test('opens with the demo model loaded, and a demo fact fills the edit form', async ({ page }, info) => {
    await page.goto(server.url);
    const row = page.getByRole('table', { name: 'Imported models' }).getByRole('row').filter({ hasText: demoFile });
    await expect(row).toContainText('Demo');
    await expect(row).toContainText('(loaded)');
    await expect(page.getByRole('status', { name: 'Loaded model' })).toContainText(demoFile);
    await expect(jobIn(page)).toHaveAttribute('data-state', 'done');
    await snap(page, info, 'models-demo');

    await go(page, 'Edit');
    const demo = page.getByRole('region', { name: 'Demo facts' });
    await expect(demo).toBeVisible();
    // keyboard only: the second fact, then the button
    await demo.getByLabel('Demo fact').focus();
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Tab');
    await expect(demo.getByRole('button', { name: 'Use this demo fact' })).toBeFocused();
    await page.keyboard.press('Enter');

    const prompt = await page.getByLabel('Prompt', { exact: true }).inputValue();
    const subject = await page.getByLabel('Subject', { exact: true }).inputValue();
    const targetNew = await page.getByLabel('New target', { exact: true }).inputValue();
    const targetTrue = await page.getByLabel('True target (optional)').inputValue();
    expect(prompt).toContain('{}');
    expect(await demo.getByLabel('Demo fact').locator('option:checked').textContent()).toContain(`${prompt.replace('{}', subject)}${targetTrue}`);
    // the true target is what the demo world says about the subject, the new one is not
    const truth = JSON.parse(readFileSync(join(demoDir, 'ground-truth.json'), 'utf8')) as { facts: { subject: string; object: string }[] };
    expect(truth.facts.some((f) => f.subject === subject && ` ${f.object}` === targetTrue)).toBe(true);
    expect(targetNew.trim()).not.toBe('');
    expect(targetNew).not.toBe(targetTrue);
    await expect(page.getByLabel('Paraphrases')).not.toHaveValue('');
    await expect(page.getByLabel('Neighbours')).not.toHaveValue('');
    // ROME's layer is where causal tracing found the demo model's facts when it was built
    const report = JSON.parse(readFileSync(join(demoDir, 'training-report.json'), 'utf8')) as { editLayer: { layer: number } };
    await expect(page.getByLabel('Layer', { exact: true })).toHaveValue(String(report.editLayer.layer));
    await snap(page, info, 'edit-demo-fact');
  });
});

test.describe('a data folder without models', () => {
  let server: GraftServer;
  test.beforeAll(async () => {
    server = await startGraft({ demoModel: false });
  });
  test.afterAll(async () => {
    await server?.stop();
  });

  test('with no model, the Models screen shows how to open one', async ({ page }, info) => {
    await page.goto(server.url);
    await expect(page).toHaveTitle('Graft');
    await expect(page.getByText('No model is open yet.')).toBeVisible();
    await expect(page.getByLabel('Path to a .gguf file')).toBeVisible();
    await expect(page.getByRole('status', { name: 'Loaded model' })).toHaveText(/no model loaded/);
    await snap(page, info, 'models-empty');

    // Screens that need a model say so instead of failing.
    await page.getByRole('navigation', { name: 'Screens' }).getByRole('button', { name: 'Edit', exact: true }).click();
    await expect(page.getByText('No model is loaded.')).toBeVisible();
  });

  test('importing a missing file says so', async ({ page }) => {
    await page.goto(server.url);
    await page.getByLabel('Path to a .gguf file').fill(join(server.workDir, 'does-not-exist.gguf'));
    await page.getByRole('button', { name: 'Import' }).click();
    await expect(page.getByRole('alert').filter({ hasText: 'does-not-exist.gguf' })).toBeVisible();
    await expect(page.getByText('No model is open yet.')).toBeVisible();
  });

  test('the page is refused without the token', async ({ page }) => {
    const bare = new URL(server.url);
    bare.search = '';
    const response = await page.goto(bare.toString());
    expect(response?.status()).toBe(401);
  });

  test('keyboard alone reaches every screen', async ({ page }) => {
    await page.goto(server.url);
    await expect(page.getByText('No model is open yet.')).toBeVisible();
    const nav = page.getByRole('navigation', { name: 'Screens' });
    // Tab from the top of the page until the first navigation button has the focus.
    for (let i = 0; i < 30; i++) {
      await page.keyboard.press('Tab');
      if (await nav.getByRole('button', { name: 'Models', exact: true }).evaluate((el) => el === document.activeElement)) break;
    }
    for (const [i, name] of screenNames.entries()) {
      const button = nav.getByRole('button', { name, exact: true });
      await expect(button).toBeFocused();
      await page.keyboard.press('Enter');
      await expect(button).toHaveAttribute('aria-current', 'page');
      await expect(page.getByRole('heading', { level: 2, name, exact: true })).toBeVisible();
      if (i < screenNames.length - 1) await page.keyboard.press('Tab');
    }
    // The log drawer toggle follows the screens.
    await page.keyboard.press('Tab');
    await expect(nav.getByRole('button', { name: 'Show logs' })).toBeFocused();
    await page.keyboard.press('Enter');
    await expect(page.getByRole('region', { name: 'Logs' })).toBeVisible();
  });
});
