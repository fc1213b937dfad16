#include "token_scoring.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "errors.h"
#include "vocab_text.h"

namespace graft {

namespace {

// llama.cpp's limit on sequence ids when the KV cache is unified (LLAMA_MAX_SEQ).
constexpr int kMaxSequenceIds = 256;

struct Placement {
    size_t sequence;
    int begin;  // resolved score range
    int end;
    size_t batch_offset;  // index of the sequence's first token in the batch
};

void validate(const std::vector<ScoreSequence> & sequences, int n_ctx, int n_vocab) {
    if (sequences.empty()) throw GraftError("there are no token sequences to score");
    for (size_t s = 0; s < sequences.size(); ++s) {
        const ScoreSequence & q = sequences[s];
        const std::string what = "sequence " + std::to_string(s);
        const int n = static_cast<int>(q.tokens.size());
        if (n == 0) throw GraftError(what + " is empty: there is nothing to score");
        if (n > n_ctx) {
            throw GraftError(what + " is " + std::to_string(n) + " tokens long but the context holds " + std::to_string(n_ctx) +
                             "; split it or open the session with a larger context");
        }
        for (int32_t t : q.tokens) {
            if (t < 0 || t >= n_vocab) throw GraftError(what + ": token id " + std::to_string(t) + " is outside the vocabulary");
        }
        const int end = q.score_end < 0 ? n : q.score_end;
        // Target 0 has no prediction before it: its distribution would need a token before the sequence.
        if (q.score_begin < 1 || q.score_begin > end || end > n) {
            throw GraftError(what + ": the score range [" + std::to_string(q.score_begin) + ", " + std::to_string(end) +
                             ") must lie within [1, " + std::to_string(n) + "] (token 0 has no prediction to score)");
        }
        for (int p : q.row_positions) {
            if (p < 0 || p >= n) {
                throw GraftError(what + ": row position " + std::to_string(p) + " is outside the sequence (0 to " + std::to_string(n - 1) + ")");
            }
        }
    }
}

}  // namespace

double token_nll(const float * logits, int n_vocab, int32_t target) {
    double max = logits[0];
    for (int i = 1; i < n_vocab; ++i) max = std::max<double>(max, logits[i]);
    double sum = 0;
    for (int i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - max);
    return max + std::log(sum) - static_cast<double>(logits[target]);
}

ScoreOutcome score_sequences(llama_context * ctx, int n_ctx, const std::vector<ScoreSequence> & sequences,
                             const ScoreOptions & options) {
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(llama_get_model(ctx)));
    validate(sequences, n_ctx, n_vocab);
    const int per_decode = options.max_sequences_per_decode > 0 ? std::min(options.max_sequences_per_decode, kMaxSequenceIds) : kMaxSequenceIds;

    ScoreOutcome outcome;
    outcome.sequences.resize(sequences.size());
    llama_batch batch = llama_batch_init(n_ctx, 0, 1);
    std::vector<Placement> placed;
    try {
        size_t next = 0;
        while (next < sequences.size()) {
            // Greedy packing in the caller's order: results stay in order and a long
            // sequence never waits behind a better fit.
            placed.clear();
            batch.n_tokens = 0;
            while (next < sequences.size() && static_cast<int>(placed.size()) < per_decode &&
                   batch.n_tokens + static_cast<int>(sequences[next].tokens.size()) <= n_ctx) {
                const ScoreSequence & q = sequences[next];
                const int n = static_cast<int>(q.tokens.size());
                Placement p{next, q.score_begin, q.score_end < 0 ? n : q.score_end, static_cast<size_t>(batch.n_tokens)};
                const auto seq_id = static_cast<llama_seq_id>(placed.size());
                for (int i = 0; i < n; ++i) {
                    const int at = batch.n_tokens + i;
                    batch.token[at] = q.tokens[static_cast<size_t>(i)];
                    batch.pos[at] = i;
                    batch.n_seq_id[at] = 1;
                    batch.seq_id[at][0] = seq_id;
                    // Logits only where they are used: the output projection is a large
                    // part of a small model's cost.
                    batch.logits[at] = (i >= p.begin - 1 && i < p.end - 1) ? 1 : 0;
                }
                for (int r : q.row_positions) batch.logits[batch.n_tokens + r] = 1;
                batch.n_tokens += n;
                placed.push_back(p);
                ++next;
            }
            bool any_output = false;
            for (int i = 0; i < batch.n_tokens && !any_output; ++i) any_output = batch.logits[i] != 0;
            if (!any_output) {
                // Nothing to read back (e.g. one-token sentences without BOS): skip the decode.
                for (const Placement & p : placed) outcome.sequences[p.sequence] = SequenceScores{};
                continue;
            }
            llama_memory_clear(llama_get_memory(ctx), true);
            const int rc = llama_decode(ctx, batch);
            if (rc != 0) {
                throw GraftError("llama.cpp failed to evaluate the tokens (llama_decode returned " + std::to_string(rc) + ")");
            }
            ++outcome.decodes;
            outcome.tokens_evaluated += batch.n_tokens;
            for (const Placement & p : placed) {
                const ScoreSequence & q = sequences[p.sequence];
                SequenceScores & out = outcome.sequences[p.sequence];
                out.nll.resize(static_cast<size_t>(p.end - p.begin));
                for (int j = p.begin; j < p.end; ++j) {
                    const float * logits = llama_get_logits_ith(ctx, static_cast<int32_t>(p.batch_offset) + j - 1);
                    if (logits == nullptr) throw GraftError("llama.cpp returned no logits for a scored position");
                    out.nll[static_cast<size_t>(j - p.begin)] = token_nll(logits, n_vocab, q.tokens[static_cast<size_t>(j)]);
                }
                out.rows.resize(q.row_positions.size() * static_cast<size_t>(n_vocab));
                for (size_t r = 0; r < q.row_positions.size(); ++r) {
                    const float * logits = llama_get_logits_ith(ctx, static_cast<int32_t>(p.batch_offset) + q.row_positions[r]);
                    if (logits == nullptr) throw GraftError("llama.cpp returned no logits for a requested row");
                    log_softmax_row(logits, n_vocab, out.rows.data() + r * static_cast<size_t>(n_vocab));
                }
            }
        }
    } catch (...) {
        llama_batch_free(batch);
        throw;
    }
    llama_batch_free(batch);
    return outcome;
}

}  // namespace graft
