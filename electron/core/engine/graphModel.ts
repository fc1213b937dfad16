// Graft's own differentiable graph (native/src/graph_*): typed access with the project's
// defaults (1 thread unless GRAFT_THREADS says otherwise, the GPU when the native variant
// has one and GRAFT_GPU is not off), and Adam runs that honour an AbortSignal.
import { defaultThreads } from '../models/llama.ts';
import type { GraftNative } from '../native/binding.ts';
import type { AdamOptions, GraphRequest, NativeGraphModel, OptimizeResult, RowRef, StepReport } from '../native/graphTypes.ts';

export interface OpenGraphOptions {
  threads?: number;
  gpu?: boolean;
  rowOnceOutProd?: boolean;
  dequantizeForBackward?: boolean;
}

export function openGraphModel(native: GraftNative, modelPath: string, options: OpenGraphOptions = {}): Promise<NativeGraphModel> {
  return native.openGraphModel(modelPath, {
    threads: options.threads ?? defaultThreads(),
    gpu: options.gpu ?? process.env.GRAFT_GPU !== 'off',
    rowOnceOutProd: options.rowOnceOutProd ?? true,
    ...(options.dequantizeForBackward === undefined ? {} : { dequantizeForBackward: options.dequantizeForBackward }),
  });
}

export interface OptimizeControl {
  signal?: AbortSignal;
  onStep?: (report: StepReport) => void;
}

/** Adam on the request's deltas; an abort stops after the step in progress (cancelled: true). */
export async function optimizeDeltas(model: NativeGraphModel, request: GraphRequest, adam: AdamOptions, control: OptimizeControl = {}): Promise<OptimizeResult> {
  const { signal, onStep } = control;
  if (signal?.aborted) throw new Error('the optimisation was cancelled before it started');
  const abort = () => model.cancel();
  signal?.addEventListener('abort', abort, { once: true });
  try {
    return await model.optimize(request, adam, onStep);
  } finally {
    signal?.removeEventListener('abort', abort);
  }
}

/** Every position of every prompt, in the order the graph returns all-logits rows. */
export function allRows(prompts: Int32Array[]): RowRef[] {
  return prompts.flatMap((p, prompt) => Array.from({ length: p.length }, (_, pos) => ({ prompt, pos })));
}

/**
 * The tokens `target` adds after `text`: taken from tokenizing the joined string when that
 * extends the text's own tokens (so " Rome" after "… is in" gets the tokens the model sees in
 * running text, not a sentence-initial variant); otherwise the target tokenized alone.
 */
export function continuationTokens(tokenize: (text: string, addSpecial: boolean) => Int32Array, text: string, target: string): Int32Array {
  const prefix = tokenize(text, true);
  const joined = tokenize(text + target, true);
  const extends_ = joined.length > prefix.length && prefix.every((t, i) => joined[i] === t);
  return extends_ ? joined.slice(prefix.length) : tokenize(target, false);
}

/**
 * A prompt followed by a teacher-forced continuation: the tokens to feed and the rows whose
 * next-token distribution must put weight on each continuation token.
 */
export function teacherForced(prefix: Int32Array, continuation: Int32Array, prompt = 0, weight = 1) {
  if (prefix.length === 0) throw new Error('the prompt is empty');
  if (continuation.length === 0) throw new Error('the target tokenizes to nothing; give a non-empty target');
  const tokens = new Int32Array(prefix.length + continuation.length - 1);
  tokens.set(prefix);
  tokens.set(continuation.subarray(0, continuation.length - 1), prefix.length);
  const targets = Array.from(continuation, (token, i) => ({ prompt, pos: prefix.length - 1 + i, token, weight }));
  return { tokens, targets };
}
