// The SQL of migrations/, carried inside the bundle. out/main and the packaged app.asar have
// no migrations/ folder beside them (and must never read the checkout's), so electron-vite
// inlines the files' text here at build time; under tsx (tests, CLI, web mode) there is no
// bundle and migrate.ts reads the folder itself.

/** File name → SQL, or null when running from source. */
export const embeddedMigrationFiles: Record<string, string> | null = import.meta.env
  ? Object.fromEntries(Object.entries(import.meta.glob<string>('../../../migrations/*.sql', { query: '?raw', import: 'default', eager: true }))
    .map(([file, sql]) => [file.slice(file.lastIndexOf('/') + 1), sql]))
  : null;
