// The one node-llama-cpp instance of this process. Thread count defaults to 1 because on
// small VMs ggml with 2 threads spins on barriers and runs many times slower.
import type { Llama } from 'node-llama-cpp';

let shared: Promise<Llama> | undefined;

export function defaultThreads(): number {
  const fromEnv = Number(process.env.GRAFT_THREADS);
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : 1;
}

export function getSharedLlama(): Promise<Llama> {
  shared ??= (async () => {
    const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
    const gpu = process.env.GRAFT_GPU === 'off' ? false : 'auto';
    return getLlama({ gpu, build: 'never', logLevel: LlamaLogLevel.error, maxThreads: defaultThreads() });
  })();
  return shared;
}
