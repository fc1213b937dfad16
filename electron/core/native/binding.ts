// Typed access to graft_native, the C++ addon in native/. One module is built per
// node-llama-cpp binary variant (cpu, cuda, vulkan); we load the one matching the variant
// node-llama-cpp selected, so the process holds a single copy of ggml and llama.cpp.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import { appRoot, unpackedPath } from '../appPaths.ts';
import type { GraphModelOptions, NativeGraphModel } from './graphTypes.ts';

export type KvType = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'u64' | 'i64' | 'f32' | 'f64' | 'bool' | 'str' | 'arr';
export type KvScalar = number | bigint | boolean | string;

export interface KvEntry {
  key: string;
  type: KvType;
  value: KvScalar | KvScalar[];
  itemType?: KvType;
  /** Arrays: the full element count (value may hold fewer, see truncated). */
  length?: number;
  truncated?: boolean;
}

export interface TensorEntry {
  name: string;
  type: string;
  typeId: number;
  /** ggml order: shape[0] is the row length. */
  shape: number[];
  offset: number;
  fileOffset: number;
  size: number;
}

export interface GgufInspection {
  version: number;
  alignment: number;
  dataOffset: number;
  fileSize: number;
  kv: KvEntry[];
  tensors: TensorEntry[];
}

export interface TensorReplacement {
  name: string;
  type: string;
  /** Values to encode as `type`; without f32 or raw the source tensor is re-encoded. */
  f32?: Float32Array;
  raw?: Uint8Array;
}

export interface RewriteOptions {
  replace?: TensorReplacement[];
  setKv?: KvEntry[];
  removeKv?: string[];
}

export interface RewriteResult {
  bytesWritten: number;
  tensorsReplaced: number;
  tensorsCopied: number;
}

export interface TensorSpec {
  name: string;
  type: string;
  shape: number[];
}

export interface NativeGgufWriter {
  next(): TensorSpec | null;
  writeF32(values: Float32Array): void;
  writeRaw(bytes: Uint8Array): void;
  finish(): number;
  abort(): void;
}

export interface TypeInfo {
  id: number;
  name: string;
  blockSize: number;
  typeSize: number;
  quantized: boolean;
  canEncode: boolean;
}

export interface BuildInfo {
  llamaCppCommit: string;
  ggmlBaseLibrary: string;
  ggmlLibrary: string;
  llamaLibrary: string;
  addonFile: string;
}

export interface LoraAdapter {
  path: string;
  /** Multiplies the adapter's effect (llama.cpp: scale · alpha / rank). Default 1. */
  scale?: number;
}

export interface SessionOptions {
  contextSize?: number;
  threads?: number;
  gpuLayers?: number;
  /** false: keep quantised weights in their file layout (llama.cpp's repacked CPU kernels round differently). */
  repack?: boolean;
  /** LoRA adapters applied to every evaluation of the session. */
  lora?: LoraAdapter[];
}

/**
 * Activation patching: row `position` of a hooked tensor is changed inside the forward
 * pass, before any later node reads it. 'resid' is l_out-L (the residual stream after
 * layer L); 'mlp_out' is the output of the matmul with blk.L.ffn_down.weight.
 */
export interface ActivationPatch {
  layer: number;
  site: 'resid' | 'mlp_out';
  position: number;
  mode: 'add' | 'replace';
  /** n_embd values. */
  values: Float32Array;
}

export interface EvaluateRequest {
  keyLayers?: number[];
  residualLayers?: number[];
  logprobs?: boolean;
  patches?: ActivationPatch[];
  /** End the forward pass once blk.L.ffn_down has run (needs logprobs: false). */
  stopAfterLayer?: number;
}

export interface MomentsLayerTarget {
  layer: number;
  /** The final .moments file, written only when the job completes. */
  file: string;
  /** The checkpoint kept while the job runs (resumed from when present). */
  checkpoint: string;
}

export interface NativeMomentsRequest {
  layers: MomentsLayerTarget[];
  modelSha256: string;
  corpusSha256: string;
  /** At most this long between checkpoints (default 60; 0 = after every chunk). */
  checkpointSeconds?: number;
}

export interface MomentsProgress {
  tokensDone: number;
  tokensTotal: number;
}

export interface NativeMomentsOutcome {
  cancelled: boolean;
  tokensDone: number;
  tokensTotal: number;
  layers: { layer: number; nFf: number; n: number; file: string; resumedFrom: number }[];
}

export interface NativeMomentsJob {
  done: Promise<NativeMomentsOutcome>;
  /** Stops the job after the current chunk; it then writes its checkpoints and resolves with cancelled: true. */
  cancel(): void;
}

