// Two projects (app-notes §2): `web` drives Debian Chromium against the real web mode
// (`graft serve`, started by the specs in e2e/web/ with a throwaway data folder) and runs on the
// development/CI machines; `electron` launches the real app and skips where no binary exists.
// Build first (`npx electron-vite build`), then
//   npx playwright test -c e2e/playwright.config.ts --project web
//   npx playwright test -c e2e/playwright.config.ts --project electron
import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: '.',
  outputDir: '../test-results',
  reporter: [['list']],
  // ggml runs single-threaded here and the machines have 2 cores: one worker, generous timeouts.
  workers: 1,
  timeout: 120_000,
  expect: { timeout: 15_000 },
  projects: [
    {
      name: 'web',
      testMatch: /web\/.*\.spec\.ts$/,
      use: {
        browserName: 'chromium',
        screenshot: 'only-on-failure',
        // Playwright's own browsers cannot be downloaded here; Debian's chromium package can.
        launchOptions: {
          executablePath: '/usr/bin/chromium',
          args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check'],
        },
      },
    },
    {
      name: 'electron',
      testMatch: /electron\.spec\.ts$/,
      grep: /@electron/,
    },
  ],
});
