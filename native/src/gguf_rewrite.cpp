#include "gguf_rewrite.h"

#include <map>
#include <memory>
#include <vector>

#include "errors.h"
#include "file_io.h"
#include "gguf_file.h"
#include "gguf_layout.h"
#include "tensor_codec.h"

namespace graft {

namespace {

using GgufPtr = std::unique_ptr<gguf_context, decltype(&gguf_free)>;

void validate_replacement(const TensorReplacement & r, const TensorEntry & t) {
    const int64_t n = t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3];
    check_row_fits_type(r.type, t.ne[0], "tensor '" + t.name + "'");
    switch (r.source) {
        case TensorReplacement::Source::F32:
            if (static_cast<int64_t>(r.count) != n) {
                throw GraftError("replacement for tensor '" + t.name + "' has " + std::to_string(r.count) +
                                 " values but the tensor has " + std::to_string(n));
            }
            if (!can_encode(r.type)) encode_from_f32(r.type, nullptr, 0, 1, nullptr);  // throws the explanation
            break;
        case TensorReplacement::Source::RAW:
            if (r.count != tensor_bytes(r.type, n, t.ne[0])) {
                throw GraftError("replacement for tensor '" + t.name + "' has " + std::to_string(r.count) + " bytes but " +
                                 type_name(r.type) + " data of that shape needs " +
                                 std::to_string(tensor_bytes(r.type, n, t.ne[0])));
            }
            break;
        case TensorReplacement::Source::CONVERT:
            if (!can_encode(r.type)) encode_from_f32(r.type, nullptr, 0, 1, nullptr);
            break;
    }
}

void write_replacement(const GgufFile & src, const TensorEntry & t, const TensorReplacement & r, AtomicOutputFile & out) {
    const int64_t n = t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3];
    if (r.source == TensorReplacement::Source::RAW) {
        out.write(r.raw, r.count);
        return;
    }
    const float * values = r.f32;
    std::vector<float> converted;
    if (r.source == TensorReplacement::Source::CONVERT) {
        std::vector<uint8_t> bytes(static_cast<size_t>(t.size));
        src.read_tensor_bytes(t, bytes.data());
        converted.resize(static_cast<size_t>(n));
        decode_to_f32(t.type, bytes.data(), n, converted.data());
        values = converted.data();
    }
    std::vector<uint8_t> encoded(tensor_bytes(r.type, n, t.ne[0]));
    encode_from_f32(r.type, values, n, t.ne[0], encoded.data());
    out.write(encoded.data(), encoded.size());
}

}  // namespace

RewriteResult rewrite_gguf(const std::string & src_path, const std::string & dst_path, const RewriteOptions & options) {
    GgufFile src(src_path);
    if (same_file(src_path, dst_path)) {
        throw GraftError("the output path is the input model itself (" + dst_path +
                         "); choose another path — Graft never modifies the original model");
    }

    std::map<std::string, const TensorReplacement *> by_name;
    for (const auto & r : options.replacements) {
        const TensorEntry * t = src.find_tensor(r.name);
        if (t == nullptr) throw GraftError("tensor '" + r.name + "' is not in " + src_path);
        if (!by_name.emplace(r.name, &r).second) throw GraftError("tensor '" + r.name + "' is replaced twice");
        validate_replacement(r, *t);
    }

    GgufPtr out_ctx(gguf_init_empty(), &gguf_free);
    gguf_set_kv(out_ctx.get(), src.gguf());
    for (const auto & key : options.remove_kv) gguf_remove_key(out_ctx.get(), key.c_str());
    apply_kv(out_ctx.get(), options.set_kv);
    for (const auto & t : src.tensors()) gguf_add_tensor(out_ctx.get(), t.descriptor);
    for (const auto & [name, r] : by_name) gguf_set_tensor_type(out_ctx.get(), name.c_str(), r->type);

    AtomicOutputFile out(dst_path);
    const uint64_t meta_size = write_gguf_metadata(out_ctx.get(), out);
    RewriteResult result;
    const auto & tensors = src.tensors();
    for (size_t i = 0; i < tensors.size(); ++i) {
        const TensorEntry & t = tensors[i];
        seek_tensor_start(out_ctx.get(), meta_size, static_cast<int64_t>(i), out);
        const auto it = by_name.find(t.name);
        if (it != by_name.end()) {
            write_replacement(src, t, *it->second, out);
            ++result.tensors_replaced;
        } else {
            out.copy_from(src.fd(), src.data_offset() + t.offset, t.size, src_path);
            ++result.tensors_copied;
        }
    }
    finish_data_section(out_ctx.get(), out);
    result.bytes_written = out.position();
    out.commit();
    return result;
}

}  // namespace graft
