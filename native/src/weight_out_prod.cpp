#include "weight_out_prod.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu_features.h"
#include "errors.h"
#include "graph_model.h"

namespace graft {

namespace {

constexpr int kRowGroup = 8;      // weight rows combined per pass over the output
constexpr int64_t kChunk = 256;   // output columns per tile (multiple of every block size)

// dst[t][0..n) += Σ_r g[r] · rows[r][0..n) for r < kRowGroup, for one token t.
template <int R>
__attribute__((always_inline)) inline void accumulate_rows(float * __restrict dst, const float * __restrict rows, const float * g, int64_t n) {
    for (int64_t c = 0; c < n; ++c) {
        float s = dst[c];
        for (int r = 0; r < R; ++r) s += g[r] * rows[r * kChunk + c];
        dst[c] = s;
    }
}

__attribute__((target("avx2,fma"))) void accumulate_avx2(float * dst, const float * rows, const float * g, int64_t n, int r_count) {
    if (r_count == kRowGroup) { accumulate_rows<kRowGroup>(dst, rows, g, n); return; }
    for (int r = 0; r < r_count; ++r) accumulate_rows<1>(dst, rows + r * kChunk, g + r, n);
}

void accumulate_generic(float * dst, const float * rows, const float * g, int64_t n, int r_count) {
    if (r_count == kRowGroup) { accumulate_rows<kRowGroup>(dst, rows, g, n); return; }
    for (int r = 0; r < r_count; ++r) accumulate_rows<1>(dst, rows + r * kChunk, g + r, n);
}

using AccumulateFn = void (*)(float *, const float *, const float *, int64_t, int);

AccumulateFn pick_accumulate() { return cpu_has_avx2_fma() ? accumulate_avx2 : accumulate_generic; }

// dst = out_prod(W, gT): dst[t][i] = Σ_o W[o][i] · G[o][t], where gT is a transposed view
// of the incoming gradient G (n_out × n_tok, element (o, t) at t·nb0(gT) + o·nb1(gT)).
void weight_out_prod(ggml_tensor * dst, int ith, int nth, void *) {
    static const AccumulateFn accumulate = pick_accumulate();
    const ggml_tensor * w = dst->src[0];
    const ggml_tensor * gt = dst->src[1];
    const int64_t n_in = w->ne[0], n_out = w->ne[1], n_tok = gt->ne[0];
    const auto * traits = ggml_get_type_traits(w->type);
    const int64_t n_chunks = (n_in + kChunk - 1) / kChunk;
    const int64_t per_thread = (n_chunks + nth - 1) / nth;
    const int64_t c_begin = per_thread * ith, c_end = std::min(n_chunks, c_begin + per_thread);
    if (c_begin >= c_end) return;

    thread_local std::vector<float> rows, g;
    rows.resize(kRowGroup * kChunk);
    g.resize(static_cast<size_t>(kRowGroup * n_tok));
    const size_t block = ggml_blck_size(w->type);
    const size_t dst_stride = dst->nb[1] / sizeof(float);
    auto * out = static_cast<float *>(dst->data);

    for (int64_t c = c_begin; c < c_end; ++c) {
        const int64_t i0 = c * kChunk, n = std::min(kChunk, n_in - i0);
        for (int64_t t = 0; t < n_tok; ++t) std::memset(out + t * dst_stride + i0, 0, static_cast<size_t>(n) * sizeof(float));
        for (int64_t o0 = 0; o0 < n_out; o0 += kRowGroup) {
            const int r_count = static_cast<int>(std::min<int64_t>(kRowGroup, n_out - o0));
            for (int r = 0; r < r_count; ++r) {
                const auto * row = static_cast<const uint8_t *>(w->data) + (o0 + r) * w->nb[1] + (i0 / static_cast<int64_t>(block)) * ggml_type_size(w->type);
                if (w->type == GGML_TYPE_F32) std::memcpy(rows.data() + r * kChunk, row, static_cast<size_t>(n) * sizeof(float));
                else traits->to_float(row, rows.data() + r * kChunk, n);
            }
            // gather G[o0..o0+r)[t] token-major so each token reads r_count consecutive floats
            for (int64_t t = 0; t < n_tok; ++t) {
                for (int r = 0; r < r_count; ++r) {
                    g[static_cast<size_t>(t * kRowGroup + r)] = *reinterpret_cast<const float *>(
                        static_cast<const uint8_t *>(gt->data) + t * gt->nb[0] + (o0 + r) * gt->nb[1]);
                }
            }
            for (int64_t t = 0; t < n_tok; ++t) {
                accumulate(out + t * dst_stride + i0, rows.data(), g.data() + t * kRowGroup, n, r_count);
            }
        }
    }
}

bool replaceable(const ggml_tensor * node, const GraphModel & model) {
    if (node->op != GGML_OP_OUT_PROD || !model.is_weight(node->src[0])) return false;
    const ggml_tensor * w = node->src[0];
    const ggml_tensor * gt = node->src[1];
    if (ggml_n_dims(w) > 2 || gt->ne[2] != 1 || gt->ne[3] != 1 || node->type != GGML_TYPE_F32 || gt->type != GGML_TYPE_F32) return false;
    if (!ggml_is_contiguous_rows(w) && !ggml_is_contiguous(w)) return false;
    if (w->ne[0] % static_cast<int64_t>(ggml_blck_size(w->type)) != 0 || kChunk % ggml_blck_size(w->type) != 0) return false;
    if (w->type != GGML_TYPE_F32 && ggml_get_type_traits(w->type)->to_float == nullptr) return false;
    return ggml_is_contiguous(node);
}

}  // namespace

int replace_weight_out_prods(ggml_context * ctx, ggml_cgraph * graph, const GraphModel & model) {
    if (model.uses_gpu() || !model.row_once_out_prod()) return 0;
    int replaced = 0;
    for (int i = 0; i < ggml_graph_n_nodes(graph); ++i) {
        ggml_tensor * node = ggml_graph_node(graph, i);
        if (!replaceable(node, model)) continue;
        // Borrow op and op_params from a genuine custom node instead of re-declaring ggml's
        // private parameter struct; sources and shape stay those of the out_prod.
        ggml_tensor * args[2] = {node->src[0], node->src[1]};
        ggml_tensor * proto = ggml_custom_4d(ctx, GGML_TYPE_F32, node->ne[0], node->ne[1], node->ne[2], node->ne[3], args, 2,
                                             weight_out_prod, GGML_N_TASKS_MAX, nullptr);
        node->op = proto->op;
        std::memcpy(node->op_params, proto->op_params, sizeof(node->op_params));
        ++replaced;
    }
    return replaced;
}

}  // namespace graft