export interface EvaluateResult {
  nTokens: number;
  nVocab: number;
  /** nTokens × nVocab log-probabilities of the next token, row per position. */
  logprobs?: Float32Array;
  /** Per layer: nTokens × n_ff MLP keys (the input of blk.L.ffn_down.weight). */
  keys: Record<string, Float32Array>;
  /** Per layer: nTokens × n_embd residual stream after the layer (l_out-L). */
  residuals: Record<string, Float32Array>;
}

/**
 * One token sequence to score, evaluated as given (positions from 0; the caller decides
 * about BOS). Targets j in [scoreFrom, scoreTo) get -log p(tokens[j] | tokens[0..j-1]).
 */
export interface ScoreSequenceRequest {
  tokens: Int32Array;
  /** First scored target (default 1: token 0 has no prediction before it). */
  scoreFrom?: number;
  /** One past the last scored target (default tokens.length). */
  scoreTo?: number;
  /** Positions p whose full next-token log-prob row (given tokens[0..p]) is returned. */
  rows?: number[];
}

export interface ScoreSequenceResult {
  /** Per target, natural-log NLL computed in double in native code. */
  nll: Float64Array;
  /** rows.length × nVocab log-probabilities (absent when no rows were asked for). */
  rows?: Float32Array;
}

export interface ScoreOptions {
  /**
   * At most this many sequences share one decode, side by side in the context (0: as many as
   * fit, ≤ 256). Default 1: on the CPU packing measured slower than a decode per sequence.
   */
  maxSequencesPerDecode?: number;
}

export interface ScoreResult {
  sequences: ScoreSequenceResult[];
  nVocab: number;
  /** llama_decode calls made. */
  decodes: number;
  tokensEvaluated: number;
}

export interface NativeLlamaSession {
  readonly nLayer: number;
  readonly nEmbd: number;
  readonly nVocab: number;
  readonly contextSize: number;
  /** The vocabulary's BOS token (null when it has none). */
  readonly bosToken: number | null;
  /** Whether tokenize(text, true) starts texts with BOS (the vocabulary's add_bos). */
  readonly addsBos: boolean;
  tokenize(text: string, addSpecial?: boolean): Int32Array;
  tokenPiece(token: number): string;
  evaluate(tokens: Int32Array, request?: EvaluateRequest): Promise<EvaluateResult>;
  /** Per-token NLLs (and chosen log-prob rows) of many sequences, off the main thread, with the session's LoRA adapters. */
  score(sequences: ScoreSequenceRequest[], options?: ScoreOptions): Promise<ScoreResult>;
  /**
   * llama.cpp's own control vector: values added to l_out-L at every position (null
   * clears it; layer 0 is not supported by llama.cpp). An independent check of patching.
   */
  setControlVector(layer: number, values: Float32Array | null): void;
  /** Σ k kᵀ / n over the tokens, in context-sized chunks; see electron/core/stats/. */
  secondMoments(tokens: Int32Array, request: NativeMomentsRequest, onProgress?: (p: MomentsProgress) => void): NativeMomentsJob;
  dispose(): void;
}

export interface CholeskyFactor {
  readonly size: number;
  readonly logDeterminant: number;
  solve(b: Float64Array): Float64Array;
}

export interface NullSpaceBasis {
  /** all n eigenvalues, ascending */
  eigenvalues: Float64Array;
  side: 'below' | 'atOrAbove';
  /** m × n row-major, m = min(#below, #atOrAbove): unit eigenvectors of that side */
  vectors: Float64Array;
}

/** A llama-architecture model trained from scratch (native/src/train_graph.h). */
export interface TrainShape {
  nLayer: number;
  nEmbd: number;
  nFf: number;
  nHead: number;
  /** Must equal nHead. */
  nHeadKv: number;
  nVocab: number;
  /** Tokens per row fed in; a batch holds `batch` rows of seqLen + 1 ids (the last only a target). */
  seqLen: number;
  batch: number;
  rmsEps?: number;
  ropeFreqBase?: number;
  threads?: number;
}

export interface AdamWSettings {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled, on matrices only. */
  weightDecay?: number;
  /** Global gradient-norm clip; 0 = none. */
  gradClip?: number;
}

export interface NativeTrainer {
  /** Forward, backward and one AdamW update; the loss and gradient norm are from before it. */
  step(rows: Int32Array, adamw: AdamWSettings): Promise<{ loss: number; gradNorm: number }>;
  /** Mean next-token NLL of a batch, no update. */
  loss(rows: Int32Array): Promise<number>;
  /** Copies of the current weights by GGUF tensor name. */
  weights(): Record<string, Float32Array>;
  dispose(): void;
}

