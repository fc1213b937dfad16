// Bad input on a loaded model, each answered by a clear message in the page: the backend's own
// words from the edit form (a subject that is not in the prompt, an empty target) and from the
// export form (a path that exists). A missing model file is in firstRun.spec.ts.
import { test, expect, type Page } from '@playwright/test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { withTinyModel, type GraftServer } from './graftServer.ts';
import { go, snap } from '../flows.ts';

let server: GraftServer;
let page: Page;
withTinyModel(900, (started) => ({ server, page } = started));

/** The fact form filled, then run; the error under the form is returned. */
async function runFact(prompt: string, subject: string, target: string) {
  await go(page, 'Edit');
  await page.getByRole('button', { name: 'One fact' }).click();
  await page.getByLabel('Prompt', { exact: true }).fill(prompt);
  await page.getByLabel('Subject', { exact: true }).fill(subject);
  await page.getByLabel('New target', { exact: true }).fill(target);
  await page.getByRole('button', { name: 'Run edit' }).click();
  return page.locator('#main').getByRole('alert');
}

test('a subject that is not in the prompt: the backend says which and how to fix it', async ({}, info) => {
  const alert = await runFact('Graftonia is located in the city of', 'Atlantis', ' Paris');
  await expect(alert).toHaveText(`the subject 'Atlantis' does not occur in the prompt "Graftonia is located in the city of"; mark its place with {} or fix the spelling`);
  // the form's own hint is there as well, and no edit started
  await expect(page.getByText('The prompt needs {} where the subject goes.')).toBeVisible();
  await expect(page.getByTestId('edit-run')).toHaveCount(0);
  await snap(page, info, 'edit-subject-not-in-prompt');
});

test('a subject spelled out in the prompt is accepted without {} (the backend marks it)', async () => {
  // only the check that the request is sound: a 1-step edit is not needed to see it accepted
  const alert = await runFact('Graftonia is located in the city of', 'Graftonia', '');
  await expect(alert).toContainText('target_new');
  await expect(alert).not.toContainText('does not occur');
});

test('an empty target: the backend names the field', async ({}, info) => {
  const alert = await runFact('{} is located in the city of', 'Graftonia', '   ');
  await expect(alert).toHaveText('request.target_new: is empty or only whitespace');
  await expect(page.getByTestId('edit-run')).toHaveCount(0);
  await snap(page, info, 'edit-empty-target');
});

test('an export to a path that exists is refused and the file is left alone', async ({}, info) => {
  const existing = join(server.workDir, 'already-there.lora.gguf');
  writeFileSync(existing, 'not to be overwritten');
  await go(page, 'Export');
  await page.getByRole('radio', { name: /LoRA adapter/ }).check();
  await page.getByLabel('Output path').fill(existing);
  await page.getByRole('button', { name: 'Start export' }).click();
  await expect(page.locator('#main').getByRole('alert')).toHaveText(`${existing} exists; choose another output path (exports never overwrite a file)`);
  await expect(page.getByRole('table', { name: 'Past exports' })).toContainText('No exports yet.');
  await snap(page, info, 'export-path-exists');
});

test('an export into a folder that does not exist is refused', async () => {
  const nowhere = join(server.workDir, 'no-such-folder', 'out.lora.gguf');
  await go(page, 'Export');
  await page.getByLabel('Output path').fill(nowhere);
  await page.getByRole('button', { name: 'Start export' }).click();
  await expect(page.locator('#main').getByRole('alert')).toContainText(`the folder ${join(server.workDir, 'no-such-folder')} does not exist`);
});
