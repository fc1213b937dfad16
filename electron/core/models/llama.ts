// The one node-llama-cpp instance of this process. Thread count defaults to 1 because on
// small VMs ggml with 2 threads spins on barriers and runs many times slower.
import type { Llama } from 'node-llama-cpp';

let shared: Promise<Llama> | undefined;

export function defaultThreads(): number {
  const fromEnv = Number(process.env.GRAFT_THREADS);
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : 1;
}

export interface SharedLlamaOptions {
  gpu?: 'auto' | false;
  threads?: number;
  /** llama.cpp's and node-llama-cpp's messages (default: errors only, to stderr) */
  logger?: (level: string, message: string) => void;
}

let configured: SharedLlamaOptions = {};

/**
 * Options for the instance; they apply only before its first use (llama.cpp's backend is
 * chosen once per process). Returns false when the instance already exists.
 */
export function configureSharedLlama(options: SharedLlamaOptions): boolean {
  if (shared) return false;
  configured = options;
  return true;
}

export function getSharedLlama(): Promise<Llama> {
  shared ??= (async () => {
    const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
    const gpu = configured.gpu ?? (process.env.GRAFT_GPU === 'off' ? false : 'auto');
    const logger = configured.logger;
    return getLlama({
      gpu, build: 'never', maxThreads: configured.threads ?? defaultThreads(),
      ...(logger ? { logLevel: LlamaLogLevel.info, logger: (level: string, message: string) => logger(level, message) } : { logLevel: LlamaLogLevel.error }),
    });
  })();
  return shared;
}
