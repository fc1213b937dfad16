// What Vite adds to import.meta in the bundles it builds (electron-vite's out/main). Under tsx
// neither exists, so code reads `import.meta.env` first and calls `glob` only when it is set;
// Vite replaces both at build time, which is why they must be written out literally.
interface ImportMeta {
  readonly env?: { readonly MODE: string };
  glob<T>(pattern: string, options: { query: '?raw'; import: 'default'; eager: true }): Record<string, T>;
}
