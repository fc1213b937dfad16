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
    // Monaco's default starts its editor worker from a blob: bootstrap, which the CSP's
    // worker-src 'self' refuses; workers bundled by Vite are same-origin files instead. Once
    // getWorker exists Monaco asks it for every worker, the JSON service's included.
    const [{ default: EditorWorker }, { default: JsonWorker }] = await Promise.all([
      import('monaco-editor/editor/editor.worker?worker'),
      import('monaco-editor/languages/features/json/json.worker?worker'),
    ]);
    self.MonacoEnvironment = {
      getWorker: (_id, label) => (label === 'json' ? new JsonWorker() : new EditorWorker()),
    };
    const monaco = await import('monaco-editor/editor');
    await import('monaco-editor/features/register.all');
    await import('monaco-editor/languages/definitions/yaml/register');
    return monaco;
  })());
}

/** Gives JSON request documents the schema's markers; the schema comes from the backend once. */
export async function useRequestSchema(schema: unknown): Promise<void> {
  if (schemaSet || !schema || typeof schema !== 'object') return;
  // A document holds one request or a list of them (as the backend's check accepts).
  const { $schema: _dialect, ...one } = schema as Record<string, unknown>;
  const document = { anyOf: [one, { type: 'array', items: one }] };
  const { jsonDefaults } = await import('monaco-editor/languages/features/json/register');
  jsonDefaults.setDiagnosticsOptions({
    validate: true,
    enableSchemaRequest: false,
    schemaValidation: 'error',
    schemas: [{ uri: 'app://graft/schemas/edit-request.json', fileMatch: [`*${REQUEST_SUFFIX}.json`], schema: document }],
  });
  schemaSet = true;
}
