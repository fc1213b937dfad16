// Two projects (app-notes §2): `web` drives Debian Chromium against the web mode and runs on the
// development/CI machines; `electron` launches the real app and skips where no binary exists.
// Not part of `npm test`: run `npx electron-vite build` first, then
//   npx playwright test -c e2e/playwright.config.ts --project electron
import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: '.',
  outputDir: '../test-results',
  reporter: [['list']],
  projects: [
    {
      name: 'web',
      // No web tests yet: the web server (electron/server/) and its `webServer` entry come later.
      testIgnore: /electron\.spec\.ts$/,
      use: {
        browserName: 'chromium',
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
