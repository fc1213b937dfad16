#pragma once
// Conversions between F32 values and the bytes of any ggml tensor type, through ggml's own
// quantize/dequantize routines so the bytes are exactly what llama.cpp would read or write.
#include <cstddef>
#include <cstdint>
#include <string>

#include "ggml.h"

namespace graft {

// Accepts ggml's names ("f32", "f16", "q8_0", "q4_K", ...), case-insensitively.
ggml_type parse_type(const std::string & name);
bool is_known_type(int type);
std::string type_name(ggml_type type);

// Throws unless rows of n_per_row values can be stored in `type`.
void check_row_fits_type(ggml_type type, int64_t n_per_row, const std::string & what);
size_t tensor_bytes(ggml_type type, int64_t n_elements, int64_t n_per_row);

bool can_encode(ggml_type type);
void encode_from_f32(ggml_type type, const float * src, int64_t n_elements, int64_t n_per_row, void * dst);
void decode_to_f32(ggml_type type, const void * src, int64_t n_elements, float * dst);

}  // namespace graft
