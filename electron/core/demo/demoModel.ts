// The fact-world demo model, end to end: world → corpus → tokenizer → training → GGUF files
// (F32 and Q8_0) → knowledge check, all determined by one seed. `graft demo-model` runs this;
// its output for the default seed is committed in demo-model/ so nobody has to train.
import fs from 'node:fs';
import path from 'node:path';

import { appRoot, unpackedPath } from '../appPaths.ts';
import { suggestEditLayer, type LayerSuggestion } from '../edits/causalTrace.ts';
import { openGraphModel } from '../engine/graphModel.ts';
import type { GraftNative, TrainShape } from '../native/binding.ts';
import { trainBpe } from './bpeTokenizer.ts';
import { generateFactWorld, groundTruth, rewriteRequests, trainingCorpus, type FactWorld } from './factWorld.ts';
import { gpt2VocabularyKv } from './gpt2Vocabulary.ts';
import { parameterCount } from './initialWeights.ts';
import { knowledgeCheck, type KnowledgeReport } from './knowledgeCheck.ts';
import { writeTrainedModel, type TrainedModelType } from './trainedModelFile.ts';
import { TrainingRows } from './trainingRows.ts';
import { trainModel, type TrainProgress, type TrainSchedule } from './trainLoop.ts';

export const demoModelSeed = 20240611;

export interface DemoModelConfig {
  seed: number;
  vocabSize: number;
  shape: Omit<TrainShape, 'nVocab' | 'threads'>;
  schedule: TrainSchedule;
}

export function demoModelConfig(seed = demoModelSeed, steps?: number): DemoModelConfig {
  return {
    seed,
    vocabSize: 1024,
    // n_ff = 4·n_embd leaves the MLP keys room for a null space (AlphaEdit needs one).
    shape: { nLayer: 4, nEmbd: 128, nFf: 512, nHead: 4, nHeadKv: 4, seqLen: 64, batch: 16 },
    schedule: { steps: steps ?? 1500, peakLr: 3e-3, warmupSteps: 100, finalLrRatio: 0.1, weightDecay: 0.1, gradClip: 1 },
  };
}

/**
 * ROME's settings for the demo model: the layer causal tracing found, and twice the published
 * 25 v* steps. The demo model is far surer of its facts than a web-trained LLM (a new target
 * starts near P = 1e-7), so v* needs more steps to get there; early stopping ends most runs sooner.
 */
export function demoEditSettings(report: Pick<DemoModelReport, 'editLayer'>): { layer: number; vSteps: number } {
  return { layer: report.editLayer.layer, vSteps: 50 };
}

/** Facts traced to choose the edit layer. */
const editLayerTraces = 9;

export const demoModelFiles = {
  f32: 'graft-demo-facts.f32.gguf',
  q8_0: 'graft-demo-facts.q8_0.gguf',
  groundTruth: 'ground-truth.json',
  corpus: 'corpus.txt',
  report: 'training-report.json',
} as const;

/** Where the shipped demo model lives: beside the app's resources when packaged, else in the checkout. */
export function shippedDemoModelDir(): string {
  const resources = (process as { resourcesPath?: string }).resourcesPath;
  if (resources && fs.existsSync(path.join(resources, 'demo-model', demoModelFiles.f32))) return path.join(resources, 'demo-model');
  return unpackedPath(path.join(appRoot, 'demo-model'));
}

export interface DemoModelReport {
  seed: number;
  config: DemoModelConfig;
  parameters: number;
  vocabulary: number;
  corpus: { sentences: number; characters: number; facts: number };
  training: { seconds: number; epochs: number; threads: number; finalLoss: number; curve: { step: number; loss: number }[] };
  knowledge: Record<TrainedModelType, KnowledgeReport>;
  /** Where to edit this model: causal tracing of the first rewrites' prompts. */
  editLayer: LayerSuggestion;
  files: Record<TrainedModelType, { name: string; bytes: number }>;
}

