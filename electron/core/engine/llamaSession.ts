// The model as llama.cpp runs it, through graft_native's own context (F32 KV cache, no flash
// attention): per-position log-probabilities, MLP keys and residuals for given text.
import { defaultThreads } from '../models/llama.ts';
import type { GraftNative, LoraAdapter, NativeLlamaSession } from '../native/binding.ts';

export interface OpenOptions {
  contextSize?: number;
  threads?: number;
  gpuLayers?: number;
  repack?: boolean;
  lora?: LoraAdapter[];
}

/**
 * Every layer on the GPU when the addon's variant has one (llama.cpp clamps the count, and
 * without a GPU device offloads nothing); none with GRAFT_GPU=off.
 */
export function defaultGpuLayers(): number {
  return process.env.GRAFT_GPU === 'off' ? 0 : 999;
}

export function openLlamaSession(native: GraftNative, modelPath: string, options: OpenOptions = {}): Promise<NativeLlamaSession> {
  return native.openLlamaSession(modelPath, {
    contextSize: options.contextSize ?? 512,
    threads: options.threads ?? defaultThreads(),
    gpuLayers: options.gpuLayers ?? defaultGpuLayers(),
    repack: options.repack ?? true,
    lora: options.lora ?? [],
  });
}

/** Rows of a row-major matrix as plain arrays (for JSON output). */
export function rows(values: Float32Array, width: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < values.length; i += width) out.push(Array.from(values.subarray(i, i + width)));
  return out;
}

export function tokenizeNonEmpty(session: NativeLlamaSession, text: string): Int32Array {
  if (text.trim() === '') throw new Error('--text is empty; give the text to evaluate');
  return session.tokenize(text, true);
}
