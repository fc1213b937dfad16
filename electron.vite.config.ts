// Build of the Electron shell and the Svelte renderer (app-notes §1).
// Vite 8 bundles with Rolldown; `rolldownOptions` is its name for what app-notes spells
// `rollupOptions` (a deprecated alias in Vite 8 that still builds the same output).
import { resolve } from 'node:path';
import { defineConfig } from 'electron-vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

export default defineConfig({
  // Dependencies stay external (electron-vite's default, spelled out because node-llama-cpp
  // ships per-platform binaries and must never be bundled).
  main: {
    build: {
      externalizeDeps: true,
      rolldownOptions: { input: { index: resolve('electron/main/index.ts') } },
    },
  },
  // Sandboxed preloads cannot be ESM, and "type": "module" would make electron-vite emit .mjs.
  preload: {
    build: {
      externalizeDeps: true,
      rolldownOptions: {
        input: { index: resolve('electron/preload/index.ts') },
        output: { format: 'cjs', entryFileNames: '[name].cjs' },
      },
    },
  },
  renderer: {
    root: 'renderer',
    plugins: [svelte()],
    build: { rolldownOptions: { input: resolve('renderer/index.html') } },
  },
});
