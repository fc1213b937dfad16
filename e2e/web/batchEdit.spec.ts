// A MEMIT batch through the Edit screen on a generated model: three requests written in the
// request document, a combination the batch planner refuses (and its message), then one run with
// the z curve, a per-request results table, the summary line and the efficacy curve; History
// lists the batch as one edit of three requests and opens it with its per-request results.
import { test, expect, type Page } from '@playwright/test';
import { join } from 'node:path';
import { threeFacts, withTinyModel, type GraftServer } from './graftServer.ts';
import { go, jobIn, snap } from '../flows.ts';

let server: GraftServer;
let page: Page;
withTinyModel(1000, (started) => ({ server, page } = started));

async function writeDocument(text: string): Promise<void> {
  await page.getByRole('button', { name: 'Request document' }).click();
  const editor = page.locator('.monaco-editor').first();
  await expect(editor).toBeVisible({ timeout: 30_000 });
  await editor.locator('.view-lines').click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.insertText(text);
  // Monaco may still have closed the opening bracket after the cursor: drop whatever follows
  await page.keyboard.press('Shift+ControlOrMeta+End');
  await page.keyboard.press('Delete');
}

test('a MEMIT batch of three: refused combination, then results, curve and history', async ({}, info) => {
  test.setTimeout(180_000);
  await go(page, 'Edit');
  await writeDocument(JSON.stringify(threeFacts, null, 2));
  const run = page.getByRole('button', { name: 'Run 3 requests' });
  await expect(run).toBeEnabled({ timeout: 20_000 });

  await page.getByLabel('Method').selectOption('memit');
  await page.getByLabel('Layers').fill('0-1');
  await page.getByRole('spinbutton', { name: 'v* steps' }).fill('3');
  // few sampled tokens for the second moments: the tiny model needs no more, and it keeps this quick
  await page.getByRole('spinbutton', { name: 'Statistics tokens' }).fill('128');

  // batches of 2 out of 3 without "sequential": the backend's planner says what to change
  await page.getByRole('spinbutton', { name: 'Batch size' }).fill('2');
  await run.click();
  await expect(page.locator('#main').getByRole('alert')).toContainText('batches of 2 out of 3 requests need --sequential');
  await page.getByRole('spinbutton', { name: 'Batch size' }).fill('');

  await run.click();
  const panel = page.getByTestId('edit-run');
  await expect(jobIn(page, 'edit-run')).toHaveAttribute('data-state', 'done', { timeout: 150_000 });
  await expect(panel.getByRole('heading', { name: 'MEMIT: 3 requests in 1 batch' })).toBeVisible();
  const results = panel.getByRole('table', { name: 'Request results' });
  await expect(results.getByTestId('request-result')).toHaveCount(3);
  await expect(results).toContainText('Graftonia is located in the city of');
  await expect(results).toContainText('Lilliput');
  await expect(panel.getByTestId('results-summary')).toContainText(/Summary over 3 requests: efficacy [\d.]+/);
  await expect(panel.getByTestId('batch-list')).toContainText(/Batch 1: edit #\d+, requests 1, 2, 3/);
  // the z optimisation: at most 3 steps for each of the 3 requests
  await panel.getByText(/^Data table/).first().click();
  const steps = await panel.getByRole('figure').first().getByTestId('chart-point').count();
  expect(steps).toBeGreaterThan(0);
  expect(steps).toBeLessThanOrEqual(9);
  await expect(panel.getByRole('figure').filter({ hasText: 'Efficacy of all edits so far' }).getByText(/^Data table \(1 point\)/)).toBeVisible();
  await snap(page, info, 'batch-edit-done');

  await go(page, 'History');
  const row = page.getByTestId('edit-row').filter({ hasText: 'Graftonia' });
  await expect(row).toHaveCount(1);
  await expect(row).toContainText('memit');
  await expect(row.getByTestId('request-count')).toContainText('3 requests');
  await row.getByRole('button', { name: /^Open edit \d+$/ }).click();
  await expect(page.getByRole('heading', { name: /^Edit #\d+: memit batch of 3 requests/ })).toBeVisible();
  await expect(page.getByRole('table', { name: "Results of this edit's requests" }).getByTestId('request-result')).toHaveCount(3);
  await expect(page.getByTestId('results-summary')).toContainText('Summary over 3 requests');
  await snap(page, info, 'batch-edit-history');
});

test('a request file that is not there: the backend names it', async () => {
  await go(page, 'Edit');
  await page.getByRole('button', { name: 'Request file' }).click();
  const missing = join(server.workDir, 'no-such-requests.jsonl');
  await page.getByLabel('Path to a request file').fill(missing);
  await page.getByRole('button', { name: 'Run the file' }).click();
  await expect(page.locator('#main').getByRole('alert')).toContainText(`${missing}: file not found; check the path`);
});
