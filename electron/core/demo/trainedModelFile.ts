// Writes weights trained by Graft (F32, by GGUF tensor name) as a llama-architecture GGUF that
// llama.cpp loads, in F32 or with the matrices quantised to Q8_0 (norms stay F32, as
// llama.cpp's quantiser keeps them).
import type { GraftNative, KvEntry, TrainShape } from '../native/binding.ts';
import { writeGgufFile, type TensorSource } from '../gguf/writer.ts';
import { fileTypeId } from '../models/architectures.ts';
import { llamaWeightLayout } from './initialWeights.ts';

export const trainedModelTypes = ['f32', 'q8_0'] as const;
export type TrainedModelType = (typeof trainedModelTypes)[number];

export interface TrainedModelMeta {
  name: string;
  description: string;
  contextLength: number;
  /** tokenizer.ggml.* entries */
  vocabulary: KvEntry[];
  /** Extra provenance keys (graft.*). */
  extra?: KvEntry[];
}

export function llamaHparamsKv(s: TrainShape, contextLength: number): KvEntry[] {
  return [
    { key: 'llama.context_length', type: 'u32', value: contextLength },
    { key: 'llama.embedding_length', type: 'u32', value: s.nEmbd },
    { key: 'llama.block_count', type: 'u32', value: s.nLayer },
    { key: 'llama.feed_forward_length', type: 'u32', value: s.nFf },
    { key: 'llama.attention.head_count', type: 'u32', value: s.nHead },
    { key: 'llama.attention.head_count_kv', type: 'u32', value: s.nHeadKv },
    { key: 'llama.attention.layer_norm_rms_epsilon', type: 'f32', value: s.rmsEps ?? 1e-5 },
    { key: 'llama.rope.freq_base', type: 'f32', value: s.ropeFreqBase ?? 10000 },
    { key: 'llama.rope.dimension_count', type: 'u32', value: s.nEmbd / s.nHead },
    { key: 'llama.vocab_size', type: 'u32', value: s.nVocab },
  ];
}

export function writeTrainedModel(
  native: GraftNative, path: string, shape: TrainShape, weights: Record<string, Float32Array>, type: TrainedModelType, meta: TrainedModelMeta,
): number {
  const q8Block = native.typeInfo('q8_0').blockSize;
  const tensors: TensorSource[] = llamaWeightLayout(shape).map((w) => {
    const values = weights[w.name];
    if (!values) throw new Error(`the trained weights lack ${w.name}`);
    const quantise = type === 'q8_0' && w.shape.length === 2 && w.shape[0]! % q8Block === 0;
    return { name: w.name, type: quantise ? 'q8_0' : 'f32', shape: w.shape, values: () => values };
  });
  const kv: KvEntry[] = [
    { key: 'general.architecture', type: 'str', value: 'llama' },
    { key: 'general.name', type: 'str', value: meta.name },
    { key: 'general.description', type: 'str', value: meta.description },
    { key: 'general.file_type', type: 'u32', value: fileTypeId(type === 'f32' ? 'F32' : 'Q8_0')! },
    { key: 'general.quantization_version', type: 'u32', value: 2 },
    ...llamaHparamsKv(shape, meta.contextLength),
    ...meta.vocabulary,
    ...(meta.extra ?? []),
  ];
  return writeGgufFile(native, path, kv, tensors);
}
