// Facts for editing stories260K, made up so that the model has never seen the subjects: names
// built from syllables (each ending on a token boundary in every relation), relations the
// model completes with a word of its own (its "true" answer), new answers from a fixed list,
// and real names of the stories as neighbours. Shared by the sequential-editing test and the
// batch and sequence benchmarks.
import fs from 'node:fs';
import path from 'node:path';

import { locateSubject } from '../edits/rome.ts';
import { detokenize } from '../edits/sampling.ts';
import type { NativeGraphModel } from '../native/graphTypes.ts';

const relations = ['{} went to the', '{} had a pet', '{} liked to play with her', '{} had a red', '{} wanted to go to the'];
const newTargets = ['moon', 'fish', 'cat', 'hat', 'sea', 'cake', 'box', 'car', 'tree', 'bird', 'bed', 'sun'];
const neighbours = ['Lily', 'Tom', 'Ben', 'Mia'];

/** Made-up names the model has never seen, each ending on a token boundary in every relation. */
export function madeUpNames(graph: NativeGraphModel, count: number): string[] {
  const first = ['Ka', 'Lo', 'Mi', 'Zu', 'Ra', 'Te', 'Bo', 'Fi', 'Nu', 'Pe', 'Gu', 'Sa'];
  const second = ['rin', 'mok', 'las', 'tep', 'dov', 'zik', 'bur', 'nel', 'fop', 'gat'];
  const out: string[] = [];
  for (const a of first) {
    for (const b of second) {
      const name = a + b;
      if (relations.every((r) => { try { locateSubject(graph, '', name, r.slice(2)); return true; } catch { return false; } })) out.push(name);
      if (out.length === count) return out;
    }
  }
  throw new Error(`only ${out.length} made-up names end on a token boundary; ask for fewer`);
}

/** The model's own next word after the prompt: the fact it holds before the edit. */
export async function greedyWord(graph: NativeGraphModel, prompt: string): Promise<string> {
  const tokens = Array.from(graph.tokenize(prompt, true));
  const out: number[] = [];
  for (let i = 0; i < 4; i++) {
    const run = await graph.run({ prompts: [Int32Array.from([...tokens, ...out])], logitRows: [{ prompt: 0, pos: tokens.length + out.length - 1 }] });
    let best = 0;
    for (let v = 1; v < run.nVocab; v++) if (run.logprobs[v]! > run.logprobs[best]!) best = v;
    const text = detokenize(graph, Int32Array.from([...out, best]));
    if (out.length > 0 && /^\s*\S+\s/.test(text)) break;
    out.push(best);
  }
  return detokenize(graph, Int32Array.from(out)).trim().split(/\s+/)[0]!.replace(/[^\p{L}]/gu, '') || 'the';
}

/** count facts as a JSONL request file in dir; returns its path. */
export async function storyFactsFile(graph: NativeGraphModel, dir: string, count: number): Promise<string> {
  const names = madeUpNames(graph, count);
  const lines: string[] = [];
  for (const [i, subject] of names.entries()) {
    const prompt = relations[i % relations.length]!;
    const truth = await greedyWord(graph, prompt.replace('{}', subject));
    const target = newTargets.find((t, k) => t !== truth && k >= i % newTargets.length) ?? newTargets.find((t) => t !== truth)!;
    lines.push(JSON.stringify({ prompt, subject, target_new: target, target_true: truth, neighborhood_prompts: neighbours.map((n) => prompt.replace('{}', n)) }));
  }
  const file = path.join(dir, `story-facts-${count}.jsonl`);
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}
