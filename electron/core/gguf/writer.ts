// Writing a new GGUF tensor by tensor, so that generated models larger than memory never
// exist whole in JS. Nothing appears under the final name until finish() succeeds.
import type { GraftNative, KvEntry, NativeGgufWriter, TensorSpec } from '../native/binding.ts';

export interface TensorSource extends TensorSpec {
  /** Produces the tensor's values (ggml order) when it is its turn to be written. */
  values: () => Float32Array;
}

export function writeGgufFile(native: GraftNative, path: string, kv: KvEntry[], tensors: TensorSource[]): number {
  const writer: NativeGgufWriter = new native.GgufWriter(path, kv, tensors.map(({ name, type, shape }) => ({ name, type, shape })));
  try {
    for (const tensor of tensors) writer.writeF32(tensor.values());
    return writer.finish();
  } catch (error) {
    writer.abort();
    throw error;
  }
}
