// `graft logits` and `graft keys`: the engine's numbers as JSON, so it can be checked from outside.
import { openLlamaSession, rows, tokenizeNonEmpty } from '../../core/engine/llamaSession.ts';
import { graphLogits } from './graph.ts';
import { loadNative } from '../../core/native/binding.ts';
import { integerOption, loraOptions, parseCommandArgs, threadsOption } from '../args.ts';
import { UsageError } from '../errors.ts';

export const logitsUsage = 'graft logits MODEL --text T [--engine llama|graph] [--lora FILE[@SCALE] ...] [--threads N] [--json]';
export const keysUsage = 'graft keys MODEL --text T --layer L [--threads N] [--json]';

function modelArg(positionals: string[], usage: string): string {
  if (positionals.length !== 1) throw new UsageError(`give exactly one model file\nusage: ${usage}`);
  return positionals[0]!;
}

export async function runLogits(argv: string[]): Promise<void> {
  const { values, positionals } = parseCommandArgs(argv, {
    text: { type: 'string' }, engine: { type: 'string', default: 'llama' }, threads: { type: 'string' }, json: { type: 'boolean', default: false },
    lora: { type: 'string', multiple: true },
  }, logitsUsage);
  const model = modelArg(positionals, logitsUsage);
  if (values.text === undefined) throw new UsageError(`--text is required\nusage: ${logitsUsage}`);
  if (values.engine !== 'llama' && values.engine !== 'graph') throw new UsageError(`--engine must be llama or graph, got '${values.engine}'\nusage: ${logitsUsage}`);
  const lora = loraOptions(values.lora);
  const threads = threadsOption(values.threads);
  if (values.engine === 'graph') return graphLogits(model, values.text, lora, threads);
  const native = await loadNative();
  const session = await openLlamaSession(native, model, { threads, lora });
  try {
    const tokens = tokenizeNonEmpty(session, values.text);
    const result = await session.evaluate(tokens);
    process.stdout.write(`${JSON.stringify({ engine: 'llama', lora, tokens: Array.from(tokens), logprobs: rows(result.logprobs!, result.nVocab) })}\n`);
  } finally {
    session.dispose();
  }
}

export async function runKeys(argv: string[]): Promise<void> {
  const { values, positionals } = parseCommandArgs(argv, {
    text: { type: 'string' }, layer: { type: 'string' }, threads: { type: 'string' }, json: { type: 'boolean', default: false },
  }, keysUsage);
  const model = modelArg(positionals, keysUsage);
  if (values.text === undefined) throw new UsageError(`--text is required\nusage: ${keysUsage}`);
  const layer = integerOption(values.layer, '--layer');
  const threads = threadsOption(values.threads);
  const native = await loadNative();
  const session = await openLlamaSession(native, model, { threads });
  try {
    const tokens = tokenizeNonEmpty(session, values.text);
    const result = await session.evaluate(tokens, { keyLayers: [layer], logprobs: false });
    const keys = result.keys[String(layer)]!;
    process.stdout.write(`${JSON.stringify({ layer, tokens: Array.from(tokens), keys: rows(keys, keys.length / result.nTokens) })}\n`);
  } finally {
    session.dispose();
  }
}
