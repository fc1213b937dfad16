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

namespace graft {

struct SessionOptions {
    int n_ctx = 512;
    int n_threads = 1;
    int n_gpu_layers = 0;
    // llama.cpp repacks some quantised types for faster CPU kernels; those kernels round
    // activations differently, so exact comparisons with the own graph turn it off.
    bool repack = true;
};

struct CaptureRequest {
    std::vector<int> key_layers;
    std::vector<int> resid_layers;
    bool logprobs = true;
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

    int n_layer() const;
    int n_embd() const;
    int n_vocab() const;
    int n_ctx() const { return n_ctx_; }
    std::string token_piece(int32_t token) const;

private:
    std::unique_ptr<CaptureState> capture_;  // read by the eval callback llama.cpp holds
    llama_model * model_ = nullptr;
    llama_context * ctx_ = nullptr;
    int n_ctx_ = 0;
};

}  // namespace graft
