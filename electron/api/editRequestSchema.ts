// The edit request as JSON Schema: one definition for batch files, the app's request editor
// (Monaco validates against it) and the CLI. electron/core/edits/request.ts parses it.
/** JSON Schema of the accepted request forms, for batch files and the app's editor. */
export const editRequestSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'Graft edit request',
  oneOf: [
    {
      type: 'object',
      required: ['prompt', 'subject', 'target_new'],
      properties: {
        prompt: { type: 'string', description: 'the prompt with {} where the subject goes' },
        subject: { type: 'string', minLength: 1 },
        target_new: { type: 'string', minLength: 1 },
        target_true: { type: 'string' },
        paraphrase_prompts: { type: 'array', items: { type: 'string' } },
        neighborhood_prompts: { type: 'array', items: { type: 'string' } },
        generation_prompts: { type: 'array', items: { type: 'string' } },
      },
    },
    {
      type: 'object',
      description: 'a CounterFact record',
      required: ['requested_rewrite'],
      properties: {
        requested_rewrite: {
          type: 'object',
          required: ['prompt', 'subject', 'target_new'],
          properties: {
            prompt: { type: 'string' },
            subject: { type: 'string' },
            target_new: { type: 'object', required: ['str'], properties: { str: { type: 'string' } } },
            target_true: { type: 'object', properties: { str: { type: 'string' } } },
          },
        },
        paraphrase_prompts: { type: 'array', items: { type: 'string' } },
        neighborhood_prompts: { type: 'array', items: { type: 'string' } },
        generation_prompts: { type: 'array', items: { type: 'string' } },
      },
    },
  ],
} as const;

