#pragma once
// Scoring token sequences with a llama.cpp context: per-token negative log-likelihoods
// (log-sum-exp over the vocabulary in double, here, so JS never sees vocabulary-sized data
// unless it asks for whole rows) and, at chosen positions, the full next-token log-prob row.
// These are the raw numbers behind corpus perplexity, sentence perplexity and KL to base.
//
// Sequences can be packed side by side into one llama_decode, each under its own sequence id
// of the (unified) KV cache with positions from 0, so that many short sentences cost a few
// forward passes. On the CPU this measured slower than one decode per sequence (attention
// then spans every packed token, and the per-decode overhead is small), so packing is off
// unless asked for; it is meant for devices where each decode has a large fixed cost.
#include <cstdint>
#include <vector>

#include "llama.h"

namespace graft {

struct ScoreSequence {
    std::vector<int32_t> tokens;  // evaluated as given (the caller decides about BOS)
    // Targets j in [score_begin, score_end): -log p(tokens[j] | tokens[0..j-1]).
    int score_begin = 1;
    int score_end = -1;  // -1: up to the last token
    // Positions p whose whole next-token distribution (given tokens[0..p]) is returned.
    std::vector<int> row_positions;
};

struct SequenceScores {
    std::vector<double> nll;   // one per target, in order
    std::vector<float> rows;   // row_positions.size() × n_vocab log-probabilities
};

struct ScoreOptions {
    // At most this many sequences share one decode (0: as many as fit the context, up to
    // llama.cpp's 256 sequence ids).
    int max_sequences_per_decode = 1;
};

struct ScoreOutcome {
    std::vector<SequenceScores> sequences;
    int decodes = 0;
    int64_t tokens_evaluated = 0;
};

// ctx must have a unified KV cache and n_batch = n_ubatch ≥ n_ctx (as LlamaSession makes it).
// The KV cache is cleared before each decode. Throws GraftError on bad input or decode errors.
ScoreOutcome score_sequences(llama_context * ctx, int n_ctx, const std::vector<ScoreSequence> & sequences,
                             const ScoreOptions & options);

// -log softmax(logits)[target], with the log-sum-exp in double.
double token_nll(const float * logits, int n_vocab, int32_t target);

}  // namespace graft
