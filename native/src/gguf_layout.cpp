#include "gguf_layout.h"

#include <vector>

#include "errors.h"

namespace graft {

uint64_t write_gguf_metadata(const gguf_context * ctx, AtomicOutputFile & out) {
    const size_t meta_size = gguf_get_meta_size(ctx);
    std::vector<uint8_t> meta(meta_size);
    gguf_get_meta_data(ctx, meta.data());
    out.write(meta.data(), meta.size());
    return meta_size;
}

void seek_tensor_start(const gguf_context * ctx, uint64_t meta_size, int64_t index, AtomicOutputFile & out) {
    const uint64_t start = meta_size + gguf_get_tensor_offset(ctx, index);
    if (out.position() > start) {
        throw GraftError(std::string("internal error: tensor '") + gguf_get_tensor_name(ctx, index) +
                         "' would overlap the previous one");
    }
    out.pad_to(start);
}

void finish_data_section(const gguf_context * ctx, AtomicOutputFile & out) {
    const uint64_t alignment = gguf_get_alignment(ctx);
    const uint64_t pos = out.position();
    out.pad_to((pos + alignment - 1) / alignment * alignment);
}

}  // namespace graft
