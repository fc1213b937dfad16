#pragma once
// What one evaluation of the own graph computes: a batch of prompts (different lengths, one
// graph, each prompt attending causally within itself only), optionally starting at a given
// layer from given residual states, with F32 deltas added at hook points, low-rank overlays on ffn_down,
// log-probabilities of chosen rows, captured hook states and a loss of weighted target NLL
// plus weighted KL(reference ‖ model) whose gradient with respect to the deltas is wanted.
#include <cstdint>
#include <string>
#include <vector>

namespace graft {

// Hook points of a layer, in the order the forward reaches them.
enum class Site { ResidIn, AttnOut, MlpKey, MlpOut, ResidOut };

Site parse_site(const std::string & name);  // resid_in, attn_out, mlp_key, mlp_out, resid_out (or resid)
const char * site_name(Site site);

struct RowRef {
    int prompt = 0;
    int pos = 0;
};

struct DeltaSpec {
    int layer = 0;
    Site site = Site::MlpOut;
    std::vector<RowRef> rows;   // where the same vector is added
    std::vector<float> values;  // width of the site (n_embd, or n_ff for mlp_key)
};

// ΔW = scale · Σ_j u_j v_jᵀ added to blk.<layer>.ffn_down.weight (u_j ∈ R^n_embd, v_j ∈ R^n_ff).
struct OverlaySpec {
    int layer = 0;
    int rank = 0;
    std::vector<float> u;  // rank × n_embd, u_j contiguous
    std::vector<float> v;  // rank × n_ff, v_j contiguous
    float scale = 1.0f;
};

struct TargetTerm {  // weight · −log p(token | prefix up to row)
    RowRef row;
    int32_t token = 0;
    float weight = 1.0f;
};

struct ReferenceTerm {  // weight · KL(reference ‖ model) at row
    RowRef row;
    std::vector<float> logprobs;  // n_vocab reference log-probabilities
    float weight = 1.0f;
};

struct CaptureSpec {
    int layer = 0;
    Site site = Site::ResidOut;
};

struct GraphRequest {
    std::vector<std::vector<int32_t>> prompts;
    int from_layer = 0;
    std::vector<float> input_states;  // when from_layer > 0: residual entering it, tokens × n_embd
    std::vector<DeltaSpec> deltas;
    std::vector<OverlaySpec> overlays;
    std::vector<RowRef> logit_rows;
    bool all_logits = false;
    std::vector<CaptureSpec> captures;
    std::vector<TargetTerm> targets;
    std::vector<ReferenceTerm> references;
    // Tokens before a prompt's first delta row and first output row do not depend on the
    // deltas: take their keys and values from one forward run and compute only the rest in
    // every step (see GraphRun::create). Only runs with gradients use it; ignored with
    // captures or all logits.
    bool reuse_prefix = false;
};

struct Capture {
    int layer = 0;
    Site site = Site::ResidOut;
    int width = 0;
    std::vector<float> values;  // tokens × width, prompts concatenated
};

struct GraphResult {
    int n_vocab = 0;
    std::vector<RowRef> rows;     // rows whose log-probabilities are returned
    std::vector<float> logprobs;  // rows × n_vocab
    std::vector<Capture> captures;
    double nll = 0, kl = 0, loss = 0;  // loss = nll + kl (weights applied)
    int computed_tokens = 0;           // tokens the graph computed (fewer than the prompts' with a reused prefix)
    std::vector<std::vector<float>> gradients;  // d loss / d delta, per delta (backward only)
};

struct AdamOptions {
    int steps = 20;
    float lr = 0.5f;
    float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
    float weight_decay = 0.0f;      // adds weight_decay · ‖δ‖² to the loss
    float norm_penalty = 0.0f;      // adds norm_penalty · ‖δ‖ (ROME's "weight decay", norm not squared)
    std::vector<float> norm_penalties;  // per delta, overriding norm_penalty: independent targets optimised in one graph
    std::vector<float> max_norm;    // per delta; ≤ 0 or missing: unclamped
    double stop_loss = -1;          // stop once the loss is below this
};

struct StepReport {
    int step = 0;
    double loss = 0, nll = 0, kl = 0;
    std::vector<double> delta_norms;
};

}  // namespace graft
