// Page helpers shared by the web specs: navigation the way a user does it, and one screenshot
// per screen kept as a test artefact.
import { expect, type Page, type TestInfo } from '@playwright/test';

export const screenNames = ['Models', 'Edit', 'History', 'Probes', 'Compare', 'Export', 'Settings'] as const;
export type ScreenName = (typeof screenNames)[number];

export async function go(page: Page, name: ScreenName): Promise<void> {
  await page.getByRole('navigation', { name: 'Screens' }).getByRole('button', { name, exact: true }).click();
  await expect(page.getByRole('heading', { level: 2, name, exact: true })).toBeVisible();
}

export async function snap(page: Page, info: TestInfo, name: string): Promise<void> {
  await page.screenshot({ path: info.outputPath(`${name}.png`), fullPage: true });
}

/** The job panel of a screen region: every long operation renders one (role group, "Job: …"). */
export function jobIn(page: Page, region?: string) {
  const scope = region ? page.getByTestId(region) : page.locator('#main');
  return scope.getByRole('group', { name: /^Job: / }).first();
}
