#pragma once
// The hyperparameters the own graph needs, read from a GGUF's metadata the way llama.cpp
// reads them for the llama (incl. mistral-style), qwen2 and qwen3 families. Anything those
// families do that the graph does not implement (yarn rope, experts, fused qkv) is refused
// here with a message, instead of silently computing a different model.
#include <string>

#include "gguf.h"

namespace graft {

enum class Family { Llama, Qwen2, Qwen3 };

struct GraphHparams {
    std::string arch;
    Family family = Family::Llama;
    int n_layer = 0;
    int n_embd = 0;
    int n_ff = 0;
    int n_head = 0;
    int n_head_kv = 0;
    int head_dim = 0;
    int n_rot = 0;
    int n_vocab = 0;
    int n_ctx_train = 0;
    int n_ctx_orig = 0;
    float rms_eps = 1e-5f;
    float rope_freq_base = 10000.0f;
    float rope_freq_scale = 1.0f;
    float kq_scale = 0.0f;
    int rope_mode = 0;  // GGML_ROPE_TYPE_NORMAL or _NEOX
};

// Throws GraftError for unsupported architectures or settings.
GraphHparams read_graph_hparams(const gguf_context * meta, const std::string & path);

}  // namespace graft
