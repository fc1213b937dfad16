#pragma once
// Second moments C = Σ k kᵀ / n of the MLP keys (the input of blk.L.ffn_down.weight) over
// every token of a corpus, for several layers in one pass, as ROME/MEMIT need them.
//
// The tokens run in context-sized chunks, each starting with BOS when the vocabulary adds
// one (llama.cpp's perplexity tool does the same), and the forward pass stops once the
// deepest requested layer's key is captured. Each chunk's KᵀK is computed in float by ggml
// and added into a double accumulator. A checkpoint (the raw sum, the tokens done and the
// key fields) is kept next to each target while the job runs, so a cancelled or crashed job
// resumes where it stopped; the final file appears only when complete (see moments_file.h).
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "llama_session.h"

namespace graft {

struct MomentsLayerTarget {
    int layer = 0;
    std::string file;        // the final .moments file
    std::string checkpoint;  // the running job's checkpoint
};

struct MomentsJob {
    std::vector<int32_t> tokens;  // the corpus tokens to use (its first token_count)
    std::vector<MomentsLayerTarget> layers;
    std::string model_sha256;
    std::string corpus_sha256;
    double checkpoint_seconds = 60;  // at most this long between checkpoints; 0 = every chunk
    // Sum chunk products on the compute device in float before adding them to the double
    // accumulator: -1 on GPUs only (the default), 1 always (lets CPU checks cover the path).
    int device_sums = -1;
};

struct MomentsProgress {
    int64_t tokens_done = 0;
    int64_t tokens_total = 0;
};

struct MomentsLayerOutcome {
    int layer = 0;
    int n_ff = 0;
    int64_t n = 0;
    std::string file;
    int64_t resumed_from = 0;  // tokens taken from a checkpoint
};

struct MomentsOutcome {
    bool cancelled = false;
    int64_t tokens_done = 0;
    int64_t tokens_total = 0;
    std::vector<MomentsLayerOutcome> layers;
};

MomentsOutcome compute_second_moments(LlamaSession & session, const MomentsJob & job, const std::atomic<bool> & cancel,
                                      const std::function<void(const MomentsProgress &)> & progress);

}  // namespace graft
