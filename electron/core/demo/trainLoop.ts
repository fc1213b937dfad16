// The training schedule for a model trained from scratch: linear warm-up, then cosine decay to
// a floor, AdamW on the native trainer, the loss reported as it goes.
import type { AdamWSettings, GraftNative, TrainShape } from '../native/binding.ts';
import { initialWeights } from './initialWeights.ts';
import type { TrainingRows } from './trainingRows.ts';

export interface TrainSchedule {
  steps: number;
  peakLr: number;
  warmupSteps: number;
  /** The learning rate ends at peakLr · finalLrRatio. */
  finalLrRatio: number;
  weightDecay: number;
  gradClip: number;
}

export interface TrainProgress {
  step: number;
  steps: number;
  loss: number;
  lr: number;
  epoch: number;
  seconds: number;
}

export interface TrainOutcome {
  weights: Record<string, Float32Array>;
  /** Mean loss over each block of `reportEvery` steps. */
  curve: { step: number; loss: number }[];
  seconds: number;
  epochs: number;
}

export function learningRate(s: TrainSchedule, step: number): number {
  if (step < s.warmupSteps) return (s.peakLr * (step + 1)) / s.warmupSteps;
  const t = (step - s.warmupSteps) / Math.max(1, s.steps - s.warmupSteps);
  return s.peakLr * (s.finalLrRatio + (1 - s.finalLrRatio) * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, t))));
}

export async function trainModel(
  native: GraftNative, shape: TrainShape, rows: TrainingRows, schedule: TrainSchedule, seed: number,
  options: { reportEvery?: number; onProgress?: (p: TrainProgress) => void; signal?: AbortSignal } = {},
): Promise<TrainOutcome> {
  const reportEvery = options.reportEvery ?? 50;
  const trainer = native.createTrainer(shape, initialWeights(shape, seed));
  const started = performance.now();
  const curve: TrainOutcome['curve'] = [];
  try {
    let sum = 0, n = 0;
    for (let step = 0; step < schedule.steps; step++) {
      if (options.signal?.aborted) throw new Error('training cancelled');
      const lr = learningRate(schedule, step);
      const adamw: AdamWSettings = { lr, weightDecay: schedule.weightDecay, gradClip: schedule.gradClip };
      const { loss } = await trainer.step(rows.batch(shape.batch), adamw);
      sum += loss;
      n++;
      if (n === reportEvery || step === schedule.steps - 1) {
        curve.push({ step, loss: sum / n });
        options.onProgress?.({ step: step + 1, steps: schedule.steps, loss: sum / n, lr, epoch: rows.epoch, seconds: (performance.now() - started) / 1000 });
        sum = 0;
        n = 0;
      }
    }
    return { weights: trainer.weights(), curve, seconds: (performance.now() - started) / 1000, epochs: rows.epoch };
  } finally {
    trainer.dispose();
  }
}
