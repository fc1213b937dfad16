// Shared test fixtures: the real models and data from $GRAFT_TEST_MODELS / $GRAFT_TEST_DATA
// (tests skip with a clear reason when absent) and generated models in temp folders.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';

import { makeTestModel, type TestModelSpec } from '../models/testModels/makeTestModel.ts';
import type { GraftNative } from '../native/binding.ts';

export function realModel(file: string): { path?: string; skip: string | false } {
  const dir = process.env.GRAFT_TEST_MODELS;
  if (!dir) return { skip: `GRAFT_TEST_MODELS is unset; point it at a folder holding ${file} (e.g. ../shared/models)` };
  const p = path.resolve(dir, file);
  if (!fs.existsSync(p)) return { skip: `${p} does not exist` };
  return { path: p, skip: false };
}

export const storiesVariants = ['F32', 'F16', 'Q8_0'] as const;

export function tempDir(prefix = 'graft-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export const smallSpec: Omit<TestModelSpec, 'arch' | 'type'> = {
  layers: 2, embd: 64, ff: 128, heads: 4, kvHeads: 2, vocab: 320, seed: 7, contextLength: 256,
};

export function generatedModel(native: GraftNative, dir: string, spec: Partial<TestModelSpec> & Pick<TestModelSpec, 'arch' | 'type'>): string {
  const full = { ...smallSpec, ...spec };
  const file = path.join(dir, `${full.arch}-${full.type}-${full.seed}.gguf`);
  if (!fs.existsSync(file)) makeTestModel(native, full, file);
  return file;
}

export function filesIn(dir: string): string[] {
  return fs.readdirSync(dir).sort();
}
