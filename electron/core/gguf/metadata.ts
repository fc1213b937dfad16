// Reading typed values out of a GGUF's key/value metadata without trusting the file: a
// key may be missing or hold the wrong type, and callers get undefined rather than garbage.
import type { GgufInspection, KvEntry, KvScalar } from '../native/binding.ts';

export type Metadata = ReadonlyMap<string, KvEntry>;

export function metadataOf(inspection: GgufInspection): Metadata {
  return new Map(inspection.kv.map((entry) => [entry.key, entry]));
}

const integerTypes = new Set(['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'u64', 'i64']);

export function getString(meta: Metadata, key: string): string | undefined {
  const entry = meta.get(key);
  return entry?.type === 'str' && typeof entry.value === 'string' ? entry.value : undefined;
}

export function getInteger(meta: Metadata, key: string): number | undefined {
  const entry = meta.get(key);
  if (!entry || !integerTypes.has(entry.type)) return undefined;
  const value = typeof entry.value === 'bigint' ? Number(entry.value) : entry.value;
  return typeof value === 'number' && Number.isSafeInteger(value) ? value : undefined;
}

export function getNumber(meta: Metadata, key: string): number | undefined {
  const entry = meta.get(key);
  if (!entry) return undefined;
  if (entry.type === 'f32' || entry.type === 'f64') return typeof entry.value === 'number' ? entry.value : undefined;
  return getInteger(meta, key);
}

export function getBoolean(meta: Metadata, key: string): boolean | undefined {
  const entry = meta.get(key);
  return entry?.type === 'bool' && typeof entry.value === 'boolean' ? entry.value : undefined;
}

export function getArrayLength(meta: Metadata, key: string): number | undefined {
  const entry = meta.get(key);
  return entry?.type === 'arr' ? entry.length : undefined;
}

/** JSON-safe form of a metadata value (bigints become strings). */
export function jsonValue(value: KvScalar | KvScalar[]): unknown {
  if (Array.isArray(value)) return value.map((v) => jsonValue(v));
  return typeof value === 'bigint' ? value.toString() : value;
}
