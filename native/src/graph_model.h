#pragma once
// The weights of a llama/qwen2/qwen3 GGUF as ggml tensors for Graft's own graph. On the CPU
// the tensors point straight into the read-only mmap of the file (zero copy, shared page
// cache with llama.cpp, never repacked); on a GPU they are uploaded once to device memory.
// Tokenization uses a vocab-only llama_model of the same file, so token ids always agree
// with llama.cpp's.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ggml-backend.h"
#include "ggml.h"
#include "graph_hparams.h"
#include "llama.h"

namespace graft {

struct LayerWeights {
    ggml_tensor * attn_norm = nullptr;
    ggml_tensor * wq = nullptr, * wk = nullptr, * wv = nullptr, * wo = nullptr;
    ggml_tensor * bq = nullptr, * bk = nullptr, * bv = nullptr, * bo = nullptr;
    ggml_tensor * q_norm = nullptr, * k_norm = nullptr;
    ggml_tensor * ffn_norm = nullptr;
    ggml_tensor * gate = nullptr, * up = nullptr, * down = nullptr;
    ggml_tensor * gate_b = nullptr, * up_b = nullptr, * down_b = nullptr;
};

struct GraphModelOptions {
    int n_threads = 1;
    bool gpu = false;  // use the first GPU device when there is one
    bool row_once_out_prod = true;  // false: keep ggml's out_prod in backward (for comparisons)
    // Backward on GPUs: ggml's CUDA/Vulkan out_prod takes F32 only, so quantised weights of the
    // differentiated layers are dequantised to F32 inside the graph (get_rows) and the matmuls
    // run in F32 there. -1: on GPUs only; 0: never; 1: always (lets CPU tests check the path).
    int dequantize_for_backward = -1;
};

class GgufFile;

class GraphModel {
public:
    GraphModel(const std::string & path, const GraphModelOptions & options);
    ~GraphModel();
    GraphModel(const GraphModel &) = delete;
    GraphModel & operator=(const GraphModel &) = delete;

    const GraphHparams & hparams() const { return hp_; }
    const LayerWeights & layer(int i) const { return layers_[static_cast<size_t>(i)]; }
    ggml_tensor * tok_embd() const { return tok_embd_; }
    ggml_tensor * output_norm() const { return output_norm_; }
    ggml_tensor * output() const { return output_; }
    ggml_tensor * rope_freqs() const { return rope_freqs_; }
    bool is_weight(const ggml_tensor * t) const { return t != nullptr && t->buffer == weights_buffer_ && t->buffer != nullptr; }

    // GPU backend first (when used), CPU last, as ggml_backend_sched expects.
    const std::vector<ggml_backend_t> & backends() const { return backends_; }
    ggml_backend_t main_backend() const { return backends_.front(); }
    bool uses_gpu() const { return backends_.size() > 1; }
    std::string device_description() const;
    int n_threads() const { return n_threads_; }
    bool row_once_out_prod() const { return row_once_out_prod_; }
    bool dequantize_for_backward() const { return dequantize_for_backward_; }
    void set_threads(int n);

    std::vector<int32_t> tokenize(const std::string & text, bool add_special) const;
    std::string token_piece(int32_t token) const;
    const std::string & path() const { return path_; }

private:
    ggml_tensor * require(const std::string & name, std::initializer_list<int64_t> shape) const;
    ggml_tensor * optional(const std::string & name, std::initializer_list<int64_t> shape) const;
    void load_weights(const GgufFile & file);
    void release();

    std::string path_;
    GraphHparams hp_;
    std::vector<LayerWeights> layers_;
    ggml_tensor * tok_embd_ = nullptr, * output_norm_ = nullptr, * output_ = nullptr, * rope_freqs_ = nullptr;
    std::map<std::string, ggml_tensor *> by_name_;
    ggml_context * weights_ctx_ = nullptr;
    ggml_backend_buffer_t weights_buffer_ = nullptr;
    void * map_ = nullptr;
    size_t map_size_ = 0;
    std::vector<ggml_backend_t> backends_;
    ggml_backend_t cpu_backend_ = nullptr;
    int n_threads_ = 1;
    bool row_once_out_prod_ = true;
    bool dequantize_for_backward_ = false;
    llama_model * vocab_ = nullptr;
};

}  // namespace graft
