#include "llama_session.h"

#include <dlfcn.h>

#include <cmath>
#include <mutex>
#include <cstring>
#include <set>

#include "errors.h"
#include "ggml-backend.h"
#include "ggml.h"
#include "gguf_file.h"
#include "log_capture.h"

namespace graft {

struct CaptureState {
    std::map<std::string, int> key_weights;   // "blk.L.ffn_down.weight" → L
    std::map<std::string, int> resid_names;   // "l_out-L" → L
    EvalResult * result = nullptr;
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

bool capture_callback(ggml_tensor * t, bool ask, void * user_data) {
    auto & state = *static_cast<CaptureState *>(user_data);
    if (state.result == nullptr) return !ask;
    if (t->op == GGML_OP_MUL_MAT && t->src[0] != nullptr) {
        const auto it = state.key_weights.find(t->src[0]->name);
        if (it != state.key_weights.end()) {
            if (!ask) append_tensor(t->src[1], state.result->keys[it->second], state, std::string("the key of layer ") + std::to_string(it->second));
            return true;
        }
    }
    const auto it = state.resid_names.find(t->name);
    if (it != state.resid_names.end()) {
        if (!ask) append_tensor(t, state.result->residuals[it->second], state, t->name);
        return true;
    }
    return !ask;
}

// node-llama-cpp loads ggml's backends when it starts; when the addon runs without it
// (GRAFT_NATIVE_VARIANT set, a standalone tool), load them from the folder of the libggml
// this process uses.
void ensure_backends_loaded() {
    static std::mutex mutex;
    std::lock_guard<std::mutex> lock(mutex);
    if (ggml_backend_dev_count() > 0) return;
    Dl_info info{};
    if (dladdr(reinterpret_cast<const void *>(&ggml_backend_dev_count), &info) != 0 && info.dli_fname != nullptr) {
        std::string dir = info.dli_fname;
        const auto slash = dir.find_last_of('/');
        dir = slash == std::string::npos ? "." : dir.substr(0, slash);
        ggml_backend_load_all_from_path(dir.c_str());
    }
    if (ggml_backend_dev_count() == 0) throw GraftError("no ggml compute backend could be loaded (is node-llama-cpp installed completely?)");
}

void log_softmax_row(const float * logits, int n, float * out) {
    double max = logits[0];
    for (int i = 1; i < n; ++i) max = std::max<double>(max, logits[i]);
    double sum = 0;
    for (int i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i]) - max);
    const double log_z = max + std::log(sum);
    for (int i = 0; i < n; ++i) out[i] = static_cast<float>(logits[i] - log_z);
}

}  // namespace

LlamaSession::LlamaSession(const std::string & path, const SessionOptions & options) : capture_(std::make_unique<CaptureState>()) {
    { GgufFile validated(path); }  // clear errors for bad files before llama.cpp sees them
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
    cp.n_threads = cp.n_threads_batch = std::max(1, options.n_threads);
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.type_k = GGML_TYPE_F32;
    cp.type_v = GGML_TYPE_F32;
    cp.no_perf = true;
    cp.cb_eval = capture_callback;
    cp.cb_eval_user_data = capture_.get();
    ctx_ = llama_init_from_model(model_, cp);
    if (ctx_ == nullptr) {
        llama_model_free(model_);
        model_ = nullptr;
        const std::string why = capture.last_error();
        throw GraftError("llama.cpp could not create a context for " + path + (why.empty() ? "" : ": " + why));
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

std::vector<int32_t> LlamaSession::tokenize(const std::string & text, bool add_special) const {
    const llama_vocab * vocab = llama_model_get_vocab(model_);
    std::vector<int32_t> tokens(text.size() + 8);
    int n = llama_tokenize(vocab, text.c_str(), static_cast<int32_t>(text.size()), tokens.data(),
                           static_cast<int32_t>(tokens.size()), add_special, false);
    if (n < 0) {
        tokens.resize(static_cast<size_t>(-n));
        n = llama_tokenize(vocab, text.c_str(), static_cast<int32_t>(text.size()), tokens.data(),
                           static_cast<int32_t>(tokens.size()), add_special, false);
    }
    if (n < 0) throw GraftError("the text could not be tokenized");
    tokens.resize(static_cast<size_t>(n));
    return tokens;
}

std::string LlamaSession::token_piece(int32_t token) const {
    char buf[256];
    const int n = llama_token_to_piece(llama_model_get_vocab(model_), token, buf, sizeof(buf), 0, true);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

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
        if (l < 0 || l >= n_layer()) throw GraftError("layer " + std::to_string(l) + " is out of range (the model has " + std::to_string(n_layer()) + " layers, 0 to " + std::to_string(n_layer() - 1) + ")");
        state.key_weights["blk." + std::to_string(l) + ".ffn_down.weight"] = l;
    }
    for (int l : request.resid_layers) {
        if (l < 0 || l >= n_layer()) throw GraftError("layer " + std::to_string(l) + " is out of range (the model has " + std::to_string(n_layer()) + " layers)");
        state.resid_names["l_out-" + std::to_string(l)] = l;
    }
    if (!state.key_weights.empty() || !state.resid_names.empty()) state.result = &result;

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

}  // namespace graft
