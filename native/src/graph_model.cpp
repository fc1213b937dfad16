#include "graph_model.h"

#include <sys/mman.h>

#include <cstring>

#include "backends.h"
#include "errors.h"
#include "gguf_file.h"
#include "log_capture.h"
#include "vocab_text.h"

namespace graft {

namespace {

std::string shape_text(const ggml_tensor * t) {
    std::string s = "[";
    for (int i = 0; i < ggml_n_dims(t); ++i) s += (i ? ", " : "") + std::to_string(t->ne[i]);
    return s + "]";
}

}  // namespace

GraphModel::GraphModel(const std::string & path, const GraphModelOptions & options)
    : path_(path), row_once_out_prod_(options.row_once_out_prod) {
    GgufFile file(path);
    hp_ = read_graph_hparams(file.gguf(), path);
    {
        LogCapture capture;
        ensure_backends_loaded();
    }

    ggml_backend_dev_t gpu = nullptr;
    if (options.gpu) {
        for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
            ggml_backend_dev_t d = ggml_backend_dev_get(i);
            if (ggml_backend_dev_type(d) == GGML_BACKEND_DEVICE_TYPE_GPU) { gpu = d; break; }
        }
    }
    try {
        if (gpu != nullptr) {
            ggml_backend_t b = ggml_backend_dev_init(gpu, nullptr);
            if (b == nullptr) throw GraftError(std::string("could not initialise the GPU device ") + ggml_backend_dev_name(gpu));
            backends_.push_back(b);
        }
        cpu_backend_ = ggml_backend_init_by_type(GGML_BACKEND_DEVICE_TYPE_CPU, nullptr);
        if (cpu_backend_ == nullptr) throw GraftError("could not initialise ggml's CPU backend");
        backends_.push_back(cpu_backend_);
        set_threads(options.n_threads);
        dequantize_for_backward_ = options.dequantize_for_backward < 0 ? uses_gpu() : options.dequantize_for_backward > 0;
        load_weights(file);
        LogCapture capture;
        llama_model_params mp = llama_model_default_params();
        mp.vocab_only = true;
        vocab_ = llama_model_load_from_file(path.c_str(), mp);
        if (vocab_ == nullptr) {
            const std::string why = capture.last_error();
            throw GraftError("llama.cpp could not read the vocabulary of " + path + (why.empty() ? "" : ": " + why));
        }
    } catch (...) {
        release();
        throw;
    }
}

GraphModel::~GraphModel() { release(); }

void GraphModel::release() {
    if (vocab_) { LogCapture quiet; llama_model_free(vocab_); vocab_ = nullptr; }
    if (weights_buffer_) { ggml_backend_buffer_free(weights_buffer_); weights_buffer_ = nullptr; }
    if (weights_ctx_) { ggml_free(weights_ctx_); weights_ctx_ = nullptr; }
    if (map_) { munmap(map_, map_size_); map_ = nullptr; }
    for (ggml_backend_t b : backends_) ggml_backend_free(b);
    backends_.clear();
}

void GraphModel::set_threads(int n) {
    n_threads_ = n < 1 ? 1 : n;
    ggml_backend_dev_t dev = ggml_backend_get_device(cpu_backend_);
    ggml_backend_reg_t reg = dev ? ggml_backend_dev_backend_reg(dev) : nullptr;
    auto * fn = reg ? reinterpret_cast<ggml_backend_set_n_threads_t>(ggml_backend_reg_get_proc_address(reg, "ggml_backend_set_n_threads")) : nullptr;
    if (fn) fn(cpu_backend_, n_threads_);
}

std::string GraphModel::device_description() const {
    if (!uses_gpu()) return "CPU";
    return std::string(ggml_backend_name(backends_.front())) + " (CPU for unsupported ops)";
}

