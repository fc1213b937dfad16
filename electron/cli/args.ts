import { parseArgs, type ParseArgsConfig } from 'node:util';

import { UsageError } from './errors.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

export function parseCommandArgs<O extends Options>(argv: string[], options: O, usage: string) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(`${(error as Error).message.split('\n')[0]}\nusage: ${usage}`);
  }
}

export function integerOption(value: string | undefined, flag: string, fallback?: number): number {
  if (value === undefined) {
    if (fallback === undefined) throw new UsageError(`${flag} is required`);
    return fallback;
  }
  if (!/^-?\d+$/.test(value.trim())) throw new UsageError(`${flag} must be an integer, got '${value}'`);
  return Number(value);
}

// --lora FILE or FILE@SCALE, repeatable: adapters llama.cpp applies on top of the model.
export function loraOptions(values: string[] | undefined): { path: string; scale?: number }[] {
  return (values ?? []).map((v) => {
    const at = v.lastIndexOf('@');
    if (at <= 0 || v.slice(at + 1).includes('/')) return { path: v };  // an @ inside a folder name
    const scale = Number(v.slice(at + 1));
    if (v.slice(at + 1).trim() === '' || !Number.isFinite(scale)) throw new UsageError(`--lora ${v}: the scale after @ must be a number`);
    return { path: v.slice(0, at), scale };
  });
}

export function threadsOption(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = integerOption(value, '--threads');
  if (n < 1) throw new UsageError(`--threads must be at least 1, got ${n}`);
  return n;
}
