// The sequential-editing curve on the Probes screen: a MEMIT request file run in two sequential
// batches with the curve through the Edit screen, then drawn from the history on the Probes
// screen (efficacy of all edits so far, sentence perplexity ÷ base, norm growth); a curve JSON
// file in the sequence benchmark's shape adds one line per method, and a file that is not a
// curve is refused with a message that says what was expected.
import { test, expect, type Page } from '@playwright/test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { threeFacts, withTinyModel, type GraftServer } from './graftServer.ts';
import { go, jobIn, snap } from '../flows.ts';

let server: GraftServer;
let page: Page;
withTinyModel(1200, (started) => ({ server, page } = started));

// what `npm run bench -- sequence --json` prints (bench/sequence.bench.ts), shortened
const benchOutput = {
  benchmark: 'sequence', model: 'stories260K-F32', threads: 1, edits: 4,
  curves: {
    rome: { seconds: 9.5, batchSize: 1, points: [1, 2, 3, 4].map((edits) => ({ edits, efficacy: 1 - edits / 10, pNew: 0.5, sentencePplRatio: 1 + edits / 20, normGrowth: 1 + edits / 100 })) },
    alphaedit: { seconds: 4.2, batchSize: 2, points: [2, 4].map((edits) => ({ edits, efficacy: 0.9, pNew: 0.6, sentencePplRatio: 1.02, normGrowth: null })) },
  },
};

function figure(title: string) {
  return page.getByTestId('sequential-runs').getByRole('figure').filter({ hasText: title });
}

test('a sequential MEMIT run with the curve is drawn from the history on the Probes screen', async ({}, info) => {
  test.setTimeout(240_000);
  const file = join(server.workDir, 'facts.jsonl');
  writeFileSync(file, `${threeFacts.map((r) => JSON.stringify(r)).join('\n')}\n`);
  await go(page, 'Edit');
  await page.getByRole('button', { name: 'Request file' }).click();
  await page.getByLabel('Path to a request file').fill(file);
  await page.getByLabel('Method').selectOption('memit');
  await page.getByLabel('Layers').fill('0-1');
  await page.getByRole('spinbutton', { name: 'v* steps' }).fill('2');
  await page.getByRole('spinbutton', { name: 'Statistics tokens' }).fill('128');
  await page.getByRole('spinbutton', { name: 'Batch size' }).fill('2');
  await page.getByRole('checkbox', { name: /^Sequential/ }).check();
  await expect(page.getByRole('checkbox', { name: /^Curve/ })).toBeChecked();
  await page.getByRole('button', { name: 'Run the file' }).click();
  await expect(jobIn(page, 'edit-run')).toHaveAttribute('data-state', 'done', { timeout: 200_000 });

  await go(page, 'Probes');
  const section = page.getByTestId('sequential-runs');
  await expect(section.getByLabel('Run')).toContainText(/#\d+ memit: 3 requests in batches of 2, sequential \(facts\.jsonl\), done/);
  await expect(section.getByTestId('run-summary')).toContainText('2 of 2 batches done, 2 measured');
  for (const title of ['Efficacy of all edits so far', 'Sentence perplexity ÷ base', 'Norm growth']) {
    const chart = figure(title);
    await expect(chart.locator('canvas').first()).toBeVisible();
    await chart.getByText(/^Data table/).click();
    await expect(chart.getByText(/^Data table \(2 points\)/)).toBeVisible();
    await expect(chart.getByTestId('chart-point').first().locator('td').first()).toHaveText('2');
    await expect(chart.getByTestId('chart-point').last().locator('td').first()).toHaveText('3');
  }
  await expect(figure('Sentence perplexity ÷ base')).toContainText(/Thresholds: degraded 1\.1 · collapsed 2/);
  await snap(page, info, 'sequential-run-curve');
});

test('a curve JSON file adds one line per method; a file that is not a curve is refused', async ({}, info) => {
  const section = page.getByTestId('sequential-runs');
  const input = section.getByLabel('Curve JSON file');
  await input.setInputFiles({ name: 'sequence.json', mimeType: 'application/json', buffer: Buffer.from(`${JSON.stringify(benchOutput)}\n`) });
  const efficacy = figure('Efficacy of all edits so far');
  // the run's edits (2, 3) and the file's (1…4) on one axis, a column per line
  await expect(efficacy.getByText(/^Data table \(4 points\)/)).toBeVisible();
  await expect(efficacy.getByRole('columnheader')).toHaveText(['edits', /^#\d+ memit$/, 'rome', 'alphaedit']);
  await expect(efficacy.getByTestId('chart-point').nth(0)).toHaveText(/^1\s*—\s*0\.9\s*—$/);

  // only the file: the run set to none
  await section.getByLabel('Run').selectOption({ label: 'none (only a loaded file)' });
  await expect(efficacy.getByRole('columnheader')).toHaveText(['edits', 'rome', 'alphaedit']);
  await expect(figure('Norm growth').getByRole('columnheader')).toHaveText(['edits', 'rome', 'alphaedit']);
  await snap(page, info, 'sequential-file-curves');

  await input.setInputFiles({ name: 'edit.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify({ edit: 4, workspace: 'w', method: 'rome', verdict: 'ok' })) });
  await expect(section.getByRole('alert')).toHaveText(
    /^edit\.json: this is not a curve JSON: it has neither "curves" .* nor "curve" .*; expected the output of npm run bench -- sequence --json or graft edit --curve --json$/);
  await expect(section.getByRole('figure')).toHaveCount(0);
});
