#pragma once
// Metadata values to set on a GGUF being written, independent of N-API so the C++ core can
// be driven from a standalone executable too.
#include <cstdint>
#include <string>
#include <vector>

#include "gguf.h"

namespace graft {

struct KvValue {
    std::string key;
    gguf_type type = GGUF_TYPE_UINT32;  // GGUF_TYPE_ARRAY for arrays
    gguf_type item_type = GGUF_TYPE_UINT32;  // element type of arrays
    std::vector<uint8_t> bytes;          // scalar or array elements of numeric/bool types
    std::string text;                    // GGUF_TYPE_STRING
    std::vector<std::string> texts;      // arrays of strings
};

size_t gguf_type_size(gguf_type type);  // 0 for strings and arrays
gguf_type parse_gguf_type(const std::string & name);
std::string gguf_type_label(gguf_type type);

// Sets (replacing any existing value of) each key on ctx.
void apply_kv(gguf_context * ctx, const std::vector<KvValue> & values);

}  // namespace graft
