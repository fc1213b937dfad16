// A fresh data folder: the empty state, clear errors for bad paths, the token requirement, and
// every screen reachable from the keyboard alone.
import { test, expect } from '@playwright/test';
import { join } from 'node:path';
import { startGraft, type GraftServer } from './graftServer.ts';
import { screenNames, snap } from '../flows.ts';

let server: GraftServer;
test.beforeAll(async () => {
  server = await startGraft();
});
test.afterAll(async () => {
  await server?.stop();
});

test('first run shows how to open a model', async ({ page }, info) => {
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
