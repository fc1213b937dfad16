// `graft logits` and `graft keys`: the engine's numbers as JSON, so it can be checked from outside.
import { openLlamaSession, rows, tokenizeNonEmpty } from '../../core/engine/llamaSession.ts';
import { graphLogits } from './graph.ts';
import { loadNative } from '../../core/native/binding.ts';
import { integerOption, parseCommandArgs } from '../args.ts';
import { UsageError } from '../errors.ts';

export const logitsUsage = 'graft logits MODEL --text T [--engine llama|graph] [--lora FILE]... [--threads N] [--json]';
export const keysUsage = 'graft keys MODEL --text T --layer L [--threads N] [--json]';

function modelArg(positionals: string[], usage: string): string {
  if (positionals.length !== 1) throw new UsageError(`give exactly one model file\nusage: ${usage}`);
  return positionals[0]!;
}

export async function runLogits(argv: string[]): Promise<void> {
  const { values, positionals } = parseCommandArgs(argv, {
    text: { type: 'string' }, engine: { type: 'string', default: 'llama' }, lora: { type: 'string', multiple: true, default: [] },
    threads: { type: 'string' }, json: { type: 'boolean', default: false },
  }, logitsUsage);
  const model = modelArg(positionals, logitsUsage);
  if (values.text === undefined) throw new UsageError(`--text is required\nusage: ${logitsUsage}`);
  const threads = values.threads ? integerOption(values.threads, '--threads') : undefined;
  if (values.engine === 'graph') return graphLogits(model, values.text, values.lora, threads);
  if (values.engine !== 'llama') throw new UsageError(`--engine must be llama or graph, got '${values.engine}'\nusage: ${logitsUsage}`);
  if (values.lora.length > 0) throw new Error('--lora with the llama engine is not available yet; use --engine graph');
  const native = await loadNative();
  const session = await openLlamaSession(native, model, { threads });
  try {
    const tokens = tokenizeNonEmpty(session, values.text);
    const result = await session.evaluate(tokens);
    process.stdout.write(`${JSON.stringify({ engine: 'llama', tokens: Array.from(tokens), logprobs: rows(result.logprobs!, result.nVocab) })}\n`);
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
  const native = await loadNative();
  const session = await openLlamaSession(native, model, { threads: values.threads ? integerOption(values.threads, '--threads') : undefined });
  try {
    const tokens = tokenizeNonEmpty(session, values.text);
    const result = await session.evaluate(tokens, { keyLayers: [layer], logprobs: false });
    const keys = result.keys[String(layer)]!;
    process.stdout.write(`${JSON.stringify({ layer, tokens: Array.from(tokens), keys: rows(keys, keys.length / result.nTokens) })}\n`);
  } finally {
    session.dispose();
  }
}
