#include "vocab_text.h"

#include <algorithm>
#include <cmath>

#include "errors.h"

namespace graft {

std::vector<int32_t> tokenize_text(const llama_model * model, const std::string & text, bool add_special) {
    const llama_vocab * vocab = llama_model_get_vocab(model);
    std::vector<int32_t> tokens(text.size() + 8);
    int n = llama_tokenize(vocab, text.c_str(), static_cast<int32_t>(text.size()), tokens.data(),
                           static_cast<int32_t>(tokens.size()), add_special, false);
    if (n < 0) {
        tokens.resize(static_cast<size_t>(-n));
        n = llama_tokenize(vocab, text.c_str(), static_cast<int32_t>(text.size()), tokens.data(),
                           static_cast<int32_t>(tokens.size()), add_special, false);
    }
    if (n < 0) throw GraftError("the text could not be tokenized");
    tokens.resize(static_cast<size_t>(n));
    return tokens;
}

std::string token_text(const llama_model * model, int32_t token) {
    char buf[256];
    const int n = llama_token_to_piece(llama_model_get_vocab(model), token, buf, sizeof(buf), 0, true);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

void log_softmax_row(const float * logits, int n, float * out) {
    double max = logits[0];
    for (int i = 1; i < n; ++i) max = std::max<double>(max, logits[i]);
    double sum = 0;
    for (int i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i]) - max);
    const double log_z = max + std::log(sum);
    for (int i = 0; i < n; ++i) out[i] = static_cast<float>(logits[i] - log_z);
}

}  // namespace graft
