#pragma once
// Text ↔ tokens through a llama_model's vocabulary, shared by the llama.cpp session and the
// own graph (which loads a vocab-only model) so both always tokenize identically.
#include <cstdint>
#include <string>
#include <vector>

#include "llama.h"

namespace graft {

std::vector<int32_t> tokenize_text(const llama_model * model, const std::string & text, bool add_special);
std::string token_text(const llama_model * model, int32_t token);

// log-softmax of one row of logits, summed in double.
void log_softmax_row(const float * logits, int n, float * out);

}  // namespace graft
