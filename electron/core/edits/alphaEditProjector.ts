// AlphaEdit's projectors come from each layer's second-moment file: computed once natively,
// then cached on disk beside the statistics, since they depend only on the base model.
import type { GraftNative } from '../native/binding.ts';
import { nullSpaceProjector } from '../stats/nullSpace.ts';
import type { ProjectorFor } from './batchEdit.ts';

export function alphaEditProjectors(native: GraftNative, o: { cacheDir: string; threads?: number; signal?: AbortSignal }): ProjectorFor {
  return async (stats, threshold) => {
    const projector = await nullSpaceProjector(native, {
      momentsFile: stats.used.file, matrix: stats.matrix, n: stats.nFf, threshold, cacheDir: o.cacheDir,
      ...(o.threads !== undefined ? { threads: o.threads } : {}), ...(o.signal ? { signal: o.signal } : {}),
    });
    return { dimension: projector.dimension, apply: (x) => projector.apply(x) };
  };
}
