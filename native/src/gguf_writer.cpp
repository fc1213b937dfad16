#include "gguf_writer.h"

#include <set>

#include "errors.h"
#include "gguf_layout.h"
#include "tensor_codec.h"

namespace graft {

GgufWriter::GgufWriter(const std::string & path, const std::vector<KvValue> & kv, const std::vector<TensorSpec> & tensors,
                       uint32_t alignment)
    : specs_(tensors) {
    std::set<std::string> names;
    for (const auto & t : specs_) {
        if (t.name.empty() || t.name.size() >= GGML_MAX_NAME) {
            throw GraftError("tensor name '" + t.name + "' must be 1 to " + std::to_string(GGML_MAX_NAME - 1) + " characters");
        }
        if (!names.insert(t.name).second) throw GraftError("tensor '" + t.name + "' is listed twice");
        if (t.ne.empty() || t.ne.size() > GGML_MAX_DIMS) throw GraftError("tensor '" + t.name + "' must have 1 to 4 dimensions");
        for (int64_t d : t.ne) {
            if (d <= 0) throw GraftError("tensor '" + t.name + "' has a dimension that is not positive");
        }
        check_row_fits_type(t.type, t.ne[0], "tensor '" + t.name + "'");
    }
    ctx_ = gguf_init_empty();
    if (alignment != 32) gguf_set_val_u32(ctx_, GGUF_KEY_GENERAL_ALIGNMENT, alignment);
    apply_kv(ctx_, kv);
    ggml_init_params params{ggml_tensor_overhead() * (specs_.size() + 1), nullptr, true};
    meta_ = ggml_init(params);
    for (const auto & t : specs_) {
        ggml_tensor * d = ggml_new_tensor(meta_, t.type, static_cast<int>(t.ne.size()), t.ne.data());
        ggml_set_name(d, t.name.c_str());
        gguf_add_tensor(ctx_, d);
    }
    out_ = std::make_unique<AtomicOutputFile>(path);
    meta_size_ = write_gguf_metadata(ctx_, *out_);
}

GgufWriter::~GgufWriter() {
    if (ctx_) gguf_free(ctx_);
    if (meta_) ggml_free(meta_);
}

const TensorSpec & GgufWriter::next_spec() const {
    if (!out_) throw GraftError("the GGUF writer is already closed");
    if (next_ >= specs_.size()) throw GraftError("all tensors have already been written");
    return specs_[next_];
}

int64_t GgufWriter::next_elements() const {
    int64_t n = 1;
    for (int64_t d : next_spec().ne) n *= d;
    return n;
}

void GgufWriter::begin_tensor() {
    seek_tensor_start(ctx_, meta_size_, static_cast<int64_t>(next_), *out_);
}

void GgufWriter::write_f32(const float * values, size_t count) {
    const TensorSpec & t = next_spec();
    const int64_t n = next_elements();
    if (static_cast<int64_t>(count) != n) {
        throw GraftError("tensor '" + t.name + "' needs " + std::to_string(n) + " values, got " + std::to_string(count));
    }
    std::vector<uint8_t> encoded(tensor_bytes(t.type, n, t.ne[0]));
    encode_from_f32(t.type, values, n, t.ne[0], encoded.data());
    begin_tensor();
    out_->write(encoded.data(), encoded.size());
    ++next_;
}

void GgufWriter::write_raw(const void * bytes, size_t count) {
    const TensorSpec & t = next_spec();
    const size_t expected = tensor_bytes(t.type, next_elements(), t.ne[0]);
    if (count != expected) {
        throw GraftError("tensor '" + t.name + "' needs " + std::to_string(expected) + " bytes of " + type_name(t.type) +
                         " data, got " + std::to_string(count));
    }
    begin_tensor();
    out_->write(bytes, count);
    ++next_;
}

uint64_t GgufWriter::finish() {
    if (!out_) throw GraftError("the GGUF writer is already closed");
    if (next_ != specs_.size()) {
        throw GraftError("only " + std::to_string(next_) + " of " + std::to_string(specs_.size()) +
                         " tensors were written; the file was not created");
    }
    finish_data_section(ctx_, *out_);
    const uint64_t size = out_->position();
    out_->commit();
    out_.reset();
    return size;
}

void GgufWriter::abort() {
    out_.reset();
}

}  // namespace graft
