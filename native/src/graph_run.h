#pragma once
// One request built into a ggml graph (forward, and backward when gradients are wanted),
// allocated once and computed as often as needed: an Adam loop changes only the delta
// values between computes.
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "ggml-backend.h"
#include "ggml.h"
#include "graph_model.h"
#include "graph_request.h"

namespace graft {

// The leading tokens of each prompt that a run does not compute, and their attention keys
// and values at every computed layer, taken from a run that did.
struct FrozenPrefix {
    std::vector<int> lengths;               // per prompt
    std::vector<std::vector<float>> k, v;   // per computed layer: frozen rows × head_dim · n_head_kv
};

// frozen: prefixes not to compute; capture_kv: keep every computed layer's keys and values;
// weights_as_backward: read weights as a run with gradients would (the F32 copies of quantised
// ones), so a prefix pass matches the run it serves.
struct GraphRunOptions {
    const FrozenPrefix * frozen = nullptr;
    bool capture_kv = false;
    bool weights_as_backward = false;
};

class GraphRun {
public:
    // The run of a request; with request.reuse_prefix, first a forward pass for the frozen prefixes.
    static std::unique_ptr<GraphRun> create(GraphModel & model, const GraphRequest & request, bool with_backward);
    GraphRun(GraphModel & model, const GraphRequest & request, bool with_backward, const GraphRunOptions & options = {});
    ~GraphRun();
    GraphRun(const GraphRun &) = delete;
    GraphRun & operator=(const GraphRun &) = delete;

    GraphResult compute(bool backward);
    void set_delta(size_t index, const std::vector<float> & values);
    const std::vector<float> & delta(size_t index) const { return delta_values_[index]; }

    // Adam on the deltas. on_step returns false to cancel (the deltas keep their last values).
    // The result is a forward at the final deltas (without gradients).
    GraphResult optimize(const AdamOptions & options, const std::function<bool(const StepReport &)> & on_step);

    int replaced_out_prods() const { return replaced_out_prods_; }
    int n_nodes_forward() const;
    int n_nodes_backward() const;

private:
    void validate() const;
    void release();
    void build(bool with_backward);
    ggml_tensor * hook(ggml_tensor * x, int layer, Site site);
    ggml_tensor * build_layer(ggml_tensor * inp, int il);
    void upload_inputs();
    void read_outputs(GraphResult & result, bool backward);
    FrozenPrefix captured_prefix(const std::vector<int> & lengths) const;
    int active_row(const RowRef & row) const;

    GraphModel & model_;
    GraphRequest request_;
    int n_tokens_ = 0;  // computed tokens of all prompts, without padding
    int seq_len_ = 0;   // queries: attention pads every prompt's computed tokens to the longest
    int key_len_ = 0;   // keys: the longest prompt, frozen prefix included
    std::vector<int> prompt_start_;  // first computed row of each prompt
    std::vector<int> frozen_;        // per prompt: leading tokens not computed
    std::vector<int> frozen_start_;  // first row of each prompt's prefix among the frozen rows
    int n_frozen_ = 0;
    FrozenPrefix frozen_values_;
    bool capture_kv_ = false;
    bool weights_as_backward_ = false;
    std::vector<std::pair<ggml_tensor *, ggml_tensor *>> kv_capture_t_;  // per computed layer: k [hd, kv heads, T], v [hd · kv heads, T]
    std::vector<std::pair<ggml_tensor *, ggml_tensor *>> frozen_kv_t_;   // per computed layer, [hd · kv heads, frozen rows]
    // Keys and values of attention's [key_len, prompts] slots: computed rows where the mask is
    // 1, frozen rows where it is 0 (mul by a 0/1 mask keeps both gathers differentiable).
    ggml_tensor * key_act_ids_ = nullptr, * key_fr_ids_ = nullptr, * key_act_mask_ = nullptr, * key_fr_mask_ = nullptr;
    std::vector<RowRef> out_rows_;
    // Output rows grouped by loss weight. ggml's cross-entropy backward assumes each label row
    // sums to 1 and weighs rows equally, so each group gets its own logits and loss op with
    // normalised labels, scaled by (row weight × rows in the group).
    struct RowGroup {
        std::vector<int> rows;  // indices into out_rows_
        double weight = 0;      // 0: logits only, no loss
        std::vector<float> labels;
        ggml_tensor * ids = nullptr, * labels_t = nullptr, * logits = nullptr;
    };
    std::vector<RowGroup> groups_;

    ggml_context * ctx_static_ = nullptr;
    ggml_context * ctx_compute_ = nullptr;
    ggml_backend_buffer_t static_buffer_ = nullptr;
    ggml_backend_sched_t sched_ = nullptr;
    ggml_cgraph * gf_ = nullptr;
    ggml_cgraph * gb_ = nullptr;

    ggml_tensor * tokens_ = nullptr, * positions_ = nullptr, * mask_ = nullptr, * input_states_ = nullptr;
    ggml_tensor * loss_ = nullptr;
    // Gathers between the real rows and attention's [L, prompts] layout; null when no prompt
    // needs padding (one prompt, or all of one length), where both layouts are the same.
    ggml_tensor * pad_ids_ = nullptr, * unpad_ids_ = nullptr;
    ggml_tensor * iota_ = nullptr;  // 0, 1, 2, … for dequantising weights with get_rows
    bool dequantize_weights_ = false;
    std::map<ggml_tensor *, ggml_tensor *> dequantized_;  // weight → its F32 copy
    ggml_tensor * weight_for(ggml_tensor * w);
    void dequantize_weights();
    std::vector<ggml_tensor *> delta_t_, delta_mask_t_;
    std::vector<std::vector<float>> delta_values_;
    std::vector<std::pair<ggml_tensor *, ggml_tensor *>> overlay_t_;  // (v as [n_ff, r], u as [r, n_embd])
    std::vector<ggml_tensor *> capture_t_;
    int replaced_out_prods_ = 0;
};

}  // namespace graft