void GraphModel::load_weights(const GgufFile & file) {
    const auto & tensors = file.tensors();
    ggml_init_params params{ggml_tensor_overhead() * (tensors.size() + 1), nullptr, true};
    weights_ctx_ = ggml_init(params);
    if (weights_ctx_ == nullptr) throw GraftError("out of memory creating the weight table");
    for (const auto & e : tensors) {
        ggml_tensor * t = ggml_new_tensor(weights_ctx_, e.type, e.n_dims, e.ne);
        ggml_set_name(t, e.name.c_str());
        by_name_[e.name] = t;
    }

    map_size_ = static_cast<size_t>(file.file_size());
    map_ = mmap(nullptr, map_size_, PROT_READ, MAP_SHARED, file.fd(), 0);
    if (map_ == MAP_FAILED) {
        map_ = nullptr;
        throw GraftError("could not map " + path_ + " into memory: " + errno_message(errno));
    }
    auto * data = static_cast<uint8_t *>(map_) + file.data_offset();
    const size_t data_size = map_size_ - static_cast<size_t>(file.data_offset());

    if (uses_gpu()) {
        ggml_backend_buffer_type_t buft = ggml_backend_get_default_buffer_type(main_backend());
        weights_buffer_ = ggml_backend_alloc_ctx_tensors_from_buft(weights_ctx_, buft);
        if (weights_buffer_ == nullptr) throw GraftError("not enough GPU memory for the weights of " + path_);
        for (const auto & e : tensors) ggml_backend_tensor_set(by_name_[e.name], data + e.offset, 0, e.size);
    } else {
        weights_buffer_ = ggml_backend_cpu_buffer_from_ptr(data, data_size);
        if (weights_buffer_ == nullptr) throw GraftError("could not wrap the mapped weights of " + path_);
        for (const auto & e : tensors) {
            if (ggml_backend_tensor_alloc(weights_buffer_, by_name_[e.name], data + e.offset) != GGML_STATUS_SUCCESS) {
                throw GraftError("tensor " + e.name + " of " + path_ + " could not be mapped");
            }
        }
    }
    ggml_backend_buffer_set_usage(weights_buffer_, GGML_BACKEND_BUFFER_USAGE_WEIGHTS);

    const int64_t E = hp_.n_embd, F = hp_.n_ff, hd = hp_.head_dim;
    const int64_t q_dim = hd * hp_.n_head, kv_dim = hd * hp_.n_head_kv;
    tok_embd_ = require("token_embd.weight", {E, -1});
    hp_.n_vocab = static_cast<int>(tok_embd_->ne[1]);
    output_norm_ = require("output_norm.weight", {E});
    output_ = optional("output.weight", {E, hp_.n_vocab});
    if (output_ == nullptr) output_ = tok_embd_;  // tied embeddings
    rope_freqs_ = optional("rope_freqs.weight", {hp_.n_rot / 2});
    if (by_name_.count("blk.0.attn_qkv.weight")) throw GraftError(path_ + " uses a fused attn_qkv tensor, which the own graph does not support yet");
    layers_.resize(static_cast<size_t>(hp_.n_layer));
    for (int il = 0; il < hp_.n_layer; ++il) {
        const std::string p = "blk." + std::to_string(il) + ".";
        LayerWeights & l = layers_[static_cast<size_t>(il)];
        l.attn_norm = require(p + "attn_norm.weight", {E});
        l.wq = require(p + "attn_q.weight", {E, q_dim});
        l.wk = require(p + "attn_k.weight", {E, kv_dim});
        l.wv = require(p + "attn_v.weight", {E, kv_dim});
        l.wo = require(p + "attn_output.weight", {q_dim, E});
        l.bq = optional(p + "attn_q.bias", {q_dim});
        l.bk = optional(p + "attn_k.bias", {kv_dim});
        l.bv = optional(p + "attn_v.bias", {kv_dim});
        l.bo = optional(p + "attn_output.bias", {E});
        if (hp_.family == Family::Qwen3) {
            l.q_norm = require(p + "attn_q_norm.weight", {hd});
            l.k_norm = require(p + "attn_k_norm.weight", {hd});
        }
        l.ffn_norm = require(p + "ffn_norm.weight", {E});
        l.gate = require(p + "ffn_gate.weight", {E, F});
        l.up = require(p + "ffn_up.weight", {E, F});
        l.down = require(p + "ffn_down.weight", {F, E});
        l.gate_b = optional(p + "ffn_gate.bias", {F});
        l.up_b = optional(p + "ffn_up.bias", {F});
        l.down_b = optional(p + "ffn_down.bias", {E});
    }
}

ggml_tensor * GraphModel::optional(const std::string & name, std::initializer_list<int64_t> shape) const {
    auto it = by_name_.find(name);
    if (it == by_name_.end()) return nullptr;
    ggml_tensor * t = it->second;
    int i = 0;
    bool ok = true;
    for (int64_t n : shape) {
        if (n >= 0 && t->ne[i] != n) ok = false;
        ++i;
    }
    for (; i < GGML_MAX_DIMS; ++i) if (t->ne[i] != 1) ok = false;
    if (!ok) throw GraftError(path_ + ": tensor " + name + " has shape " + shape_text(t) + ", which does not match the model's metadata");
    return t;
}

ggml_tensor * GraphModel::require(const std::string & name, std::initializer_list<int64_t> shape) const {
    ggml_tensor * t = optional(name, shape);
    if (t == nullptr) throw GraftError(path_ + " lacks the tensor " + name + " that a " + hp_.arch + " model needs");
    return t;
}

std::vector<int32_t> GraphModel::tokenize(const std::string & text, bool add_special) const {
    return tokenize_text(vocab_, text, add_special);
}

std::string GraphModel::token_piece(int32_t token) const { return token_text(vocab_, token); }

}  // namespace graft
