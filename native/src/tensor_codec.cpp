#include "tensor_codec.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "errors.h"

namespace graft {

namespace {

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

}  // namespace

bool is_known_type(int type) {
    if (type < 0 || type >= GGML_TYPE_COUNT) return false;
    const auto * traits = ggml_get_type_traits(static_cast<ggml_type>(type));
    // Retired type ids (Q4_2, Q4_3, ...) keep a slot with a zero block size.
    return traits != nullptr && traits->blck_size > 0 && traits->type_name != nullptr;
}

ggml_type parse_type(const std::string & name) {
    const std::string wanted = lower(name);
    for (int t = 0; t < GGML_TYPE_COUNT; ++t) {
        if (is_known_type(t) && lower(ggml_type_name(static_cast<ggml_type>(t))) == wanted) {
            return static_cast<ggml_type>(t);
        }
    }
    throw GraftError("unknown tensor type '" + name + "' (expected a ggml type such as f32, f16, q8_0 or q4_k)");
}

std::string type_name(ggml_type type) {
    return is_known_type(type) ? ggml_type_name(type) : "type#" + std::to_string(static_cast<int>(type));
}

void check_row_fits_type(ggml_type type, int64_t n_per_row, const std::string & what) {
    const int64_t block = ggml_blck_size(type);
    if (n_per_row <= 0 || n_per_row % block != 0) {
        throw GraftError(what + ": rows of " + std::to_string(n_per_row) + " values cannot be stored as " +
                         type_name(type) + ", which packs blocks of " + std::to_string(block));
    }
}

size_t tensor_bytes(ggml_type type, int64_t n_elements, int64_t n_per_row) {
    return ggml_row_size(type, n_per_row) * static_cast<size_t>(n_elements / n_per_row);
}

bool can_encode(ggml_type type) {
    switch (type) {
        case GGML_TYPE_F32: case GGML_TYPE_F16: case GGML_TYPE_BF16:
        case GGML_TYPE_Q4_0: case GGML_TYPE_Q4_1: case GGML_TYPE_Q5_0: case GGML_TYPE_Q5_1: case GGML_TYPE_Q8_0:
        case GGML_TYPE_Q2_K: case GGML_TYPE_Q3_K: case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K: case GGML_TYPE_Q6_K:
        case GGML_TYPE_IQ4_NL: case GGML_TYPE_IQ4_XS:
            return !ggml_quantize_requires_imatrix(type);
        default:
            return false;
    }
}

void encode_from_f32(ggml_type type, const float * src, int64_t n_elements, int64_t n_per_row, void * dst) {
    if (type == GGML_TYPE_F32) {
        std::memcpy(dst, src, static_cast<size_t>(n_elements) * sizeof(float));
        return;
    }
    if (!can_encode(type)) {
        throw GraftError("Graft cannot write tensors as " + type_name(type) +
                         " (it needs an importance matrix or has no encoder); use f32, f16, bf16, q8_0, q6_k, q5_k, q4_k or q4_0");
    }
    ggml_quantize_chunk(type, src, dst, 0, n_elements / n_per_row, n_per_row, nullptr);
}

void decode_to_f32(ggml_type type, const void * src, int64_t n_elements, float * dst) {
    if (type == GGML_TYPE_F32) {
        std::memcpy(dst, src, static_cast<size_t>(n_elements) * sizeof(float));
        return;
    }
    const auto * traits = ggml_get_type_traits(type);
    if (traits->to_float == nullptr) throw GraftError("cannot read tensors of type " + type_name(type));
    traits->to_float(src, dst, n_elements);
}

}  // namespace graft
