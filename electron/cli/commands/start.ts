// The workbench UI arrives with issue G6; until then `npm start` explains what exists.
export async function runStart(helpText: string): Promise<void> {
  process.stdout.write([
    'The Graft workbench app is not built yet (issue G6). What works today is the command line:',
    '',
    helpText,
    '',
    'Plan for the app: Electron where it can start; elsewhere a web mode that serves the same',
    'renderer on http://127.0.0.1 with a random access token (graft serve).',
    '',
  ].join('\n'));
}
