#include "train_graph.h"

#include <cmath>
#include <limits>

#include "errors.h"

namespace graft {

namespace {

constexpr size_t kGraphSize = 16384;

void check_shape(const TrainShape & s) {
    if (s.n_layer < 1 || s.n_embd < 1 || s.n_ff < 1 || s.n_head < 1 || s.n_head_kv < 1 || s.n_vocab < 2 || s.seq_len < 1 || s.batch < 1) {
        throw GraftError("every dimension of the model to train (layers, embedding, feed-forward, heads, vocabulary, sequence length, batch) must be positive");
    }
    if (s.n_embd % s.n_head != 0) throw GraftError("the embedding width must be a multiple of the head count");
    if ((s.n_embd / s.n_head) % 2 != 0) throw GraftError("the head size must be even for rotary embeddings");
    // Grouped-query attention would need ggml's broadcasting mul_mat to be differentiated.
    if (s.n_head_kv != s.n_head) throw GraftError("training supports only as many key/value heads as query heads");
}

}  // namespace

std::vector<std::pair<std::string, std::vector<int64_t>>> llama_weight_layout(const TrainShape & s) {
    const int64_t d = s.n_embd, ff = s.n_ff, V = s.n_vocab, dkv = static_cast<int64_t>(s.n_embd / s.n_head) * s.n_head_kv;
    std::vector<std::pair<std::string, std::vector<int64_t>>> layout;
    layout.push_back({"token_embd.weight", {d, V}});
    for (int il = 0; il < s.n_layer; ++il) {
        const std::string b = "blk." + std::to_string(il) + ".";
        layout.push_back({b + "attn_norm.weight", {d}});
        layout.push_back({b + "attn_q.weight", {d, d}});
        layout.push_back({b + "attn_k.weight", {d, dkv}});
        layout.push_back({b + "attn_v.weight", {d, dkv}});
        layout.push_back({b + "attn_output.weight", {d, d}});
        layout.push_back({b + "ffn_norm.weight", {d}});
        layout.push_back({b + "ffn_gate.weight", {d, ff}});
        layout.push_back({b + "ffn_up.weight", {d, ff}});
        layout.push_back({b + "ffn_down.weight", {ff, d}});
    }
    layout.push_back({"output_norm.weight", {d}});
    layout.push_back({"output.weight", {d, V}});
    return layout;
}

LlamaTrainer::LlamaTrainer(const TrainShape & shape, const std::map<std::string, std::vector<float>> & weights) : shape_(shape) {
    check_shape(shape_);
    try {
        backend_ = ggml_backend_init_by_type(GGML_BACKEND_DEVICE_TYPE_CPU, nullptr);
        if (backend_ == nullptr) throw GraftError("ggml's CPU backend could not be started");
        ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(ggml_backend_get_device(backend_));
        auto set_threads = reinterpret_cast<ggml_backend_set_n_threads_t>(ggml_backend_reg_get_proc_address(reg, "ggml_backend_set_n_threads"));
        if (set_threads != nullptr) set_threads(backend_, std::max(1, shape_.n_threads));

        const auto layout = llama_weight_layout(shape_);
        ggml_init_params wp{ggml_tensor_overhead() * (2 * layout.size() + 16), nullptr, true};
        ctx_weights_ = ggml_init(wp);
        if (ctx_weights_ == nullptr) throw GraftError("out of memory creating the weight table");
        for (const auto & [name, ne] : layout) {
            auto it = weights.find(name);
            if (it == weights.end()) throw GraftError("the initial weights lack " + name);
            int64_t n = 1;
            for (int64_t x : ne) n *= x;
            if (static_cast<int64_t>(it->second.size()) != n) {
                throw GraftError(name + " needs " + std::to_string(n) + " values, got " + std::to_string(it->second.size()));
            }
            ggml_tensor * t = ggml_new_tensor(ctx_weights_, GGML_TYPE_F32, static_cast<int>(ne.size()), ne.data());
            ggml_set_name(t, name.c_str());
            ggml_set_param(t);
            params_.push_back({name, t});
            decayed_.push_back(ne.size() == 2);
        }
        if (weights.size() != layout.size()) throw GraftError("the initial weights name tensors this model shape does not have");
        const int64_t T = static_cast<int64_t>(shape_.seq_len) * shape_.batch;
        tokens_ = ggml_new_tensor_1d(ctx_weights_, GGML_TYPE_I32, T);
        positions_ = ggml_new_tensor_1d(ctx_weights_, GGML_TYPE_I32, shape_.seq_len);
        mask_ = ggml_new_tensor_2d(ctx_weights_, GGML_TYPE_F32, shape_.seq_len, shape_.seq_len);
        labels_ = ggml_new_tensor_2d(ctx_weights_, GGML_TYPE_F32, shape_.n_vocab, T);
        build();
        weights_buffer_ = ggml_backend_alloc_ctx_tensors(ctx_weights_, backend_);
        if (weights_buffer_ == nullptr) throw GraftError("not enough memory for the weights being trained");
        for (const auto & [name, t] : params_) ggml_backend_tensor_set(t, weights.at(name).data(), 0, ggml_nbytes(t));
        std::vector<int32_t> pos(static_cast<size_t>(shape_.seq_len));
        for (size_t i = 0; i < pos.size(); ++i) pos[i] = static_cast<int32_t>(i);
        ggml_backend_tensor_set(positions_, pos.data(), 0, ggml_nbytes(positions_));
        const size_t L = static_cast<size_t>(shape_.seq_len);
        std::vector<float> mask(L * L, -std::numeric_limits<float>::infinity());
        for (size_t q = 0; q < L; ++q) for (size_t k = 0; k <= q; ++k) mask[q * L + k] = 0.0f;
        ggml_backend_tensor_set(mask_, mask.data(), 0, ggml_nbytes(mask_));
        allocr_ = ggml_gallocr_new(ggml_backend_get_default_buffer_type(backend_));
        if (allocr_ == nullptr || !ggml_gallocr_alloc_graph(allocr_, gb_)) throw GraftError("not enough memory for the training graph");
        for (const auto & p : params_) {
            m_.emplace_back(static_cast<size_t>(ggml_nelements(p.second)), 0.0f);
            v_.emplace_back(static_cast<size_t>(ggml_nelements(p.second)), 0.0f);
        }
    } catch (...) {
        release();
        throw;
    }
}

LlamaTrainer::~LlamaTrainer() { release(); }

void LlamaTrainer::release() {
    if (allocr_) { ggml_gallocr_free(allocr_); allocr_ = nullptr; }
    if (weights_buffer_) { ggml_backend_buffer_free(weights_buffer_); weights_buffer_ = nullptr; }
    if (ctx_compute_) { ggml_free(ctx_compute_); ctx_compute_ = nullptr; }
    if (ctx_weights_) { ggml_free(ctx_weights_); ctx_weights_ = nullptr; }
    if (backend_) { ggml_backend_free(backend_); backend_ = nullptr; }
}

void LlamaTrainer::build() {
    ggml_init_params cp{ggml_tensor_overhead() * kGraphSize * 4 + ggml_graph_overhead_custom(kGraphSize, true) * 2, nullptr, true};
    ctx_compute_ = ggml_init(cp);
    if (ctx_compute_ == nullptr) throw GraftError("out of memory building the training graph");
    ggml_context * ctx = ctx_compute_;
    const TrainShape & s = shape_;
    const int64_t L = s.seq_len, B = s.batch, hd = s.n_embd / s.n_head, T = L * B;
    const float kq_scale = 1.0f / std::sqrt(static_cast<float>(hd));
    size_t p = 0;
    auto next = [&]() { return params_[p++].second; };

    ggml_tensor * tok_embd = next();
    ggml_tensor * x = ggml_get_rows(ctx, tok_embd, tokens_);
    for (int il = 0; il < s.n_layer; ++il) {
        ggml_tensor * attn_norm = next(), * wq = next(), * wk = next(), * wv = next(), * wo = next();
        ggml_tensor * ffn_norm = next(), * gate = next(), * up = next(), * down = next();
        ggml_tensor * cur = ggml_mul(ctx, ggml_rms_norm(ctx, x, s.rms_eps), attn_norm);
        // [head_dim, heads, position, row]: rope indexes positions along dimension 2.
        ggml_tensor * q = ggml_reshape_4d(ctx, ggml_mul_mat(ctx, wq, cur), hd, s.n_head, L, B);
        ggml_tensor * k = ggml_reshape_4d(ctx, ggml_mul_mat(ctx, wk, cur), hd, s.n_head_kv, L, B);
        ggml_tensor * v = ggml_reshape_4d(ctx, ggml_mul_mat(ctx, wv, cur), hd, s.n_head_kv, L, B);
        q = ggml_rope_ext(ctx, q, positions_, nullptr, static_cast<int>(hd), GGML_ROPE_TYPE_NORMAL, static_cast<int>(L), s.rope_freq_base, 1.0f, 0.0f, 1.0f, 32.0f, 1.0f);
        k = ggml_rope_ext(ctx, k, positions_, nullptr, static_cast<int>(hd), GGML_ROPE_TYPE_NORMAL, static_cast<int>(L), s.rope_freq_base, 1.0f, 0.0f, 1.0f, 32.0f, 1.0f);
        ggml_tensor * kq = ggml_mul_mat(ctx, ggml_permute(ctx, k, 0, 2, 1, 3), ggml_permute(ctx, q, 0, 2, 1, 3));  // [L_k, L_q, heads, rows]
        kq = ggml_soft_max_ext(ctx, kq, mask_, kq_scale, 0.0f);
        ggml_tensor * vt = ggml_cont(ctx, ggml_permute(ctx, v, 1, 2, 0, 3));  // [L_k, head_dim, heads, rows]
        ggml_tensor * kqv = ggml_mul_mat(ctx, vt, kq);                        // [head_dim, L_q, heads, rows]
        cur = ggml_cont_2d(ctx, ggml_permute(ctx, kqv, 0, 2, 1, 3), s.n_embd, T);
        ggml_tensor * ffn_inp = ggml_add(ctx, ggml_mul_mat(ctx, wo, cur), x);
        cur = ggml_mul(ctx, ggml_rms_norm(ctx, ffn_inp, s.rms_eps), ffn_norm);
        cur = ggml_swiglu_split(ctx, ggml_mul_mat(ctx, gate, cur), ggml_mul_mat(ctx, up, cur));
        x = ggml_add(ctx, ggml_mul_mat(ctx, down, cur), ffn_inp);
    }
    ggml_tensor * output_norm = next(), * output = next();
    ggml_tensor * logits = ggml_mul_mat(ctx, output, ggml_mul(ctx, ggml_rms_norm(ctx, x, s.rms_eps), output_norm));
    loss_ = ggml_cross_entropy_loss(ctx, logits, labels_);
    ggml_set_loss(loss_);
    ggml_set_output(loss_);

    gf_ = ggml_new_graph_custom(ctx, kGraphSize, true);
    ggml_build_forward_expand(gf_, loss_);
    // Gradient accumulators live beside the weights so they survive the allocator's reuse.
    const int n = ggml_graph_n_nodes(gf_);
    std::vector<ggml_tensor *> accs(static_cast<size_t>(n), nullptr);
    for (int i = 0; i < n; ++i) {
        ggml_tensor * node = ggml_graph_node(gf_, i);
        if (node->flags & (GGML_TENSOR_FLAG_PARAM | GGML_TENSOR_FLAG_LOSS)) {
            accs[static_cast<size_t>(i)] = ggml_new_tensor(ctx_weights_, GGML_TYPE_F32, GGML_MAX_DIMS, node->ne);
        }
    }
    gb_ = ggml_graph_dup(ctx, gf_, true);
    ggml_build_backward_expand(ctx, gb_, accs.data());
}

void LlamaTrainer::set_rows(const std::vector<int32_t> & rows) {
    const TrainShape & s = shape_;
    const size_t L = static_cast<size_t>(s.seq_len), B = static_cast<size_t>(s.batch), V = static_cast<size_t>(s.n_vocab);
    if (rows.size() != B * (L + 1)) {
        throw GraftError("a training batch needs " + std::to_string(B) + " rows of " + std::to_string(L + 1) + " tokens = " + std::to_string(B * (L + 1)) + " ids, got " + std::to_string(rows.size()));
    }
    std::vector<int32_t> inputs(B * L);
    std::vector<float> labels(B * L * V, 0.0f);
    for (size_t b = 0; b < B; ++b) {
        for (size_t i = 0; i <= L; ++i) {
            const int32_t t = rows[b * (L + 1) + i];
            if (t < 0 || static_cast<size_t>(t) >= V) throw GraftError("token id " + std::to_string(t) + " is outside the vocabulary (0.." + std::to_string(V - 1) + ")");
            if (i < L) inputs[b * L + i] = t;
            if (i > 0) labels[(b * L + i - 1) * V + static_cast<size_t>(t)] = 1.0f;
        }
    }
    ggml_backend_tensor_set(tokens_, inputs.data(), 0, ggml_nbytes(tokens_));
    ggml_backend_tensor_set(labels_, labels.data(), 0, ggml_nbytes(labels_));
}

double LlamaTrainer::loss(const std::vector<int32_t> & rows) {
    set_rows(rows);
    if (ggml_backend_graph_compute(backend_, gf_) != GGML_STATUS_SUCCESS) throw GraftError("ggml failed to compute the training graph");
    float l = 0;
    ggml_backend_tensor_get(loss_, &l, 0, sizeof(float));
    return l;
}

StepOutcome LlamaTrainer::step(const std::vector<int32_t> & rows, const AdamWOptions & o) {
    if (!(o.lr >= 0) || !(o.beta1 >= 0 && o.beta1 < 1) || !(o.beta2 >= 0 && o.beta2 < 1)) throw GraftError("AdamW needs lr ≥ 0 and betas in [0, 1)");
    set_rows(rows);
    ggml_graph_reset(gb_);
    if (ggml_backend_graph_compute(backend_, gb_) != GGML_STATUS_SUCCESS) throw GraftError("ggml failed to compute the training graph");
    StepOutcome out;
    float l = 0;
    ggml_backend_tensor_get(loss_, &l, 0, sizeof(float));
    out.loss = l;
    if (!std::isfinite(out.loss)) throw GraftError("the training loss is not finite; lower the learning rate");

    std::vector<const float *> grads;
    double n2 = 0;
    for (const auto & pr : params_) {
        ggml_tensor * g = ggml_graph_get_grad_acc(gb_, pr.second);
        if (g == nullptr) throw GraftError(pr.first + " received no gradient");
        const float * d = static_cast<const float *>(g->data);
        for (int64_t i = 0; i < ggml_nelements(g); ++i) n2 += static_cast<double>(d[i]) * d[i];
        grads.push_back(d);
    }
    out.grad_norm = std::sqrt(n2);
    const double clip = o.grad_clip > 0 && out.grad_norm > o.grad_clip ? o.grad_clip / out.grad_norm : 1.0;
    ++t_;
    const double c1 = 1.0 - std::pow(static_cast<double>(o.beta1), static_cast<double>(t_));
    const double c2 = 1.0 - std::pow(static_cast<double>(o.beta2), static_cast<double>(t_));
    for (size_t k = 0; k < params_.size(); ++k) {
        float * w = static_cast<float *>(params_[k].second->data);
        const float * g = grads[k];
        auto & m = m_[k];
        auto & v = v_[k];
        const float decay = decayed_[k] ? 1.0f - o.lr * o.weight_decay : 1.0f;
        for (size_t i = 0; i < m.size(); ++i) {
            const float gi = static_cast<float>(g[i] * clip);
            m[i] = o.beta1 * m[i] + (1 - o.beta1) * gi;
            v[i] = o.beta2 * v[i] + (1 - o.beta2) * gi * gi;
            const double mh = m[i] / c1, vh = v[i] / c2;
            w[i] = static_cast<float>(w[i] * decay - o.lr * mh / (std::sqrt(vh) + o.eps));
        }
    }
    return out;
}

std::map<std::string, std::vector<float>> LlamaTrainer::weights() const {
    std::map<std::string, std::vector<float>> out;
    for (const auto & [name, t] : params_) {
        std::vector<float> values(static_cast<size_t>(ggml_nelements(t)));
        ggml_backend_tensor_get(t, values.data(), 0, ggml_nbytes(t));
        out.emplace(name, std::move(values));
    }
    return out;
}

}  // namespace graft
