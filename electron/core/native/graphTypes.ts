// Types of graft_native's own-graph API (native/src/napi_graph.cpp).

/** Hook points of a layer, in forward order. `resid_out` (alias `resid`) is llama.cpp's l_out-L. */
export const graphSites = ['resid_in', 'attn_out', 'mlp_key', 'mlp_out', 'resid_out'] as const;
export type GraphSite = (typeof graphSites)[number] | 'resid';

export interface RowRef {
  prompt: number;
  pos: number;
}

export interface GraphDelta {
  layer: number;
  site: GraphSite;
  /** Where the same vector is added. */
  rows: RowRef[];
  /** n_embd values (n_ff for mlp_key). */
  values: Float32Array;
}

/** ΔW = scale · Σ_j u_j v_jᵀ on blk.<layer>.ffn_down.weight. */
export interface GraphOverlay {
  layer: number;
  rank: number;
  /** rank × n_embd, u_j contiguous. */
  u: Float32Array;
  /** rank × n_ff, v_j contiguous. */
  v: Float32Array;
  scale?: number;
}

export interface GraphRequest {
  prompts: Int32Array[];
  /** Start at this layer from `inputStates` (the residual entering it, tokens × n_embd). */
  fromLayer?: number;
  inputStates?: Float32Array;
  deltas?: GraphDelta[];
  overlays?: GraphOverlay[];
  logitRows?: RowRef[];
  allLogits?: boolean;
  captures?: { layer: number; site: GraphSite }[];
  /** weight · −log p(token) at row. */
  targets?: (RowRef & { token: number; weight?: number })[];
  /** weight · KL(reference ‖ model) at row; logprobs has n_vocab entries. */
  references?: (RowRef & { logprobs: Float32Array; weight?: number })[];
  /**
   * Compute each prompt only from its first delta or output row on, taking the earlier tokens'
   * attention keys and values from one forward pass (they cannot depend on the deltas). The same
   * results, fewer tokens per Adam step. Only runs with gradients (and optimize) use it; ignored
   * with captures or allLogits.
   */
  reusePrefix?: boolean;
}

export interface GraphCapture {
  layer: number;
  site: GraphSite;
  width: number;
  /** tokens × width, prompts concatenated. */
  values: Float32Array;
}

export interface GraphResult {
  nVocab: number;
  rows: RowRef[];
  /** rows × nVocab log-probabilities. */
  logprobs: Float32Array;
  captures: GraphCapture[];
  nll: number;
  kl: number;
  loss: number;
  /** Tokens the graph computed: fewer than the prompts hold when a prefix was reused. */
  computedTokens: number;
  /** d loss / d delta for each delta (only with backward). */
  gradients: Float32Array[];
}

export interface AdamOptions {
  steps?: number;
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Adds weightDecay · ‖δ‖² to the loss. */
  weightDecay?: number;
  /** Adds normPenalty · ‖δ‖ to the loss (ROME's weight decay: the norm, not squared); an array gives each delta its own. */
  normPenalty?: number | number[];
  /** Per delta; the delta is rescaled onto this norm after each step when longer. */
  maxNorm?: number[];
  stopLoss?: number;
}

export interface StepReport {
  step: number;
  loss: number;
  nll: number;
  kl: number;
  deltaNorms: number[];
}

export interface OptimizeResult {
  result: GraphResult;
  deltas: Float32Array[];
  steps: StepReport[];
  cancelled: boolean;
}

export interface GraphModelInfo {
  arch: string;
  nLayer: number;
  nEmbd: number;
  nFf: number;
  nHead: number;
  nHeadKv: number;
  nVocab: number;
  contextLength: number;
  device: string;
  threads: number;
}

export interface NativeGraphModel {
  readonly info: GraphModelInfo;
  tokenize(text: string, addSpecial?: boolean): Int32Array;
  tokenPiece(token: number): string;
  run(request: GraphRequest, options?: { backward?: boolean }): Promise<GraphResult>;
  optimize(request: GraphRequest, adam?: AdamOptions, onStep?: (report: StepReport) => void): Promise<OptimizeResult>;
  cancel(): void;
  setThreads(threads: number): void;
  dispose(): void;
}

export interface GraphModelOptions {
  threads?: number;
  gpu?: boolean;
  /** false: backward uses ggml's own out_prod for weights (slower; for comparisons). */
  rowOnceOutProd?: boolean;
  /** Dequantise the differentiated layers' weights to F32 for backward (default: on GPUs only). */
  dequantizeForBackward?: boolean;
}
