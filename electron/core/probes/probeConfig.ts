// A probe configuration from what the researcher chose (files or the shipped defaults).
import fs from 'node:fs';
import path from 'node:path';

import { sha256OfFile } from '../models/modelInfo.ts';
import type { ProbeConfig } from './probeSuite.ts';
import { defaultProbeSet, defaultPromptSet, loadProbeSet, loadPromptSet } from './probeSet.ts';

export interface ProbeChoices {
  probeSet?: string;
  klPrompts?: string;
  /** default true */
  kl?: boolean;
  corpus?: string;
  nCtx?: number;
  maxChunks?: number;
  /** default true: the first token of each sentence is scored after BOS */
  bos?: boolean;
}

export async function probeConfig(c: ProbeChoices, modelContext: number): Promise<ProbeConfig> {
  let corpus: ProbeConfig['corpus'] = null;
  if (c.corpus !== undefined) {
    if (!fs.existsSync(c.corpus) || !fs.statSync(c.corpus).isFile()) throw new Error(`--corpus ${c.corpus}: no such file; give a text file to measure perplexity on`);
    const text = fs.readFileSync(c.corpus, 'utf8');
    if (text.trim() === '') throw new Error(`--corpus ${c.corpus} is empty`);
    corpus = { name: path.basename(c.corpus), sha256: await sha256OfFile(c.corpus), text };
  }
  const nCtx = c.nCtx ?? Math.min(512, modelContext);
  if (!Number.isInteger(nCtx) || nCtx < 8) throw new Error(`the perplexity context must be an integer of at least 8, got ${nCtx}`);
  if (nCtx > modelContext) throw new Error(`the perplexity context ${nCtx} is longer than the model's ${modelContext}; choose a smaller --ctx`);
  return {
    probeSet: c.probeSet !== undefined ? await loadProbeSet(c.probeSet) : defaultProbeSet(),
    klPrompts: c.kl === false ? null : c.klPrompts !== undefined ? await loadPromptSet(c.klPrompts) : defaultPromptSet(),
    corpus, nCtx, maxChunks: c.maxChunks ?? null, bos: c.bos ?? true,
  };
}