export interface BuildDemoOptions {
  outDir: string;
  seed?: number;
  steps?: number;
  threads?: number;
  onProgress?: (p: TrainProgress) => void;
  onStage?: (stage: string) => void;
  signal?: AbortSignal;
}

export function demoWorld(seed = demoModelSeed): { world: FactWorld; corpus: string[] } {
  const world = generateFactWorld(seed);
  return { world, corpus: trainingCorpus(world) };
}

export async function buildDemoModel(native: GraftNative, o: BuildDemoOptions): Promise<DemoModelReport> {
  const config = demoModelConfig(o.seed, o.steps);
  const threads = o.threads ?? 1;
  o.onStage?.('generating the fact world and its corpus');
  const { world, corpus } = demoWorld(config.seed);
  o.onStage?.('training the tokenizer');
  const tokenizer = trainBpe(corpus, config.vocabSize);
  const shape: TrainShape = { ...config.shape, nVocab: tokenizer.size, threads };
  o.onStage?.(`training ${parameterCount(shape)} parameters for ${config.schedule.steps} steps`);
  const rows = new TrainingRows(corpus, tokenizer, shape.seqLen + 1, config.seed);
  const trained = await trainModel(native, shape, rows, config.schedule, config.seed, { onProgress: o.onProgress, signal: o.signal });

  fs.mkdirSync(o.outDir, { recursive: true });
  const meta = {
    name: 'Graft demo fact-world model',
    description: `A ${parameterCount(shape)}-parameter llama-architecture model trained by Graft (seed ${config.seed}) on a generated world of made-up people, cities, countries, companies and languages; its facts are in ground-truth.json.`,
    contextLength: shape.seqLen,
    vocabulary: gpt2VocabularyKv(tokenizer),
    extra: [{ key: 'graft.demo.seed', type: 'u32' as const, value: config.seed }],
  };
  const files = {} as DemoModelReport['files'];
  const knowledge = {} as DemoModelReport['knowledge'];
  let editLayer: LayerSuggestion | undefined;
  for (const type of ['f32', 'q8_0'] as const) {
    const name = demoModelFiles[type];
    const file = path.join(o.outDir, name);
    const tmp = `${file}.partial`;
    const bytes = writeTrainedModel(native, tmp, shape, trained.weights, type, meta);
    fs.renameSync(tmp, file);
    files[type] = { name, bytes };
    o.onStage?.(`checking what the ${type} model knows`);
    const graph = await openGraphModel(native, file, { threads });
    try {
      knowledge[type] = await knowledgeCheck(graph, world);
      if (type === 'f32') {
        o.onStage?.('tracing where the model recalls its facts');
        const embeddings = trained.weights['token_embd.weight']!;
        editLayer = await suggestEditLayer(graph, embeddings, rewriteRequests(world, editLayerTraces, 1).map((c) => c.request));
      }
    } finally {
      graph.dispose();
    }
  }
  fs.writeFileSync(path.join(o.outDir, demoModelFiles.groundTruth), `${JSON.stringify(groundTruth(world), null, 1)}\n`);
  fs.writeFileSync(path.join(o.outDir, demoModelFiles.corpus), `${corpus.join('\n')}\n`);
  const report: DemoModelReport = {
    seed: config.seed,
    config,
    parameters: parameterCount(shape),
    vocabulary: tokenizer.size,
    corpus: { sentences: corpus.length, characters: corpus.reduce((n, s) => n + s.length + 1, 0), facts: world.facts.length },
    training: {
      seconds: Math.round(trained.seconds), epochs: trained.epochs, threads,
      finalLoss: trained.curve.at(-1)?.loss ?? NaN, curve: trained.curve,
    },
    knowledge,
    editLayer: editLayer!,
    files,
  };
  fs.writeFileSync(path.join(o.outDir, demoModelFiles.report), `${JSON.stringify(report, null, 1)}\n`);
  return report;
}
