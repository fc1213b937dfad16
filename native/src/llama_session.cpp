#include "llama_session.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

#include "errors.h"
#include "ggml-backend.h"
#include "ggml.h"
#include "gguf_file.h"
#include "log_capture.h"
#include "backends.h"
#include "vocab_text.h"

namespace graft {

struct CaptureState {
    std::map<std::string, int> key_weights;   // "blk.L.ffn_down.weight" → L
    std::map<std::string, int> resid_names;   // "l_out-L" → L
    std::map<std::string, std::vector<const Patch *>> resid_patches;  // "l_out-L" → patches
    std::map<std::string, std::vector<const Patch *>> mlp_patches;    // "blk.L.ffn_down.weight" → patches
    std::string stop_weight;                  // "blk.L.ffn_down.weight": end the forward after it
    EvalResult * result = nullptr;
    bool active = false;
    std::string error;
};

namespace {

void append_tensor(const ggml_tensor * t, std::vector<float> & out, CaptureState & state, const std::string & what) {
    if (t->type != GGML_TYPE_F32 || !ggml_is_contiguous(t)) {
        state.error = what + " is not a contiguous F32 tensor in this model's graph";
        return;
    }
    const size_t n = static_cast<size_t>(ggml_nelements(t));
    const size_t at = out.size();
    out.resize(at + n);
    ggml_backend_tensor_get(t, out.data() + at, 0, n * sizeof(float));
}

// Rewrites row `position` of t (ne0 = n_embd, one row per token). The scheduler has computed
// t and nothing after it yet, and later nodes read this same buffer, so the change
// propagates exactly like a change of the model would.
void apply_patches(ggml_tensor * t, const std::vector<const Patch *> & patches, CaptureState & state, const std::string & what) {
    if (t->type != GGML_TYPE_F32 || t->nb[0] != sizeof(float)) {
        state.error = what + " is not an F32 tensor with contiguous rows in this model's graph; it cannot be patched";
        return;
    }
    std::vector<float> row(static_cast<size_t>(t->ne[0]));
    for (const Patch * p : patches) {
        if (p->position >= t->ne[1] || static_cast<int64_t>(p->values.size()) != t->ne[0]) {
            state.error = what + " has " + std::to_string(t->ne[1]) + " rows of " + std::to_string(t->ne[0]) +
                          " values here; the patch at position " + std::to_string(p->position) + " does not fit";
            return;
        }
        const size_t offset = static_cast<size_t>(p->position) * t->nb[1];
        const size_t bytes = row.size() * sizeof(float);
        if (p->mode == PatchMode::add) {
            ggml_backend_tensor_get(t, row.data(), offset, bytes);
            for (size_t i = 0; i < row.size(); ++i) row[i] += p->values[i];
            ggml_backend_tensor_set(t, row.data(), offset, bytes);
        } else {
            ggml_backend_tensor_set(t, p->values.data(), offset, bytes);
        }
    }
}

// ask = true: does the caller want node t? ask = false: t is computed; returning false ends
// the rest of the forward pass (llama_decode does not notice, the logits are then garbage).
bool capture_callback(ggml_tensor * t, bool ask, void * user_data) {
    auto & state = *static_cast<CaptureState *>(user_data);
    if (!state.active || !state.error.empty()) return !ask;
    if (t->op == GGML_OP_MUL_MAT && t->src[0] != nullptr) {
        const std::string weight = t->src[0]->name;
        const auto key = state.key_weights.find(weight);
        const auto patch = state.mlp_patches.find(weight);
        const bool stop = weight == state.stop_weight;
        if (key != state.key_weights.end() || patch != state.mlp_patches.end() || stop) {
            if (ask) return true;
            if (key != state.key_weights.end()) {
                append_tensor(t->src[1], state.result->keys[key->second], state, "the key of layer " + std::to_string(key->second));
            }
            if (patch != state.mlp_patches.end()) apply_patches(t, patch->second, state, "the MLP output of " + weight);
            return !stop;
        }
    }
    const auto resid = state.resid_names.find(t->name);
    const auto patch = state.resid_patches.find(t->name);
    if (resid != state.resid_names.end() || patch != state.resid_patches.end()) {
        if (ask) return true;
        if (patch != state.resid_patches.end()) apply_patches(t, patch->second, state, t->name);
        if (resid != state.resid_names.end()) append_tensor(t, state.result->residuals[resid->second], state, t->name);
        return true;
    }
    return !ask;
}

std::string string_kv(const GgufFile & file, const char * key) {
    const int64_t id = gguf_find_key(file.gguf(), key);
    if (id < 0 || gguf_get_kv_type(file.gguf(), id) != GGUF_TYPE_STRING) return "";
    return gguf_get_val_str(file.gguf(), id);
}

}  // namespace

LlamaSession::LlamaSession(const std::string & path, const SessionOptions & options) : capture_(std::make_unique<CaptureState>()) {
    std::string architecture;
    {
        GgufFile validated(path);  // clear errors for bad files before llama.cpp sees them
        architecture = string_kv(validated, "general.architecture");
        for (int l = 0;; ++l) {
            const TensorEntry * down = validated.find_tensor("blk." + std::to_string(l) + ".ffn_down.weight");
            if (down == nullptr) break;
            n_ff_.push_back(static_cast<int>(down->ne[0]));
        }
    }
    for (const auto & lora : options.loras) {
        GgufFile validated(lora.path);  // "file not found", "not a GGUF file", truncation
        const std::string type = string_kv(validated, "general.type");
        if (type != "adapter") {
            throw GraftError(lora.path + " is not a LoRA adapter (its general.type is '" + type + "', not 'adapter'); give an adapter GGUF, not a model");
        }
        const std::string arch = string_kv(validated, "general.architecture");
        if (arch != architecture) {
            throw GraftError("the LoRA adapter " + lora.path + " is for architecture '" + arch + "' but the model is '" + architecture + "'");
        }
        if (!std::isfinite(lora.scale)) throw GraftError("the scale of LoRA adapter " + lora.path + " must be a finite number");
    }
    LogCapture capture;  // llama.cpp's chatter while loading stays out of the user's terminal
    ensure_backends_loaded();
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = options.n_gpu_layers;
    mp.use_extra_bufts = options.repack;
    model_ = llama_model_load_from_file(path.c_str(), mp);
    if (model_ == nullptr) {
        const std::string why = capture.last_error();
        throw GraftError("llama.cpp could not load " + path + (why.empty() ? "" : ": " + why));
    }
    const int train_ctx = llama_model_n_ctx_train(model_);
    n_ctx_ = options.n_ctx > 0 ? options.n_ctx : train_ctx;
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = static_cast<uint32_t>(n_ctx_);
    cp.n_batch = cp.n_ubatch = static_cast<uint32_t>(n_ctx_);
    cp.n_seq_max = 1;
    // One KV stream shared by all sequence ids: score() packs several short sequences into
    // one decode, while a single sequence still gets the whole context.
    cp.kv_unified = true;
    cp.n_threads = cp.n_threads_batch = std::max(1, options.n_threads);
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.type_k = GGML_TYPE_F32;
    cp.type_v = GGML_TYPE_F32;
    cp.no_perf = true;
    cp.cb_eval = capture_callback;
    cp.cb_eval_user_data = capture_.get();
    n_threads_ = static_cast<int>(cp.n_threads);
    n_gpu_layers_ = options.n_gpu_layers;
    ctx_ = llama_init_from_model(model_, cp);
    if (ctx_ == nullptr) {
        llama_model_free(model_);
        model_ = nullptr;
        const std::string why = capture.last_error();
        throw GraftError("llama.cpp could not create a context for " + path + (why.empty() ? "" : ": " + why));
    }
    try {
        apply_loras(options.loras, capture);
    } catch (...) {
        llama_free(ctx_);
        llama_model_free(model_);  // also frees the adapters loaded so far
        ctx_ = nullptr;
        model_ = nullptr;
        throw;
    }
}

void LlamaSession::apply_loras(const std::vector<LoraAdapterSpec> & loras, LogCapture & capture) {
    if (loras.empty()) return;
    std::vector<llama_adapter_lora *> adapters;
    std::vector<float> scales;
    for (const auto & lora : loras) {
        llama_adapter_lora * adapter = llama_adapter_lora_init(model_, lora.path.c_str());
        if (adapter == nullptr) {
            const std::string why = capture.last_error();
            throw GraftError("llama.cpp could not load the LoRA adapter " + lora.path + (why.empty() ? "" : ": " + why));
        }
        adapters.push_back(adapter);
        scales.push_back(lora.scale);
    }
    if (llama_set_adapters_lora(ctx_, adapters.data(), adapters.size(), scales.data()) != 0) {
        const std::string why = capture.last_error();
        throw GraftError("llama.cpp could not apply the LoRA adapters" + (why.empty() ? std::string() : ": " + why));
    }
}

LlamaSession::~LlamaSession() {
    LogCapture quiet;
    if (ctx_) llama_free(ctx_);
    if (model_) llama_model_free(model_);
}

int LlamaSession::n_layer() const { return llama_model_n_layer(model_); }
int LlamaSession::n_embd() const { return llama_model_n_embd(model_); }
int LlamaSession::n_vocab() const { return llama_vocab_n_tokens(llama_model_get_vocab(model_)); }

int LlamaSession::n_ff(int layer) const {
    return layer >= 0 && layer < static_cast<int>(n_ff_.size()) ? n_ff_[static_cast<size_t>(layer)] : 0;
}

int32_t LlamaSession::bos_token_if_added() const {
    const llama_vocab * vocab = llama_model_get_vocab(model_);
    return llama_vocab_get_add_bos(vocab) ? llama_vocab_bos(vocab) : -1;
}

int32_t LlamaSession::bos_token() const {
    const llama_token bos = llama_vocab_bos(llama_model_get_vocab(model_));
    return bos == LLAMA_TOKEN_NULL ? -1 : bos;
}

void LlamaSession::check_layer(int layer) const {
    if (layer < 0 || layer >= n_layer()) {
        throw GraftError("layer " + std::to_string(layer) + " is out of range (the model has " + std::to_string(n_layer()) +
                         " layers, 0 to " + std::to_string(n_layer() - 1) + ")");
    }
}

void LlamaSession::set_control_vector(int layer, const float * d, size_t n) {
    LogCapture capture;  // llama.cpp reports every change at info level
    if (d == nullptr) {
        llama_set_adapter_cvec(ctx_, nullptr, 0, n_embd(), -1, -1);
        return;
    }
    check_layer(layer);
    // llama.cpp keeps no control vector for layer 0: its buffer starts at layer 1.
    if (layer == 0) throw GraftError("llama.cpp's control vectors cannot act on layer 0; use layer 1 or deeper");
    if (static_cast<int>(n) != n_embd()) throw GraftError("a control vector needs " + std::to_string(n_embd()) + " values, got " + std::to_string(n));
    std::vector<float> data(static_cast<size_t>(n_embd()) * static_cast<size_t>(n_layer() - 1), 0.0f);
    std::copy(d, d + n, data.begin() + static_cast<size_t>(layer - 1) * n);
    if (llama_set_adapter_cvec(ctx_, data.data(), data.size(), n_embd(), layer, layer) != 0) {
        throw GraftError("llama.cpp refused the control vector: " + capture.last_error());
    }
}

std::vector<int32_t> LlamaSession::tokenize(const std::string & text, bool add_special) const {
    return tokenize_text(model_, text, add_special);
}

std::string LlamaSession::token_piece(int32_t token) const { return token_text(model_, token); }

EvalResult LlamaSession::evaluate(const std::vector<int32_t> & tokens, const CaptureRequest & request) {
    if (tokens.empty()) throw GraftError("the text is empty: there is nothing to evaluate");
    if (static_cast<int>(tokens.size()) > n_ctx_) {
        throw GraftError("the text is " + std::to_string(tokens.size()) + " tokens long but the context holds " +
                         std::to_string(n_ctx_) + "; shorten it");
    }
    const int n_vocab_ = n_vocab();
    for (int32_t t : tokens) {
        if (t < 0 || t >= n_vocab_) throw GraftError("token id " + std::to_string(t) + " is outside the vocabulary");
    }
    EvalResult result;
    CaptureState & state = *capture_;
    state = CaptureState{};
    for (int l : request.key_layers) {
        check_layer(l);
        state.key_weights["blk." + std::to_string(l) + ".ffn_down.weight"] = l;
    }
    for (int l : request.resid_layers) {
        check_layer(l);
        state.resid_names["l_out-" + std::to_string(l)] = l;
    }
    for (const Patch & p : request.patches) {
        check_layer(p.layer);
        if (p.position < 0 || p.position >= static_cast<int>(tokens.size())) {
            throw GraftError("patch position " + std::to_string(p.position) + " is outside the text (positions 0 to " +
                             std::to_string(tokens.size() - 1) + ")");
        }
        if (static_cast<int>(p.values.size()) != n_embd()) {
            throw GraftError("a patch needs n_embd = " + std::to_string(n_embd()) + " values, got " + std::to_string(p.values.size()));
        }
        if (p.site == PatchSite::resid) state.resid_patches["l_out-" + std::to_string(p.layer)].push_back(&p);
        else state.mlp_patches["blk." + std::to_string(p.layer) + ".ffn_down.weight"].push_back(&p);
    }
    if (request.stop_after_layer >= 0) {
        check_layer(request.stop_after_layer);
        if (request.logprobs) throw GraftError("a forward pass stopped after a layer has no logits; ask for logprobs: false");
        for (int l : request.key_layers) {
            if (l > request.stop_after_layer) throw GraftError("the key of layer " + std::to_string(l) + " is deeper than the stop after layer " + std::to_string(request.stop_after_layer));
        }
        for (int l : request.resid_layers) {
            if (l >= request.stop_after_layer) throw GraftError("the residual after layer " + std::to_string(l) + " is not computed when stopping inside layer " + std::to_string(request.stop_after_layer));
        }
        state.stop_weight = "blk." + std::to_string(request.stop_after_layer) + ".ffn_down.weight";
    }
    state.result = &result;
    state.active = !state.key_weights.empty() || !state.resid_names.empty() || !state.resid_patches.empty() ||
                   !state.mlp_patches.empty() || !state.stop_weight.empty();

    LogCapture capture;
    llama_memory_clear(llama_get_memory(ctx_), true);
    llama_batch batch = llama_batch_init(static_cast<int32_t>(tokens.size()), 0, 1);
    for (size_t i = 0; i < tokens.size(); ++i) {
        batch.token[i] = tokens[i];
        batch.pos[i] = static_cast<llama_pos>(i);
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = 1;
    }
    batch.n_tokens = static_cast<int32_t>(tokens.size());
    const int rc = llama_decode(ctx_, batch);
    llama_batch_free(batch);
    state.result = nullptr;
    state.active = false;
    if (rc != 0) {
        const std::string why = capture.last_error();
        throw GraftError("llama.cpp failed to evaluate the tokens (llama_decode returned " + std::to_string(rc) + (why.empty() ? ")" : "): " + why));
    }
    if (!state.error.empty()) throw GraftError(state.error);

    result.n_tokens = static_cast<int>(tokens.size());
    result.n_vocab = n_vocab_;
    if (request.logprobs) {
        result.logprobs.resize(static_cast<size_t>(result.n_tokens) * n_vocab_);
        for (int i = 0; i < result.n_tokens; ++i) {
            log_softmax_row(llama_get_logits_ith(ctx_, i), n_vocab_, result.logprobs.data() + static_cast<size_t>(i) * n_vocab_);
        }
    }
    return result;
}

ScoreOutcome LlamaSession::score(const std::vector<ScoreSequence> & sequences, const ScoreOptions & options) {
    capture_->active = false;  // nothing to capture: the eval callback declines every node
    LogCapture capture;
    try {
        return score_sequences(ctx_, n_ctx_, sequences, options);
    } catch (const GraftError & e) {
        const std::string why = capture.last_error();
        if (why.empty()) throw;
        throw GraftError(std::string(e.what()) + ": " + why);
    }
}

}  // namespace graft
