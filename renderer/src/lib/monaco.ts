// Monaco loaded on first use (app-notes §3): the editor is most of the bundle, and the first
// screen must not wait for it. Only the JSON language service (schema markers) and YAML
// highlighting are pulled in; YAML is checked by the backend against the same schema.
type Monaco = typeof import('monaco-editor/editor');

/** Models named like this get the edit-request schema (json fileMatch globs match the suffix). */
export const REQUEST_SUFFIX = '.graft-request';

let loading: Promise<Monaco> | null = null;
let schemaSet = false;

export function loadMonaco(): Promise<Monaco> {
  return (loading ??= (async () => {
    const monaco = await import('monaco-editor/editor');
    await import('monaco-editor/features/register.all');
    await import('monaco-editor/languages/definitions/yaml/register');
    return monaco;
  })());
}

/** Gives JSON request documents the schema's markers; the schema comes from the backend once. */
export async function useRequestSchema(schema: unknown): Promise<void> {
  if (schemaSet || !schema) return;
  const { jsonDefaults } = await import('monaco-editor/languages/features/json/register');
  jsonDefaults.setDiagnosticsOptions({
    validate: true,
    enableSchemaRequest: false,
    schemaValidation: 'error',
    schemas: [{ uri: 'app://graft/schemas/edit-request.json', fileMatch: [`*${REQUEST_SUFFIX}.json`], schema }],
  });
  schemaSet = true;
}
