#include "graph_run.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>

#include "errors.h"
#include "vocab_text.h"
#include "weight_out_prod.h"

namespace graft {

Site parse_site(const std::string & name) {
    if (name == "resid_in") return Site::ResidIn;
    if (name == "attn_out") return Site::AttnOut;
    if (name == "mlp_key") return Site::MlpKey;
    if (name == "mlp_out") return Site::MlpOut;
    if (name == "resid_out" || name == "resid") return Site::ResidOut;
    throw GraftError("unknown hook site '" + name + "' (use resid_in, attn_out, mlp_key, mlp_out or resid_out)");
}

const char * site_name(Site site) {
    switch (site) {
        case Site::ResidIn: return "resid_in";
        case Site::AttnOut: return "attn_out";
        case Site::MlpKey: return "mlp_key";
        case Site::MlpOut: return "mlp_out";
        case Site::ResidOut: return "resid_out";
    }
    return "?";
}

namespace {

int graph_size_for(int n_layer) { return 4096 + 512 * n_layer; }

// Per prompt: the tokens before its first delta row and its first output row, which no delta
// can reach (attention is causal). At least the last token stays computed.
std::vector<int> frozen_lengths(const GraphRequest & r) {
    std::vector<int> f;
    for (const auto & p : r.prompts) f.push_back(static_cast<int>(p.size()) - 1);
    auto limit = [&](const RowRef & row) {  // a row outside the prompts is refused later, by validate
        if (row.prompt >= 0 && row.prompt < static_cast<int>(f.size())) f[static_cast<size_t>(row.prompt)] = std::max(0, std::min(f[static_cast<size_t>(row.prompt)], row.pos));
    };
    for (const auto & d : r.deltas) for (const auto & row : d.rows) limit(row);
    for (const auto & row : r.logit_rows) limit(row);
    for (const auto & t : r.targets) limit(t.row);
    for (const auto & ref : r.references) limit(ref.row);
    return f;
}

}  // namespace

std::unique_ptr<GraphRun> GraphRun::create(GraphModel & model, const GraphRequest & request, bool with_backward) {
    // a forward pass alone gains nothing: the prefix pass would cost as much as the run
    if (!with_backward || !request.reuse_prefix || !request.captures.empty() || request.all_logits) return std::make_unique<GraphRun>(model, request, with_backward);
    std::vector<int> lengths = frozen_lengths(request);
    if (std::all_of(lengths.begin(), lengths.end(), [](int n) { return n == 0; })) return std::make_unique<GraphRun>(model, request, with_backward);
    // The prefixes' keys and values do not depend on the deltas, so a run without them gives them.
    GraphRequest plain = request;
    plain.deltas.clear();
    plain.targets.clear();
    plain.references.clear();
    plain.logit_rows.clear();
    plain.reuse_prefix = false;
    FrozenPrefix frozen;
    {
        GraphRun prefix_run(model, plain, false, GraphRunOptions{nullptr, true, true});
        prefix_run.compute(false);
        frozen = prefix_run.captured_prefix(lengths);
    }
    return std::make_unique<GraphRun>(model, request, with_backward, GraphRunOptions{&frozen, false, false});
}

GraphRun::GraphRun(GraphModel & model, const GraphRequest & request, bool with_backward, const GraphRunOptions & options)
    : model_(model), request_(request), capture_kv_(options.capture_kv), weights_as_backward_(with_backward || options.weights_as_backward) {
    validate();
    if (options.frozen) frozen_values_ = *options.frozen;
    if (with_backward && request_.deltas.empty()) throw GraftError("gradients need at least one delta to differentiate with respect to");
    if (with_backward && request_.targets.empty() && request_.references.empty()) {
        throw GraftError("gradients need a loss: give target tokens or reference distributions");
    }
    try {
        build(with_backward);
        upload_inputs();
        dequantize_weights();
    } catch (...) {
        release();
        throw;
    }
}

GraphRun::~GraphRun() { release(); }

void GraphRun::release() {
    if (sched_) { ggml_backend_sched_free(sched_); sched_ = nullptr; }
    if (static_buffer_) { ggml_backend_buffer_free(static_buffer_); static_buffer_ = nullptr; }
    if (ctx_compute_) { ggml_free(ctx_compute_); ctx_compute_ = nullptr; }
    if (ctx_static_) { ggml_free(ctx_static_); ctx_static_ = nullptr; }
}

int GraphRun::n_nodes_forward() const { return gf_ ? ggml_graph_n_nodes(gf_) : 0; }
int GraphRun::n_nodes_backward() const { return gb_ ? ggml_graph_n_nodes(gb_) : 0; }

void GraphRun::validate() const {
    const GraphHparams & hp = model_.hparams();
    const auto & r = request_;
    if (r.prompts.empty()) throw GraftError("no prompts to evaluate");
    for (size_t p = 0; p < r.prompts.size(); ++p) {
        const auto & tokens = r.prompts[p];
        if (tokens.empty()) throw GraftError("prompt " + std::to_string(p) + " is empty: there is nothing to evaluate");
        if (static_cast<int>(tokens.size()) > hp.n_ctx_train) {
            throw GraftError("prompt " + std::to_string(p) + " is " + std::to_string(tokens.size()) + " tokens long but the model's context holds " +
                             std::to_string(hp.n_ctx_train) + "; shorten it");
        }
        for (int32_t t : tokens) {
            if (t < 0 || t >= hp.n_vocab) throw GraftError("token id " + std::to_string(t) + " is outside the vocabulary (0.." + std::to_string(hp.n_vocab - 1) + ")");
        }
    }
    auto check_layer = [&](int layer, const std::string & what) {
        if (layer < 0 || layer >= hp.n_layer) {
            throw GraftError(what + ": layer " + std::to_string(layer) + " is out of range (the model has " + std::to_string(hp.n_layer) +
                             " layers, 0 to " + std::to_string(hp.n_layer - 1) + ")");
        }
        if (layer < r.from_layer) {
            throw GraftError(what + ": layer " + std::to_string(layer) + " lies before the first computed layer " + std::to_string(r.from_layer));
        }
    };
    auto check_row = [&](const RowRef & row, const std::string & what) {
        if (row.prompt < 0 || row.prompt >= static_cast<int>(r.prompts.size())) throw GraftError(what + ": prompt " + std::to_string(row.prompt) + " does not exist");
        const int n = static_cast<int>(r.prompts[static_cast<size_t>(row.prompt)].size());
        if (row.pos < 0 || row.pos >= n) {
            throw GraftError(what + ": position " + std::to_string(row.pos) + " is outside prompt " + std::to_string(row.prompt) + " (" + std::to_string(n) + " tokens)");
        }
    };
    if (r.from_layer < 0 || r.from_layer >= hp.n_layer) check_layer(r.from_layer, "the first layer");
    size_t total = 0;
    for (const auto & p : r.prompts) total += p.size();
    if (r.from_layer > 0 && r.input_states.size() != total * static_cast<size_t>(hp.n_embd)) {
        throw GraftError("starting at layer " + std::to_string(r.from_layer) + " needs the residual states entering it: tokens × n_embd = " +
                         std::to_string(total * static_cast<size_t>(hp.n_embd)) + " values");
    }
    for (const auto & d : r.deltas) {
        check_layer(d.layer, "delta");
        const size_t width = static_cast<size_t>(d.site == Site::MlpKey ? hp.n_ff : hp.n_embd);
        if (d.values.size() != width) throw GraftError("a delta at " + std::string(site_name(d.site)) + " needs " + std::to_string(width) + " values, got " + std::to_string(d.values.size()));
        if (d.rows.empty()) throw GraftError("a delta needs at least one position to be added at");
        for (const auto & row : d.rows) check_row(row, "delta");
    }
    for (const auto & o : r.overlays) {
        check_layer(o.layer, "overlay");
        if (o.rank <= 0 || o.u.size() != static_cast<size_t>(o.rank) * hp.n_embd || o.v.size() != static_cast<size_t>(o.rank) * hp.n_ff) {
            throw GraftError("an overlay of rank r needs r × n_embd values of u and r × n_ff values of v");
        }
    }
    for (const auto & row : r.logit_rows) check_row(row, "logits");
    for (const auto & c : r.captures) check_layer(c.layer, "capture");
    for (const auto & t : r.targets) {
        check_row(t.row, "target");
        if (t.token < 0 || t.token >= hp.n_vocab) throw GraftError("target token " + std::to_string(t.token) + " is outside the vocabulary");
    }
    for (const auto & ref : r.references) {
        check_row(ref.row, "reference");
        if (ref.logprobs.size() != static_cast<size_t>(hp.n_vocab)) throw GraftError("a reference distribution needs n_vocab = " + std::to_string(hp.n_vocab) + " log-probabilities");
    }
}

ggml_tensor * GraphRun::hook(ggml_tensor * x, int layer, Site site) {
    for (size_t i = 0; i < request_.deltas.size(); ++i) {
        const DeltaSpec & d = request_.deltas[i];
        if (d.layer != layer || d.site != site) continue;
        x = ggml_add(ctx_compute_, x, ggml_mul(ctx_compute_, ggml_repeat(ctx_compute_, delta_t_[i], x), delta_mask_t_[i]));
    }
    for (size_t i = 0; i < request_.captures.size(); ++i) {
        const CaptureSpec & c = request_.captures[i];
        if (c.layer != layer || c.site != site) continue;
        ggml_set_output(x);
        capture_t_[i] = x;
    }
    return x;
}

// With dequantize_weights_, a differentiated weight is read from an F32 copy made once per
// run (see dequantize_weights), so Adam steps do not dequantise it again.
ggml_tensor * GraphRun::weight_for(ggml_tensor * w) {
    if (!dequantize_weights_ || w->type == GGML_TYPE_F32) return w;
    auto it = dequantized_.find(w);
    if (it != dequantized_.end()) return it->second;
    ggml_tensor * copy = ggml_new_tensor_2d(ctx_static_, GGML_TYPE_F32, w->ne[0], w->ne[1]);
    ggml_format_name(copy, "%s (f32)", w->name);
    dequantized_[w] = copy;
    return copy;
}

void GraphRun::dequantize_weights() {
    if (dequantized_.empty()) return;
    ggml_init_params params{ggml_tensor_overhead() * (4 * dequantized_.size() + 8) + ggml_graph_overhead_custom(4 * dequantized_.size() + 8, false), nullptr, true};
    ggml_context * ctx = ggml_init(params);
    if (ctx == nullptr) throw GraftError("out of memory building the dequantisation graph");
    ggml_cgraph * g = ggml_new_graph_custom(ctx, 4 * dequantized_.size() + 8, false);
    for (const auto & [w, copy] : dequantized_) {
        ggml_build_forward_expand(g, ggml_cpy(ctx, ggml_get_rows(ctx, w, ggml_view_1d(ctx, iota_, w->ne[1], 0)), copy));
    }
    ggml_backend_sched_reset(sched_);
    const bool ok = ggml_backend_sched_alloc_graph(sched_, g) && ggml_backend_sched_graph_compute(sched_, g) == GGML_STATUS_SUCCESS;
    ggml_backend_sched_reset(sched_);
    ggml_free(ctx);
    if (!ok) throw GraftError("not enough memory to dequantise the weights of the differentiated layers");
}

ggml_tensor * GraphRun::build_layer(ggml_tensor * inp, int il) {
    ggml_context * ctx = ctx_compute_;
    const GraphHparams & hp = model_.hparams();
    const LayerWeights & w = model_.layer(il);
    const int64_t hd = hp.head_dim, T = n_tokens_;

    ggml_tensor * x = hook(inp, il, Site::ResidIn);
    ggml_tensor * cur = ggml_mul(ctx, ggml_rms_norm(ctx, x, hp.rms_eps), w.attn_norm);
    auto linear = [&](ggml_tensor * weight, ggml_tensor * bias, ggml_tensor * in) {
        ggml_tensor * y = ggml_mul_mat(ctx, weight_for(weight), in);
        return bias ? ggml_add(ctx, y, bias) : y;
    };
    ggml_tensor * q = ggml_reshape_3d(ctx, linear(w.wq, w.bq, cur), hd, hp.n_head, T);
    ggml_tensor * k = ggml_reshape_3d(ctx, linear(w.wk, w.bk, cur), hd, hp.n_head_kv, T);
    ggml_tensor * v = ggml_reshape_3d(ctx, linear(w.wv, w.bv, cur), hd, hp.n_head_kv, T);
    if (w.q_norm) q = ggml_mul(ctx, ggml_rms_norm(ctx, q, hp.rms_eps), w.q_norm);
    if (w.k_norm) k = ggml_mul(ctx, ggml_rms_norm(ctx, k, hp.rms_eps), w.k_norm);
    q = ggml_rope_ext(ctx, q, positions_, model_.rope_freqs(), hp.n_rot, hp.rope_mode, hp.n_ctx_orig, hp.rope_freq_base, hp.rope_freq_scale, 0.0f, 1.0f, 32.0f, 1.0f);
    k = ggml_rope_ext(ctx, k, positions_, model_.rope_freqs(), hp.n_rot, hp.rope_mode, hp.n_ctx_orig, hp.rope_freq_base, hp.rope_freq_scale, 0.0f, 1.0f, 32.0f, 1.0f);

    if (capture_kv_) {
        v = ggml_cont(ctx, v);  // v is a reshape view; an output must own its data
        ggml_set_output(k);
        ggml_set_output(v);
        kv_capture_t_.emplace_back(k, v);
    }

    // Attention per prompt on [head_dim, heads, L, prompts], every prompt padded to the longest
    // L: cost P·L² instead of (P·L)². Only attention sees the padding; the rest of the layer
    // runs on the real rows, gathered into the padded layout here and back below. With frozen
    // prefixes the queries are the computed rows (Lq) and the keys the whole prompts (Lk).
    const int64_t Lq = seq_len_, Lk = key_len_, P = static_cast<int64_t>(request_.prompts.size());
    auto per_prompt = [&](ggml_tensor * t, int64_t heads, int64_t len) {  // t: [hd · heads, len · P]
        // ggml's mul_mat backward cannot reduce a head broadcast when dimension 3 is > 1, so
        // with GQA and several prompts the K/V heads are repeated explicitly, in the order the
        // broadcast uses (query head h reads kv head h / (n_head / n_head_kv)).
        if (heads < hp.n_head && P > 1) {
            t = ggml_repeat_4d(ctx, ggml_reshape_4d(ctx, t, hd, 1, heads, len * P), hd, hp.n_head / heads, heads, len * P);
            heads = hp.n_head;
        }
        return ggml_reshape_4d(ctx, t, hd, heads, len, P);
    };
    auto rows_of = [&](ggml_tensor * t, int64_t heads) { return ggml_reshape_2d(ctx, t, hd * heads, T); };
    auto queries = [&](ggml_tensor * t, int64_t heads) {
        ggml_tensor * rows = rows_of(t, heads);
        return per_prompt(pad_ids_ ? ggml_get_rows(ctx, rows, pad_ids_) : rows, heads, Lq);
    };
    auto keys = [&](ggml_tensor * t, ggml_tensor * frozen) {
        if (!frozen) return queries(t, hp.n_head_kv);
        ggml_tensor * computed = ggml_mul(ctx, ggml_get_rows(ctx, rows_of(t, hp.n_head_kv), key_act_ids_), key_act_mask_);
        return per_prompt(ggml_add(ctx, computed, ggml_mul(ctx, ggml_get_rows(ctx, frozen, key_fr_ids_), key_fr_mask_)), hp.n_head_kv, Lk);
    };
    const size_t computed_layer = static_cast<size_t>(il - request_.from_layer);
    ggml_tensor * frozen_k = n_frozen_ > 0 ? frozen_kv_t_[computed_layer].first : nullptr;
    ggml_tensor * frozen_v = n_frozen_ > 0 ? frozen_kv_t_[computed_layer].second : nullptr;
    q = queries(q, hp.n_head);
    k = keys(k, frozen_k);
    v = keys(v, frozen_v);
    ggml_tensor * kq = ggml_mul_mat(ctx, ggml_permute(ctx, k, 0, 2, 1, 3), ggml_permute(ctx, q, 0, 2, 1, 3));  // [Lk, Lq, heads, prompts]
    ggml_mul_mat_set_prec(kq, GGML_PREC_F32);
    kq = ggml_soft_max_ext(ctx, kq, mask_, hp.kq_scale, 0.0f);
    ggml_tensor * vt = ggml_cont(ctx, ggml_permute(ctx, v, 1, 2, 0, 3));  // [Lk, hd, heads, prompts]
    ggml_tensor * kqv = ggml_mul_mat(ctx, vt, kq);                          // [hd, Lq, heads, prompts]
    cur = ggml_cont_2d(ctx, ggml_permute(ctx, kqv, 0, 2, 1, 3), hd * hp.n_head, Lq * P);
    if (unpad_ids_) cur = ggml_get_rows(ctx, cur, unpad_ids_);
    cur = hook(linear(w.wo, w.bo, cur), il, Site::AttnOut);
    ggml_tensor * ffn_inp = ggml_add(ctx, cur, x);

    cur = ggml_mul(ctx, ggml_rms_norm(ctx, ffn_inp, hp.rms_eps), w.ffn_norm);
    ggml_tensor * key = ggml_swiglu_split(ctx, linear(w.gate, w.gate_b, cur), linear(w.up, w.up_b, cur));
    key = hook(key, il, Site::MlpKey);
    ggml_tensor * out = linear(w.down, w.down_b, key);
    for (size_t i = 0; i < request_.overlays.size(); ++i) {
        if (request_.overlays[i].layer != il) continue;
        ggml_tensor * z = ggml_mul_mat(ctx, overlay_t_[i].first, key);
        out = ggml_add(ctx, out, ggml_mul_mat(ctx, overlay_t_[i].second, z));
    }
    out = hook(out, il, Site::MlpOut);
    return hook(ggml_add(ctx, out, ffn_inp), il, Site::ResidOut);
}

void GraphRun::build(bool with_backward) {
    const GraphHparams & hp = model_.hparams();
    const auto & r = request_;
    prompt_start_.clear();
    frozen_ = frozen_values_.lengths.empty() ? std::vector<int>(r.prompts.size(), 0) : frozen_values_.lengths;
    for (size_t p = 0; p < r.prompts.size(); ++p) {
        const int n = static_cast<int>(r.prompts[p].size());
        prompt_start_.push_back(n_tokens_);
        frozen_start_.push_back(n_frozen_);
        n_frozen_ += frozen_[p];
        n_tokens_ += n - frozen_[p];
        seq_len_ = std::max(seq_len_, n - frozen_[p]);
        key_len_ = std::max(key_len_, n);
    }
    // Rows whose logits are needed: requested ones first, then loss rows not yet included.
    std::map<std::pair<int, int>, int> row_index;
    auto add_row = [&](const RowRef & row) {
        auto key = std::make_pair(row.prompt, row.pos);
        if (row_index.count(key)) return;
        row_index[key] = static_cast<int>(out_rows_.size());
        out_rows_.push_back(row);
    };
    if (r.all_logits) {
        for (size_t p = 0; p < r.prompts.size(); ++p) for (size_t i = 0; i < r.prompts[p].size(); ++i) add_row({static_cast<int>(p), static_cast<int>(i)});
    }
    for (const auto & row : r.logit_rows) add_row(row);
    for (const auto & t : r.targets) add_row(t.row);
    for (const auto & ref : r.references) add_row(ref.row);
    const int R = static_cast<int>(out_rows_.size());
    {
        // Per row: total loss weight and the weighted label mass, normalised below.
        std::vector<double> weight(static_cast<size_t>(R), 0.0);
        std::vector<std::vector<float>> labels(static_cast<size_t>(R));
        auto label_row = [&](int row) -> std::vector<float> & {
            auto & l = labels[static_cast<size_t>(row)];
            if (l.empty()) l.assign(static_cast<size_t>(hp.n_vocab), 0.0f);
            return l;
        };
        for (const auto & t : r.targets) {
            const int row = row_index[{t.row.prompt, t.row.pos}];
            label_row(row)[static_cast<size_t>(t.token)] += t.weight;
            weight[static_cast<size_t>(row)] += t.weight;
        }
        for (const auto & ref : r.references) {
            const int row = row_index[{ref.row.prompt, ref.row.pos}];
            auto & l = label_row(row);
            for (int v = 0; v < hp.n_vocab; ++v) l[static_cast<size_t>(v)] += static_cast<float>(ref.weight * std::exp(static_cast<double>(ref.logprobs[static_cast<size_t>(v)])));
            weight[static_cast<size_t>(row)] += ref.weight;
        }
        std::map<double, size_t> group_of_weight;
        for (int row = 0; row < R; ++row) {
            const double w = weight[static_cast<size_t>(row)];
            auto it = group_of_weight.find(w);
            if (it == group_of_weight.end()) {
                it = group_of_weight.emplace(w, groups_.size()).first;
                groups_.push_back(RowGroup{});
                groups_.back().weight = w;
            }
            RowGroup & g = groups_[it->second];
            g.rows.push_back(row);
            if (w != 0) {
                for (float x : labels[static_cast<size_t>(row)]) g.labels.push_back(static_cast<float>(x / w));
            }
        }
    }

    const int graph_size = graph_size_for(hp.n_layer);
    {
        const size_t n_static = 16 + 2 * r.deltas.size() + 2 * r.overlays.size() + 2 * static_cast<size_t>(hp.n_layer) + 2 * static_cast<size_t>(graph_size);
        ggml_init_params params{ggml_tensor_overhead() * n_static, nullptr, true};
        ctx_static_ = ggml_init(params);
        ggml_init_params cparams{ggml_tensor_overhead() * static_cast<size_t>(graph_size) * 6 + ggml_graph_overhead_custom(static_cast<size_t>(graph_size), true) * 3, nullptr, true};
        ctx_compute_ = ggml_init(cparams);
        if (!ctx_static_ || !ctx_compute_) throw GraftError("out of memory building the graph");
    }
    ggml_context * cs = ctx_static_;
    auto input = [](ggml_tensor * t, const char * name) { ggml_set_name(t, name); ggml_set_input(t); return t; };
    tokens_ = input(ggml_new_tensor_1d(cs, GGML_TYPE_I32, n_tokens_), "tokens");
    positions_ = input(ggml_new_tensor_1d(cs, GGML_TYPE_I32, n_tokens_), "positions");
    const int64_t P = static_cast<int64_t>(r.prompts.size());
    // with frozen prefixes each prompt has its own mask: its queries start at its own position
    mask_ = input(n_frozen_ > 0 ? ggml_new_tensor_4d(cs, GGML_TYPE_F32, key_len_, seq_len_, 1, P) : ggml_new_tensor_2d(cs, GGML_TYPE_F32, seq_len_, seq_len_), "kq_mask");
    if (n_frozen_ > 0) {
        key_act_ids_ = input(ggml_new_tensor_1d(cs, GGML_TYPE_I32, key_len_ * P), "key_computed_ids");
        key_fr_ids_ = input(ggml_new_tensor_1d(cs, GGML_TYPE_I32, key_len_ * P), "key_frozen_ids");
        key_act_mask_ = input(ggml_new_tensor_2d(cs, GGML_TYPE_F32, 1, key_len_ * P), "key_computed_mask");
        key_fr_mask_ = input(ggml_new_tensor_2d(cs, GGML_TYPE_F32, 1, key_len_ * P), "key_frozen_mask");
        const int64_t width = static_cast<int64_t>(hp.head_dim) * hp.n_head_kv;
        for (int il = r.from_layer; il < hp.n_layer; ++il) {
            frozen_kv_t_.emplace_back(input(ggml_new_tensor_2d(cs, GGML_TYPE_F32, width, n_frozen_), "frozen_k"),
                                      input(ggml_new_tensor_2d(cs, GGML_TYPE_F32, width, n_frozen_), "frozen_v"));
        }
    }
    if (seq_len_ * static_cast<int>(r.prompts.size()) != n_tokens_) {
        pad_ids_ = input(ggml_new_tensor_1d(cs, GGML_TYPE_I32, static_cast<int64_t>(seq_len_) * static_cast<int64_t>(r.prompts.size())), "pad_ids");
        unpad_ids_ = input(ggml_new_tensor_1d(cs, GGML_TYPE_I32, n_tokens_), "unpad_ids");
    }
    for (RowGroup & g : groups_) {
        const int64_t n = static_cast<int64_t>(g.rows.size());
        g.ids = input(ggml_new_tensor_1d(cs, GGML_TYPE_I32, n), "row_ids");
        if (g.weight != 0) g.labels_t = input(ggml_new_tensor_2d(cs, GGML_TYPE_F32, hp.n_vocab, n), "labels");
    }
    if (r.from_layer > 0) input_states_ = input(ggml_new_tensor_2d(cs, GGML_TYPE_F32, hp.n_embd, n_tokens_), "input_states");
    for (size_t i = 0; i < r.deltas.size(); ++i) {
        const auto & d = r.deltas[i];
        ggml_tensor * t = ggml_new_tensor_1d(cs, GGML_TYPE_F32, static_cast<int64_t>(d.values.size()));
        ggml_format_name(t, "delta-%zu", i);
        if (with_backward) ggml_set_param(t); else ggml_set_input(t);
        delta_t_.push_back(t);
        delta_mask_t_.push_back(input(ggml_new_tensor_2d(cs, GGML_TYPE_F32, 1, n_tokens_), "delta_mask"));
        delta_values_.push_back(d.values);
    }
    for (const auto & o : r.overlays) {
        ggml_tensor * v = input(ggml_new_tensor_2d(cs, GGML_TYPE_F32, hp.n_ff, o.rank), "overlay_v");
        ggml_tensor * u = input(ggml_new_tensor_2d(cs, GGML_TYPE_F32, o.rank, hp.n_embd), "overlay_u");
        overlay_t_.emplace_back(v, u);
    }
    capture_t_.assign(r.captures.size(), nullptr);
    dequantize_weights_ = weights_as_backward_ && model_.dequantize_for_backward();
    if (dequantize_weights_) {
        const int64_t longest = std::max<int64_t>({hp.n_ff, hp.n_embd, static_cast<int64_t>(hp.head_dim) * hp.n_head, hp.n_vocab});
        iota_ = input(ggml_new_tensor_1d(cs, GGML_TYPE_I32, longest), "iota");
    }

    ggml_tensor * cur = r.from_layer > 0 ? input_states_ : ggml_get_rows(ctx_compute_, model_.tok_embd(), tokens_);
    for (int il = r.from_layer; il < hp.n_layer; ++il) cur = build_layer(cur, il);
    gf_ = ggml_new_graph_custom(ctx_compute_, static_cast<size_t>(graph_size), with_backward);
    for (ggml_tensor * c : capture_t_) if (c) ggml_build_forward_expand(gf_, c);
    for (const auto & [k, v] : kv_capture_t_) {
        ggml_build_forward_expand(gf_, k);
        ggml_build_forward_expand(gf_, v);
    }
    if (!groups_.empty()) {
        ggml_tensor * h = ggml_mul(ctx_compute_, ggml_rms_norm(ctx_compute_, cur, hp.rms_eps), model_.output_norm());
        for (RowGroup & g : groups_) {
            g.logits = ggml_mul_mat(ctx_compute_, weight_for(model_.output()), ggml_get_rows(ctx_compute_, h, g.ids));
            ggml_set_output(g.logits);
            ggml_build_forward_expand(gf_, g.logits);
            if (g.weight == 0) continue;
            ggml_tensor * term = ggml_scale(ctx_compute_, ggml_cross_entropy_loss(ctx_compute_, g.logits, g.labels_t),
                                            static_cast<float>(g.weight * static_cast<double>(g.rows.size())));
            loss_ = loss_ ? ggml_add(ctx_compute_, loss_, term) : term;
        }
        if (loss_) {
            ggml_set_loss(loss_);
            ggml_set_output(loss_);
            ggml_build_forward_expand(gf_, loss_);
        }
    }
    if (with_backward) {
        const int n = ggml_graph_n_nodes(gf_);
        std::vector<ggml_tensor *> accs(static_cast<size_t>(n), nullptr);
        for (int i = 0; i < n; ++i) {
            ggml_tensor * node = ggml_graph_node(gf_, i);
            if (node->flags & (GGML_TENSOR_FLAG_PARAM | GGML_TENSOR_FLAG_LOSS)) {
                accs[static_cast<size_t>(i)] = ggml_new_tensor(cs, GGML_TYPE_F32, GGML_MAX_DIMS, node->ne);
            }
        }
        gb_ = ggml_graph_dup(ctx_compute_, gf_, true);
        ggml_build_backward_expand(ctx_compute_, gb_, accs.data());
        replaced_out_prods_ = replace_weight_out_prods(ctx_compute_, gb_, model_);
    }

    static_buffer_ = ggml_backend_alloc_ctx_tensors(ctx_static_, model_.main_backend());
    if (static_buffer_ == nullptr) throw GraftError("not enough memory for the graph's inputs");
    std::vector<ggml_backend_t> backends = model_.backends();
    sched_ = ggml_backend_sched_new(backends.data(), nullptr, static_cast<int>(backends.size()), static_cast<size_t>(graph_size), false, true);
    if (sched_ == nullptr) throw GraftError("could not create the graph scheduler");

}

void GraphRun::upload_inputs() {
    const GraphHparams & hp = model_.hparams();
    const auto & r = request_;
    std::vector<int32_t> tokens, positions;
    for (size_t p = 0; p < r.prompts.size(); ++p) {
        for (size_t i = static_cast<size_t>(frozen_[p]); i < r.prompts[p].size(); ++i) {
            tokens.push_back(r.prompts[p][i]);
            positions.push_back(static_cast<int32_t>(i));
        }
    }
    ggml_backend_tensor_set(tokens_, tokens.data(), 0, ggml_nbytes(tokens_));
    if (iota_) {
        std::vector<int32_t> iota(static_cast<size_t>(iota_->ne[0]));
        for (size_t i = 0; i < iota.size(); ++i) iota[i] = static_cast<int32_t>(i);
        ggml_backend_tensor_set(iota_, iota.data(), 0, ggml_nbytes(iota_));
    }
    ggml_backend_tensor_set(positions_, positions.data(), 0, ggml_nbytes(positions_));
    const size_t T = static_cast<size_t>(n_tokens_), Lq = static_cast<size_t>(seq_len_), Lk = static_cast<size_t>(key_len_), P = r.prompts.size();
    const auto computed = [&](size_t p) { return r.prompts[p].size() - static_cast<size_t>(frozen_[p]); };
    // A real query at position q sees keys 0..q, all real, so padding keys need no mask of
    // their own, and a padding query sees key 0 at least, so its softmax stays finite (a NaN
    // there would leak into the backward through 0 · NaN).
    std::vector<float> mask;
    const float blocked = -std::numeric_limits<float>::infinity();
    if (n_frozen_ == 0) {
        mask.assign(Lq * Lq, blocked);
        for (size_t q = 0; q < Lq; ++q) for (size_t k = 0; k <= q; ++k) mask[q * Lq + k] = 0.0f;
    } else {
        mask.assign(P * Lq * Lk, blocked);
        for (size_t p = 0; p < P; ++p) {
            for (size_t i = 0; i < Lq; ++i) {
                const size_t last = i < computed(p) ? static_cast<size_t>(frozen_[p]) + i : 0;
                for (size_t k = 0; k <= last; ++k) mask[(p * Lq + i) * Lk + k] = 0.0f;
            }
        }
        std::vector<int32_t> act(P * Lk), fr(P * Lk, 0);
        std::vector<float> act_mask(P * Lk, 0.0f), fr_mask(P * Lk, 0.0f);
        for (size_t p = 0; p < P; ++p) {
            const size_t f = static_cast<size_t>(frozen_[p]), s = static_cast<size_t>(prompt_start_[p]);
            for (size_t k = 0; k < Lk; ++k) {
                const size_t slot = p * Lk + k;
                if (k < f) {
                    fr[slot] = frozen_start_[p] + static_cast<int32_t>(k);
                    fr_mask[slot] = 1.0f;
                    act[slot] = static_cast<int32_t>(s);
                } else {
                    act[slot] = static_cast<int32_t>(s + std::min(k - f, computed(p) - 1));
                    act_mask[slot] = 1.0f;
                }
            }
        }
        ggml_backend_tensor_set(key_act_ids_, act.data(), 0, ggml_nbytes(key_act_ids_));
        ggml_backend_tensor_set(key_fr_ids_, fr.data(), 0, ggml_nbytes(key_fr_ids_));
        ggml_backend_tensor_set(key_act_mask_, act_mask.data(), 0, ggml_nbytes(key_act_mask_));
        ggml_backend_tensor_set(key_fr_mask_, fr_mask.data(), 0, ggml_nbytes(key_fr_mask_));
        for (size_t l = 0; l < frozen_kv_t_.size(); ++l) {
            ggml_backend_tensor_set(frozen_kv_t_[l].first, frozen_values_.k[l].data(), 0, ggml_nbytes(frozen_kv_t_[l].first));
            ggml_backend_tensor_set(frozen_kv_t_[l].second, frozen_values_.v[l].data(), 0, ggml_nbytes(frozen_kv_t_[l].second));
        }
    }
    if (pad_ids_) {
        // Padding row i of prompt p repeats the prompt's last computed row: any finite row would
        // do, since no real row attends to it and the unpadding gather drops its output.
        std::vector<int32_t> pad(static_cast<size_t>(pad_ids_->ne[0])), unpad(T);
        for (size_t p = 0; p < P; ++p) {
            const size_t s = static_cast<size_t>(prompt_start_[p]), n = computed(p);
            for (size_t i = 0; i < Lq; ++i) pad[p * Lq + i] = static_cast<int32_t>(s + std::min(i, n - 1));
            for (size_t i = 0; i < n; ++i) unpad[s + i] = static_cast<int32_t>(p * Lq + i);
        }
        ggml_backend_tensor_set(pad_ids_, pad.data(), 0, ggml_nbytes(pad_ids_));
        ggml_backend_tensor_set(unpad_ids_, unpad.data(), 0, ggml_nbytes(unpad_ids_));
    }
    ggml_backend_tensor_set(mask_, mask.data(), 0, ggml_nbytes(mask_));
    for (const RowGroup & g : groups_) {
        std::vector<int32_t> ids;
        for (int row : g.rows) ids.push_back(active_row(out_rows_[static_cast<size_t>(row)]));
        ggml_backend_tensor_set(g.ids, ids.data(), 0, ggml_nbytes(g.ids));
        if (g.labels_t) ggml_backend_tensor_set(g.labels_t, g.labels.data(), 0, ggml_nbytes(g.labels_t));
    }
    if (input_states_) {
        if (n_frozen_ == 0) {
            ggml_backend_tensor_set(input_states_, r.input_states.data(), 0, ggml_nbytes(input_states_));
        } else {
            const size_t E = static_cast<size_t>(hp.n_embd);
            std::vector<float> states;
            states.reserve(T * E);
            size_t full_start = 0;
            for (size_t p = 0; p < P; ++p) {
                const auto first = r.input_states.begin() + static_cast<std::ptrdiff_t>((full_start + static_cast<size_t>(frozen_[p])) * E);
                states.insert(states.end(), first, first + static_cast<std::ptrdiff_t>(computed(p) * E));
                full_start += r.prompts[p].size();
            }
            ggml_backend_tensor_set(input_states_, states.data(), 0, ggml_nbytes(input_states_));
        }
    }
    for (size_t i = 0; i < r.deltas.size(); ++i) {
        std::vector<float> m(T, 0.0f);
        for (const auto & row : r.deltas[i].rows) m[static_cast<size_t>(active_row(row))] = 1.0f;
        ggml_backend_tensor_set(delta_mask_t_[i], m.data(), 0, ggml_nbytes(delta_mask_t_[i]));
        ggml_backend_tensor_set(delta_t_[i], delta_values_[i].data(), 0, ggml_nbytes(delta_t_[i]));
    }
    for (size_t i = 0; i < r.overlays.size(); ++i) {
        const auto & o = r.overlays[i];
        ggml_backend_tensor_set(overlay_t_[i].first, o.v.data(), 0, ggml_nbytes(overlay_t_[i].first));
        std::vector<float> ut(o.u.size());  // [r, n_embd] in ggml order: element (j, e) at e·r + j
        for (int j = 0; j < o.rank; ++j) for (int e = 0; e < hp.n_embd; ++e) ut[static_cast<size_t>(e) * o.rank + j] = o.scale * o.u[static_cast<size_t>(j) * hp.n_embd + e];
        ggml_backend_tensor_set(overlay_t_[i].second, ut.data(), 0, ggml_nbytes(overlay_t_[i].second));
    }
}

int GraphRun::active_row(const RowRef & row) const {
    const size_t p = static_cast<size_t>(row.prompt);
    return prompt_start_[p] + row.pos - frozen_[p];
}

FrozenPrefix GraphRun::captured_prefix(const std::vector<int> & lengths) const {
    FrozenPrefix out;
    out.lengths = lengths;
    const size_t width = static_cast<size_t>(model_.hparams().head_dim) * static_cast<size_t>(model_.hparams().n_head_kv);
    std::vector<float> all(static_cast<size_t>(n_tokens_) * width);
    for (const auto & [k, v] : kv_capture_t_) {
        for (auto [tensor, into] : {std::make_pair(k, &out.k), std::make_pair(v, &out.v)}) {
            ggml_backend_tensor_get(tensor, all.data(), 0, ggml_nbytes(tensor));
            std::vector<float> rows;
            for (size_t p = 0; p < lengths.size(); ++p) {
                const auto first = all.begin() + static_cast<std::ptrdiff_t>(static_cast<size_t>(prompt_start_[p]) * width);
                rows.insert(rows.end(), first, first + static_cast<std::ptrdiff_t>(static_cast<size_t>(lengths[p]) * width));
            }
            into->push_back(std::move(rows));
        }
    }
    return out;
}

void GraphRun::set_delta(size_t index, const std::vector<float> & values) {
    if (index >= delta_t_.size() || values.size() != delta_values_[index].size()) throw GraftError("delta index or size out of range");
    delta_values_[index] = values;
    ggml_backend_tensor_set(delta_t_[index], values.data(), 0, ggml_nbytes(delta_t_[index]));
}

GraphResult GraphRun::compute(bool backward) {
    if (backward && gb_ == nullptr) throw GraftError("this graph was built without gradients");
    ggml_cgraph * g = backward ? gb_ : gf_;
    ggml_backend_sched_reset(sched_);
    if (!ggml_backend_sched_alloc_graph(sched_, g)) throw GraftError("not enough memory to evaluate the graph");
    if (backward) ggml_graph_reset(gb_);
    const ggml_status status = ggml_backend_sched_graph_compute(sched_, g);
    if (status != GGML_STATUS_SUCCESS) throw GraftError("ggml failed to compute the graph (status " + std::to_string(static_cast<int>(status)) + ")");
    GraphResult result;
    read_outputs(result, backward);
    return result;
}

void GraphRun::read_outputs(GraphResult & result, bool backward) {
    const GraphHparams & hp = model_.hparams();
    const int V = hp.n_vocab;
    result.n_vocab = V;
    result.computed_tokens = n_tokens_;
    result.rows = out_rows_;
    result.logprobs.resize(out_rows_.size() * static_cast<size_t>(V));
    std::vector<float> logits;
    for (const RowGroup & g : groups_) {
        logits.resize(static_cast<size_t>(ggml_nelements(g.logits)));
        ggml_backend_tensor_get(g.logits, logits.data(), 0, ggml_nbytes(g.logits));
        for (size_t i = 0; i < g.rows.size(); ++i) {
            log_softmax_row(logits.data() + i * V, V, result.logprobs.data() + static_cast<size_t>(g.rows[i]) * V);
        }
    }
    std::map<std::pair<int, int>, size_t> row_of;
    for (size_t i = 0; i < out_rows_.size(); ++i) row_of[{out_rows_[i].prompt, out_rows_[i].pos}] = i;
    for (const auto & t : request_.targets) {
        result.nll -= t.weight * static_cast<double>(result.logprobs[row_of[{t.row.prompt, t.row.pos}] * V + static_cast<size_t>(t.token)]);
    }
    for (const auto & ref : request_.references) {
        const float * q = result.logprobs.data() + row_of[{ref.row.prompt, ref.row.pos}] * V;
        double kl = 0;
        for (int v = 0; v < V; ++v) {
            const double lp = ref.logprobs[static_cast<size_t>(v)];
            const double p = std::exp(lp);
            if (p > 0) kl += p * (lp - q[v]);
        }
        result.kl += ref.weight * kl;
    }
    result.loss = result.nll + result.kl;
    for (size_t i = 0; i < request_.captures.size(); ++i) {
        ggml_tensor * t = capture_t_[i];
        Capture c;
        c.layer = request_.captures[i].layer;
        c.site = request_.captures[i].site;
        c.width = static_cast<int>(t->ne[0]);
        c.values.resize(static_cast<size_t>(ggml_nelements(t)));
        ggml_backend_tensor_get(t, c.values.data(), 0, ggml_nbytes(t));
        result.captures.push_back(std::move(c));
    }
    if (backward) {
        for (ggml_tensor * d : delta_t_) {
            ggml_tensor * g = ggml_graph_get_grad_acc(gb_, d);
            std::vector<float> grad(static_cast<size_t>(ggml_nelements(d)), 0.0f);
            if (g) ggml_backend_tensor_get(g, grad.data(), 0, ggml_nbytes(g));
            result.gradients.push_back(std::move(grad));
        }
    }
}

GraphResult GraphRun::optimize(const AdamOptions & o, const std::function<bool(const StepReport &)> & on_step) {
    if (gb_ == nullptr) throw GraftError("this graph was built without gradients");
    if (o.steps < 0 || !(o.lr > 0)) throw GraftError("Adam needs steps ≥ 0 and a positive learning rate");
    std::vector<std::vector<double>> m(delta_values_.size()), v(delta_values_.size());
    for (size_t i = 0; i < delta_values_.size(); ++i) {
        m[i].assign(delta_values_[i].size(), 0.0);
        v[i].assign(delta_values_[i].size(), 0.0);
    }
    for (int step = 0; step < o.steps; ++step) {
        GraphResult r = compute(true);
        StepReport report;
        report.step = step;
        report.nll = r.nll;
        report.kl = r.kl;
        double decay = 0;
        const auto penalty = [&](size_t i) { return i < o.norm_penalties.size() ? o.norm_penalties[i] : o.norm_penalty; };
        for (size_t i = 0; i < delta_values_.size(); ++i) {
            double n2 = 0;
            for (float x : delta_values_[i]) n2 += static_cast<double>(x) * x;
            decay += o.weight_decay * n2 + penalty(i) * std::sqrt(n2);
            report.delta_norms.push_back(std::sqrt(n2));
        }
        report.loss = r.loss + decay;
        if (on_step && !on_step(report)) break;
        if (report.loss < o.stop_loss || step == o.steps - 1) break;
        const double t = step + 1;
        for (size_t i = 0; i < delta_values_.size(); ++i) {
            std::vector<float> next = delta_values_[i];
            const double norm = report.delta_norms[i];
            for (size_t j = 0; j < next.size(); ++j) {
                const double g = r.gradients[i][j] + 2.0 * o.weight_decay * next[j] + (norm > 0 ? penalty(i) * next[j] / norm : 0.0);
                m[i][j] = o.beta1 * m[i][j] + (1 - o.beta1) * g;
                v[i][j] = o.beta2 * v[i][j] + (1 - o.beta2) * g * g;
                const double mh = m[i][j] / (1 - std::pow(o.beta1, t)), vh = v[i][j] / (1 - std::pow(o.beta2, t));
                next[j] = static_cast<float>(next[j] - o.lr * mh / (std::sqrt(vh) + o.eps));
            }
            const float max_norm = i < o.max_norm.size() ? o.max_norm[i] : 0.0f;
            if (max_norm > 0) {
                double n2 = 0;
                for (float x : next) n2 += static_cast<double>(x) * x;
                const double n = std::sqrt(n2);
                if (n > max_norm) for (float & x : next) x = static_cast<float>(x * (max_norm / n));
            }
            set_delta(i, next);
        }
    }
    return compute(false);
}

}  // namespace graft
