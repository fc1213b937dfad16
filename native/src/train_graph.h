#pragma once
// Training a small llama-architecture model from scratch on ggml's CPU backend: every weight
// is an F32 parameter, a step is forward + backward over a batch of equally long token rows
// (each row attends only to itself), and AdamW updates the weights in place. The graph is the
// one llama.cpp evaluates for the llama family (RMS norm, rotary embeddings in normal mode,
// SwiGLU), so the weights written out as GGUF compute the same function in llama.cpp.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml.h"

namespace graft {

struct TrainShape {
    int n_layer = 0, n_embd = 0, n_ff = 0, n_head = 0, n_head_kv = 0, n_vocab = 0;
    int seq_len = 0;  // tokens per row fed in; each row comes with seq_len + 1 ids (the last is only a target)
    int batch = 0;    // rows per step
    float rms_eps = 1e-5f;
    float rope_freq_base = 10000.0f;
    int n_threads = 1;
};

struct AdamWOptions {
    float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f;
    float weight_decay = 0.1f;  // decoupled, on matrices only (not norms)
    float grad_clip = 1.0f;     // global gradient norm; 0 = none
};

struct StepOutcome {
    double loss = 0;       // mean next-token NLL over the batch, before the update
    double grad_norm = 0;  // global gradient norm before clipping
};

// GGUF tensor name and shape (ne order) of every weight of the shape, in a fixed order.
std::vector<std::pair<std::string, std::vector<int64_t>>> llama_weight_layout(const TrainShape & shape);

class LlamaTrainer {
public:
    LlamaTrainer(const TrainShape & shape, const std::map<std::string, std::vector<float>> & weights);
    ~LlamaTrainer();
    LlamaTrainer(const LlamaTrainer &) = delete;
    LlamaTrainer & operator=(const LlamaTrainer &) = delete;

    // rows: batch × (seq_len + 1) token ids, row-major.
    StepOutcome step(const std::vector<int32_t> & rows, const AdamWOptions & options);
    // Mean next-token NLL without updating anything.
    double loss(const std::vector<int32_t> & rows);
    std::map<std::string, std::vector<float>> weights() const;
    const TrainShape & shape() const { return shape_; }
    int64_t step_count() const { return t_; }

private:
    void build();
    void set_rows(const std::vector<int32_t> & rows);
    void release();

    TrainShape shape_;
    std::vector<std::pair<std::string, ggml_tensor *>> params_;
    std::vector<bool> decayed_;
    std::vector<std::vector<float>> m_, v_;
    int64_t t_ = 0;
    ggml_backend_t backend_ = nullptr;
    ggml_context * ctx_weights_ = nullptr, * ctx_compute_ = nullptr;
    ggml_backend_buffer_t weights_buffer_ = nullptr;
    ggml_gallocr_t allocr_ = nullptr;
    ggml_cgraph * gf_ = nullptr, * gb_ = nullptr;
    ggml_tensor * tokens_ = nullptr, * positions_ = nullptr, * mask_ = nullptr, * labels_ = nullptr, * loss_ = nullptr;
};

}  // namespace graft
