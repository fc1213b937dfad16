#include "graph_hparams.h"

#include <cmath>

#include "errors.h"
#include "ggml.h"

namespace graft {

namespace {

bool read_number(const gguf_context * meta, const std::string & key, double & out) {
    const int64_t id = gguf_find_key(meta, key.c_str());
    if (id < 0) return false;
    switch (gguf_get_kv_type(meta, id)) {
        case GGUF_TYPE_UINT8: out = gguf_get_val_u8(meta, id); return true;
        case GGUF_TYPE_INT8: out = gguf_get_val_i8(meta, id); return true;
        case GGUF_TYPE_UINT16: out = gguf_get_val_u16(meta, id); return true;
        case GGUF_TYPE_INT16: out = gguf_get_val_i16(meta, id); return true;
        case GGUF_TYPE_UINT32: out = gguf_get_val_u32(meta, id); return true;
        case GGUF_TYPE_INT32: out = gguf_get_val_i32(meta, id); return true;
        case GGUF_TYPE_UINT64: out = static_cast<double>(gguf_get_val_u64(meta, id)); return true;
        case GGUF_TYPE_INT64: out = static_cast<double>(gguf_get_val_i64(meta, id)); return true;
        case GGUF_TYPE_FLOAT32: out = gguf_get_val_f32(meta, id); return true;
        case GGUF_TYPE_FLOAT64: out = gguf_get_val_f64(meta, id); return true;
        case GGUF_TYPE_ARRAY: {
            // Per-layer arrays (e.g. head_count_kv) are fine when every layer agrees.
            const size_t n = gguf_get_arr_n(meta, id);
            const gguf_type t = gguf_get_arr_type(meta, id);
            if (n == 0 || (t != GGUF_TYPE_UINT32 && t != GGUF_TYPE_INT32)) return false;
            const auto * v = static_cast<const int32_t *>(gguf_get_arr_data(meta, id));
            for (size_t i = 1; i < n; ++i) {
                if (v[i] != v[0]) throw GraftError(key + " differs between layers; the own graph supports uniform layers only");
            }
            out = v[0];
            return true;
        }
        default: return false;
    }
}

std::string read_string(const gguf_context * meta, const std::string & key) {
    const int64_t id = gguf_find_key(meta, key.c_str());
    if (id < 0 || gguf_get_kv_type(meta, id) != GGUF_TYPE_STRING) return "";
    return gguf_get_val_str(meta, id);
}

}  // namespace

GraphHparams read_graph_hparams(const gguf_context * meta, const std::string & path) {
    GraphHparams h;
    h.arch = read_string(meta, "general.architecture");
    if (h.arch == "llama") h.family = Family::Llama;
    else if (h.arch == "qwen2") h.family = Family::Qwen2;
    else if (h.arch == "qwen3") h.family = Family::Qwen3;
    else {
        throw GraftError(path + ": architecture '" + (h.arch.empty() ? std::string("(none)") : h.arch) +
                         "' is not supported by Graft's own graph (supported: llama and mistral-style llama, qwen2, qwen3)");
    }
    const std::string a = h.arch + ".";
    auto need = [&](const std::string & key) {
        double v = 0;
        if (!read_number(meta, a + key, v)) throw GraftError(path + " lacks the metadata key " + a + key);
        return v;
    };
    auto optional = [&](const std::string & key, double fallback) {
        double v = 0;
        return read_number(meta, a + key, v) ? v : fallback;
    };
    h.n_layer = static_cast<int>(need("block_count"));
    h.n_embd = static_cast<int>(need("embedding_length"));
    h.n_ff = static_cast<int>(need("feed_forward_length"));
    h.n_head = static_cast<int>(need("attention.head_count"));
    h.n_head_kv = static_cast<int>(optional("attention.head_count_kv", h.n_head));
    h.n_ctx_train = static_cast<int>(optional("context_length", 2048));
    if (h.n_layer <= 0 || h.n_embd <= 0 || h.n_ff <= 0 || h.n_head <= 0 || h.n_head_kv <= 0 || h.n_head % h.n_head_kv != 0) {
        throw GraftError(path + ": inconsistent dimensions in the metadata (layers, embedding, heads)");
    }
    h.head_dim = static_cast<int>(optional("attention.key_length", h.n_embd / h.n_head));
    if (static_cast<int>(optional("attention.value_length", h.head_dim)) != h.head_dim) {
        throw GraftError(path + ": different key and value head sizes are not supported by the own graph");
    }
    h.n_rot = static_cast<int>(optional("rope.dimension_count", h.head_dim));
    if (h.n_rot != h.head_dim) throw GraftError(path + ": partial rotary embeddings are not supported by the own graph");
    if (optional("expert_count", 0) > 0) throw GraftError(path + ": mixture-of-experts models are not supported by the own graph");
    h.rms_eps = static_cast<float>(optional("attention.layer_norm_rms_epsilon", 1e-5));
    h.rope_freq_base = static_cast<float>(optional("rope.freq_base", 10000.0));
    const std::string scaling = read_string(meta, a + "rope.scaling.type");
    if (!scaling.empty() && scaling != "none" && scaling != "linear") {
        throw GraftError(path + ": rope scaling '" + scaling + "' is not supported by the own graph (none and linear are)");
    }
    double factor = optional("rope.scaling.factor", optional("rope.scale_linear", 0.0));
    h.rope_freq_scale = (scaling == "none" || factor == 0.0) ? 1.0f : static_cast<float>(1.0 / factor);
    h.n_ctx_orig = static_cast<int>(optional("rope.scaling.original_context_length", h.n_ctx_train));
    const double attn_scale = optional("attention.scale", 0.0);
    h.kq_scale = attn_scale == 0.0 ? 1.0f / std::sqrt(static_cast<float>(h.head_dim)) : static_cast<float>(attn_scale);
    h.rope_mode = h.family == Family::Llama ? GGML_ROPE_TYPE_NORMAL : GGML_ROPE_TYPE_NEOX;
    h.n_vocab = static_cast<int>(optional("vocab_size", 0));
    return h;
}

}  // namespace graft
