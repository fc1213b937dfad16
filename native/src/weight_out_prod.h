#pragma once
// The gradient of mul_mat(W, x) with respect to x is out_prod(W, gradᵀ). ggml's CPU
// out_prod dequantises every row of a quantised (or F16) W once per output token, which
// makes backward through quantised weights many times slower than forward. This replaces
// such nodes in a backward graph with a custom op that dequantises each weight block once
// and accumulates all tokens from it (same result, different summation order).
#include "ggml.h"

namespace graft {

class GraphModel;

// Rewrites, in place, every OUT_PROD node of `graph` whose first source is a weight of
// `model`. Returns how many nodes were replaced. CPU only: other backends keep ggml's op.
int replace_weight_out_prods(ggml_context * ctx, ggml_cgraph * graph, const GraphModel & model);

}  // namespace graft
