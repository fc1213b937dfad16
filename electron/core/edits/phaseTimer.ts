// The phases of an edit: each checked for a cancel before it starts, announced, and timed.
export function phaseTimer<P extends string>(names: readonly P[], o: { signal?: AbortSignal; onProgress?: (p: { phase: P }) => void }) {
  const timings = Object.fromEntries(names.map((n) => [n, 0])) as Record<P, number>;
  const phase = async <T>(name: P, fn: () => Promise<T> | T): Promise<T> => {
    if (o.signal?.aborted) throw new Error('the edit was cancelled');
    o.onProgress?.({ phase: name });
    const t = performance.now();
    try {
      return await fn();
    } finally {
      timings[name] += (performance.now() - t) / 1000;
    }
  };
  return { phase, timings };
}
