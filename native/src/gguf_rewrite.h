#pragma once
// Streaming rewrite: copies a GGUF to a new file, replacing chosen tensors (their type may
// change) and metadata keys, holding at most one tensor in memory. The source is only read.
#include <cstdint>
#include <string>
#include <vector>

#include "ggml.h"
#include "gguf_kv.h"

namespace graft {

struct TensorReplacement {
    enum class Source { F32, RAW, CONVERT };
    std::string name;
    ggml_type type;
    Source source = Source::CONVERT;  // CONVERT re-encodes the source tensor's values as `type`
    const float * f32 = nullptr;      // Source::F32: ne elements, row-major as in ggml
    const uint8_t * raw = nullptr;    // Source::RAW: bytes already in `type`
    size_t count = 0;                 // elements (F32) or bytes (RAW)
};

struct RewriteOptions {
    std::vector<TensorReplacement> replacements;
    std::vector<KvValue> set_kv;
    std::vector<std::string> remove_kv;
};

struct RewriteResult {
    uint64_t bytes_written = 0;
    int tensors_replaced = 0;
    int tensors_copied = 0;
};

RewriteResult rewrite_gguf(const std::string & src_path, const std::string & dst_path, const RewriteOptions & options);

}  // namespace graft
