// ROME on a real pretrained model: ten edits written for stories260K's world (its children's
// story names, pets, toys and places), each with neighbour prompts about other children.
// Efficacy ≥ 0.9 and neighbourhood ≥ 0.8 by probability comparison; the table is printed.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

import { openGraphModel } from '../engine/graphModel.ts';
import { loadNative } from '../native/binding.ts';
import { realModel, tempDir } from '../testing/fixtures.ts';
import { editMetrics } from './metrics.ts';
import { parseEditRequest } from './request.ts';
import { romeDefaults } from './rome.ts';
import { romeEdit } from './romeEdit.ts';

const stories = realModel('stories260K-F32.gguf');
const data = process.env.GRAFT_TEST_DATA;
const corpus = data ? path.join(data, 'tinyshakespeare.txt') : undefined;
const names = ['Lily', 'Tom', 'Ben', 'Mia', 'Sue', 'Max'];
// [prompt, subject, what the model says, the new fact]; every neighbour prefers the old answer before the edit.
const facts: [string, string, string, string][] = [
  ['{} went to the', 'Lily', 'park', 'moon'],
  ['{} liked to play with her', 'Mia', 'toys', 'cat'],
  ['{} liked to play with his', 'Tom', 'toys', 'cat'],
  ['{} had a pet', 'Ben', 'dog', 'bird'],
  ['{} wanted to go to the', 'Tom', 'park', 'sea'],
  ['{} ate a', 'Mia', 'big', 'cake'],
  ['{} found a', 'Ben', 'big', 'box'],
  ['{} saw a big', 'Lily', 'bird', 'car'],
  ['{} had a red', 'Tom', 'ball', 'hat'],
  ['{} said, "I want to play with my', 'Ben', 'toys', 'dog'],
];

describe('ROME on stories260K', () => {
  const skip = stories.skip || (corpus && fs.existsSync(corpus) ? false : 'GRAFT_TEST_DATA is unset; it holds the corpus for the second moments');
  test('ten edits: efficacy ≥ 0.9 and neighbourhood ≥ 0.8 (probability comparison)', { skip }, async () => {
    const native = await loadNative();
    const graph = await openGraphModel(native, stories.path!);
    const dir = tempDir();
    try {
      const rows: string[] = [];
      let efficacy = 0, neighbourWins = 0, neighbours = 0;
      for (const [prompt, subject, old, fresh] of facts) {
        const request = parseEditRequest({
          prompt, subject, target_true: old, target_new: fresh,
          neighborhood_prompts: names.filter((n) => n !== subject).slice(0, 3).map((n) => prompt.replace('{}', n)),
        });
        const before = await editMetrics(graph, request, []);
        assert.equal(before.efficacy.probabilityScore, 0, `${subject}: the model must not know the new fact before the edit`);
        const r = await romeEdit(native, graph, {
          modelPath: stories.path!, request, corpus: corpus!, statisticsTokens: 8192, statisticsDir: dir, out: dir,
          hparams: { ...romeDefaults(graph.info.nLayer), layer: 1 },
        });
        const after = await editMetrics(graph, request, [{ layer: r.layer, rank: 1, u: r.u, v: r.v }]);
        efficacy += after.efficacy.probabilityScore;
        neighbourWins += after.neighbourhood!.probabilityScore * after.neighbourhood!.prompts;
        neighbours += after.neighbourhood!.prompts;
        rows.push(`${prompt.replace('{}', subject).padEnd(38)} ${old.padEnd(5)} → ${fresh.padEnd(5)} ` +
          `P(new) ${before.efficacy.pNew.toFixed(3)} → ${after.efficacy.pNew.toFixed(3)}  P(true) ${before.efficacy.pTrue.toFixed(3)} → ${after.efficacy.pTrue.toFixed(3)}  ` +
          `neighbours kept ${after.neighbourhood!.probabilityScore.toFixed(2)}  ‖ΔW‖/‖W‖ ${r.preflight.relativeUpdateNorm.toFixed(2)}`);
      }
      const table = [...rows, `efficacy ${(efficacy / facts.length).toFixed(2)}, neighbourhood ${(neighbourWins / neighbours).toFixed(2)}`].join('\n');
      console.log(table);
      assert.ok(efficacy / facts.length >= 0.9, table);
      assert.ok(neighbourWins / neighbours >= 0.8, table);
    } finally {
      graph.dispose();
    }
  });
});