export interface GraftNative {
  /** Weights by GGUF tensor name in ggml (ne) order, F32; every tensor of the shape must be given. */
  createTrainer(shape: TrainShape, weights: Record<string, Float32Array>): NativeTrainer;
  openLlamaSession(path: string, options?: SessionOptions): Promise<NativeLlamaSession>;
  openGraphModel(path: string, options?: GraphModelOptions): Promise<NativeGraphModel>;
  /** Cholesky factor of a symmetric positive-definite n × n matrix (row-major) + ridge·I, in double. */
  factorSpd(matrix: Float64Array, n: number, ridge?: number): Promise<CholeskyFactor>;
  /**
   * Spectral split of a symmetric (positive semi-definite) n × n matrix (row-major) at
   * `threshold`, in double, off the main thread: all eigenvalues, ascending, and unit
   * eigenvectors for the smaller side only — those with eigenvalue < threshold ('below') or
   * those ≥ threshold ('atOrAbove'), whichever are fewer (ties: 'below'). `vectors` holds them
   * as rows (count × n), in ascending order of their eigenvalues. AlphaEdit's null-space
   * projector is V Vᵀ for 'below' and I − V Vᵀ for 'atOrAbove'. Rejects a matrix with a
   * non-finite value or one that is not symmetric (relative tolerance 1e-9). The array is read
   * in place: do not write to it until the promise settles. `threads` (default 1) share the
   * tridiagonalisation and the back-transformation; aborting `signal` rejects the promise
   * ("…cancelled") at the computation's next checkpoint.
   */
  nullSpaceBasis(matrix: Float64Array, n: number, threshold: number, options?: { threads?: number; signal?: AbortSignal }): Promise<NullSpaceBasis>;
  buildInfo(): BuildInfo;
  inspect(path: string, options?: { maxArrayValues?: number }): GgufInspection;
  readTensor(path: string, name: string): { type: string; shape: number[]; values: Float32Array };
  rewrite(source: string, output: string, options?: RewriteOptions): Promise<RewriteResult>;
  GgufWriter: new (path: string, kv: KvEntry[], tensors: TensorSpec[], alignment?: number) => NativeGgufWriter;
  encode(values: Float32Array, type: string, valuesPerRow?: number): Uint8Array;
  decode(bytes: Uint8Array, type: string, count: number): Float32Array;
  typeInfo(type: string): TypeInfo;
}

export const nativeVariants = ['cpu', 'cuda', 'vulkan'] as const;
export type NativeVariant = (typeof nativeVariants)[number];

// The addons' RUNPATH ($ORIGIN/../../../node_modules/@node-llama-cpp/…) finds node-llama-cpp's
// ggml and llama libraries from here in a checkout and in app.asar.unpacked alike.
export const nativeBuildDir = unpackedPath(path.join(appRoot, 'native', 'build', 'Release'));

const loaded = new Map<NativeVariant, GraftNative>();

export function nativeModulePath(variant: NativeVariant): string {
  return path.join(nativeBuildDir, `graft_native-${variant}.node`);
}

export function variantForGpu(gpu: string | false): NativeVariant {
  if (gpu === false) return 'cpu';
  if (gpu === 'cuda' || gpu === 'vulkan') return gpu;
  throw new Error(`node-llama-cpp selected the '${gpu}' backend, for which Graft has no native build on this platform`);
}

export function loadNativeVariant(variant: NativeVariant): GraftNative {
  const cached = loaded.get(variant);
  if (cached) return cached;
  const file = nativeModulePath(variant);
  if (!fs.existsSync(file)) {
    throw new Error(`Graft's native addon for the ${variant} backend is not built (${file} is missing); run \`npm run build:native\``);
  }
  const require = createRequire(import.meta.url);
  const addon = require(file) as GraftNative;
  loaded.set(variant, addon);
  return addon;
}

let selected: Promise<GraftNative> | undefined;

/**
 * The addon for the backend node-llama-cpp uses in this process (GRAFT_NATIVE_VARIANT
 * overrides the choice).
 */
export function loadNative(): Promise<GraftNative> {
  selected ??= (async () => {
    const forced = process.env.GRAFT_NATIVE_VARIANT;
    if (forced) {
      if (!nativeVariants.includes(forced as NativeVariant)) {
        throw new Error(`GRAFT_NATIVE_VARIANT must be one of ${nativeVariants.join(', ')}, got '${forced}'`);
      }
      return loadNativeVariant(forced as NativeVariant);
    }
    const { getSharedLlama } = await import('../models/llama.ts');
    const llama = await getSharedLlama();
    return loadNativeVariant(variantForGpu(llama.gpu));
  })();
  return selected;
}
