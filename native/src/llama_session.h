#pragma once
// The model exactly as llama.cpp runs it: our own llama_model/llama_context on the same GGUF
// (mmap shares the weight pages with node-llama-cpp), with an eval callback that copies out
// the MLP keys (the input of blk.L.ffn_down.weight) and residual stream (l_out-L) of chosen
// layers. F32 KV cache and no flash attention, so results match exact float math.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "llama.h"
#include "token_scoring.h"

namespace graft {

class LogCapture;

struct LoraAdapterSpec {
    std::string path;
    float scale = 1.0f;
};

struct SessionOptions {
    int n_ctx = 512;
    int n_threads = 1;
    int n_gpu_layers = 0;
    // llama.cpp repacks some quantised types for faster CPU kernels; those kernels round
    // activations differently, so exact comparisons with the own graph turn it off.
    bool repack = true;
    std::vector<LoraAdapterSpec> loras;  // applied to every evaluation of the session
};

// Activation patching (causal tracing): one row of a hooked tensor is changed inside the
// eval callback before any later node reads it.
enum class PatchSite {
    resid,    // l_out-L: the residual stream after layer L
    mlp_out,  // the output of the MUL_MAT whose weight is blk.L.ffn_down.weight
};
enum class PatchMode { add, replace };

struct Patch {
    int layer = 0;
    PatchSite site = PatchSite::resid;
    int position = 0;
    PatchMode mode = PatchMode::add;
    std::vector<float> values;  // n_embd
};

struct CaptureRequest {
    std::vector<int> key_layers;
    std::vector<int> resid_layers;
    std::vector<Patch> patches;
    bool logprobs = true;
    // Stop the forward pass once blk.L.ffn_down has run (keys of deeper layers and the
    // logits are then not computed); -1 runs the whole model. Needs logprobs = false.
    int stop_after_layer = -1;
};

struct EvalResult {
    int n_tokens = 0;
    int n_vocab = 0;
    std::vector<float> logprobs;                   // n_tokens × n_vocab (log-softmax of the logits)
    std::map<int, std::vector<float>> keys;        // layer → n_tokens × n_ff
    std::map<int, std::vector<float>> residuals;   // layer → n_tokens × n_embd
};

struct CaptureState;

class LlamaSession {
public:
    LlamaSession(const std::string & path, const SessionOptions & options);
    ~LlamaSession();
    LlamaSession(const LlamaSession &) = delete;
    LlamaSession & operator=(const LlamaSession &) = delete;

    std::vector<int32_t> tokenize(const std::string & text, bool add_special) const;
    EvalResult evaluate(const std::vector<int32_t> & tokens, const CaptureRequest & request);
    // Per-token NLLs and chosen log-prob rows of many sequences, packed into as few decodes
    // as the context allows (see token_scoring.h). Uses the session's LoRA adapters.
    ScoreOutcome score(const std::vector<ScoreSequence> & sequences, const ScoreOptions & options);

    int n_layer() const;
    int n_embd() const;
    int n_vocab() const;
    int n_ctx() const { return n_ctx_; }
    int n_ff(int layer) const;
    int n_threads() const { return n_threads_; }
    int n_gpu_layers() const { return n_gpu_layers_; }
    // The vocabulary's BOS token when the model adds one to every text, else -1.
    int32_t bos_token_if_added() const;
    // The vocabulary's BOS token whether or not the model adds it, else -1.
    int32_t bos_token() const;
    std::string token_piece(int32_t token) const;

    // llama.cpp's own control vector: d added to l_out-L for every token (nullptr clears
    // it). Tests use it as an independent check of residual patching.
    void set_control_vector(int layer, const float * d, size_t n);

private:
    void check_layer(int layer) const;
    void apply_loras(const std::vector<LoraAdapterSpec> & loras, LogCapture & capture);
    std::unique_ptr<CaptureState> capture_;  // read by the eval callback llama.cpp holds
    llama_model * model_ = nullptr;
    llama_context * ctx_ = nullptr;
    int n_ctx_ = 0;
    int n_threads_ = 1;
    int n_gpu_layers_ = 0;
    std::vector<int> n_ff_;  // per layer: ne0 of blk.L.ffn_down.weight (0 when absent)
};

}  // namespace graft
