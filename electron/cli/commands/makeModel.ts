import fs from 'node:fs';

import { makeTestModel, type TestModelSpec } from '../../core/models/testModels/makeTestModel.ts';
import { loadNative } from '../../core/native/binding.ts';
import { integerOption, parseCommandArgs } from '../args.ts';
import { UsageError } from '../errors.ts';

export const makeModelUsage =
  'graft make-model --arch llama|qwen2|qwen3 --layers N --embd D --ff F --heads H --kv-heads K --vocab V ' +
  '--type f32|f16|q8_0|q4_k --seed S --out FILE [--context N] [--force] [--json]';

export async function runMakeModel(argv: string[]): Promise<void> {
  const { values, positionals } = parseCommandArgs(argv, {
    arch: { type: 'string', default: 'llama' },
    layers: { type: 'string' },
    embd: { type: 'string' },
    ff: { type: 'string' },
    heads: { type: 'string' },
    'kv-heads': { type: 'string' },
    vocab: { type: 'string', default: '512' },
    type: { type: 'string', default: 'f32' },
    seed: { type: 'string', default: '0' },
    context: { type: 'string', default: '512' },
    out: { type: 'string' },
    json: { type: 'boolean', default: false },
    force: { type: 'boolean', default: false },
  }, makeModelUsage);
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'\nusage: ${makeModelUsage}`);
  if (!values.out) throw new UsageError(`--out is required\nusage: ${makeModelUsage}`);
  // A random model must never silently replace a file the user cares about.
  if (fs.existsSync(values.out) && !values.force) {
    throw new UsageError(`${values.out} already exists; choose another --out or add --force to replace it`);
  }
  const heads = integerOption(values.heads, '--heads');
  const spec: TestModelSpec = {
    arch: values.arch as TestModelSpec['arch'],
    layers: integerOption(values.layers, '--layers'),
    embd: integerOption(values.embd, '--embd'),
    ff: integerOption(values.ff, '--ff'),
    heads,
    kvHeads: integerOption(values['kv-heads'], '--kv-heads', heads),
    vocab: integerOption(values.vocab, '--vocab'),
    type: values.type as TestModelSpec['type'],
    seed: integerOption(values.seed, '--seed'),
    contextLength: integerOption(values.context, '--context'),
  };
  const native = await loadNative();
  const result = makeTestModel(native, spec, values.out);
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ ...result, spec }, null, 2)}\n`);
  } else {
    const fallbacks = Object.entries(result.fallbacks);
    process.stdout.write(`wrote ${result.path} (${result.bytes} bytes, ${result.tensors} tensors)\n`);
    if (fallbacks.length) {
      process.stdout.write(`stored in another type because their rows do not fit ${spec.type} blocks: ${fallbacks.map(([n, t]) => `${n}=${t}`).join(', ')}\n`);
    }
  }
}
