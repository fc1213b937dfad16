// The fact-world demo model shipped with Graft (electron/core/demo): offered to every data folder
// once, so each install has something real to edit in its first minute, and loaded at start
// while it is the only model there. Its ground truth gives the Edit screen true facts to rewrite.
import fs from 'node:fs';
import path from 'node:path';

import type { DemoExamples, EditRequestInput } from '../api/contract.ts';
import { demoEditSettings, demoModelFiles, type DemoModelReport } from '../core/demo/demoModel.ts';
import { generateFactWorld, rewriteRequests, type GroundTruth } from '../core/demo/factWorld.ts';
import { listModels as storedModels, offeredDemoModel, rememberDemoModelOffered } from '../core/store/repository.ts';
import type { BackendContext } from './context.ts';
import { importModel, isAvailable, loadModel } from './models.ts';

/** How many example facts the Edit screen is offered. */
export const demoExampleCount = 6;

/**
 * Imports the demo model in `dir` the first time this data folder sees it, follows it when the
 * app moved (an update, or an AppImage mounted elsewhere on each start), and loads it while it is
 * the only model. Never throws: a start without the demo model is still a start.
 */
export async function offerDemoModel(ctx: BackendContext, dir: string | null): Promise<void> {
  if (dir === null) return;
  try {
    const file = path.resolve(dir, demoModelFiles.f32);
    if (!fs.existsSync(file)) {
      ctx.logs.push('warn', 'app', `the demo model is not at ${file}, so none is offered; \`graft demo-model --out ${path.resolve(dir)}\` builds it`);
      return;
    }
    const offered = offeredDemoModel(ctx.db);
    if (!offered) {
      const row = await importModel(ctx, file);
      rememberDemoModelOffered(ctx.db, { sha256: row.sha256, path: file });
      ctx.logs.push('info', 'app', `the demo model ${row.fileName} is imported: a small model trained on a made-up world whose facts Graft knows`);
    } else {
      const record = storedModels(ctx.db).find((m) => m.sha256 === offered.sha256);
      // gone from the list means removed on purpose: offered once is enough
      if (!record) return;
      if (record.path !== file || !isAvailable(ctx, record)) {
        const row = await importModel(ctx, file);
        rememberDemoModelOffered(ctx.db, { sha256: row.sha256, path: file });
      }
    }
    const models = storedModels(ctx.db);
    const demo = offeredDemoModel(ctx.db)!;
    if (!ctx.loaded && models.length === 1 && models[0]!.sha256 === demo.sha256) {
      loadModel(ctx, models[0]!.id, 'auto');
    }
  } catch (error) {
    ctx.logs.push('warn', 'app', `the demo model could not be offered: ${(error as Error).message}`);
  }
}

// regenerating the world from its seed is cheap but not free; the file is read once per path
const examplesOf = new Map<string, { signature: string; examples: DemoExamples }>();

/**
 * True facts of the demo world, each with a wrong target, paraphrases and neighbours, when the
 * loaded model is the demo model. The world is regenerated from the seed and options in
 * ground-truth.json beside the model, as the model was trained on it; the edit layer is the one
 * causal tracing found when the model was built (training-report.json).
 */
export function demoExamples(ctx: BackendContext): DemoExamples {
  const none: DemoExamples = { settings: null, examples: [] };
  const loaded = ctx.loaded;
  const offered = offeredDemoModel(ctx.db);
  if (!loaded || !offered || loaded.record.sha256 !== offered.sha256) return none;
  const truthFile = path.join(path.dirname(loaded.record.path), demoModelFiles.groundTruth);
  try {
    const stat = fs.statSync(truthFile);
    const signature = `${stat.size}:${stat.mtimeMs}`;
    const hit = examplesOf.get(truthFile);
    if (hit?.signature === signature) return hit.examples;
    const truth = JSON.parse(fs.readFileSync(truthFile, 'utf8')) as GroundTruth;
    const world = generateFactWorld(truth.seed, truth.options);
    if (world.facts.length !== truth.facts.length || world.facts.some((f, i) => f.subject !== truth.facts[i]!.subject || f.object !== truth.facts[i]!.object)) {
      throw new Error('its facts differ from the world its seed makes (written by another version of Graft?)');
    }
    const requests = rewriteRequests(world, demoExampleCount, truth.seed).map(({ request: r }): EditRequestInput => ({
      prompt: r.prompt, subject: r.subject, targetNew: r.targetNew, ...(r.targetTrue ? { targetTrue: r.targetTrue } : {}),
      paraphrases: r.paraphrasePrompts, neighbours: r.neighborhoodPrompts,
    }));
    const examples: DemoExamples = { settings: recordedSettings(path.dirname(truthFile)), examples: requests };
    examplesOf.set(truthFile, { signature, examples });
    return examples;
  } catch (error) {
    ctx.logs.push('warn', 'app', `no demo facts to offer: ${truthFile}: ${(error as Error).message}`);
    return none;
  }
}

/** ROME's settings from the training report's traced layer, or null when the report is missing or older. */
function recordedSettings(dir: string): DemoExamples['settings'] {
  try {
    const report = JSON.parse(fs.readFileSync(path.join(dir, demoModelFiles.report), 'utf8')) as Partial<DemoModelReport>;
    return report.editLayer && Number.isInteger(report.editLayer.layer) ? demoEditSettings({ editLayer: report.editLayer }) : null;
  } catch {
    return null;
  }
}
