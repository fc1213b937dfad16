#include "gguf_file.h"

#include <cstring>

#include "errors.h"
#include "log_capture.h"
#include "tensor_codec.h"

namespace graft {

namespace {

std::string describe_magic(const uint8_t * b, size_t n) {
    std::string printable, hex;
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; ++i) {
        printable += (b[i] >= 32 && b[i] < 127) ? static_cast<char>(b[i]) : '.';
        hex += digits[b[i] >> 4];
        hex += digits[b[i] & 15];
        if (i + 1 < n) hex += ' ';
    }
    return "'" + printable + "' (" + hex + ")";
}

}  // namespace

GgufFile::GgufFile(const std::string & path) : path_(path) {
    fd_ = open_for_reading(path, &file_size_);
    if (file_size_ < 8) {
        throw GraftError(path + " is not a GGUF file: it is only " + std::to_string(file_size_) + " bytes long");
    }
    uint8_t magic[4];
    read_exact(fd_.get(), 0, magic, 4, path);
    if (std::memcmp(magic, "GGUF", 4) != 0) {
        throw GraftError(path + " is not a GGUF file: it starts with " + describe_magic(magic, 4) + " instead of 'GGUF'");
    }

    {
        LogCapture capture;
        gguf_init_params params{/*no_alloc =*/ true, /*ctx =*/ &meta_};
        gguf_ = gguf_init_from_file(path.c_str(), params);
        if (gguf_ == nullptr) {
            std::string why = capture.last_error();
            if (why.empty()) why = "its header or tensor table is corrupted";
            if (why.find("failed to read") != std::string::npos || why.find("remaining file size") != std::string::npos) {
                why += " (the file may be truncated: it is " + std::to_string(file_size_) + " bytes long)";
            }
            throw GraftError(path + " is not a valid GGUF file: " + why);
        }
    }

    data_offset_ = gguf_get_data_offset(gguf_);
    const int64_t n = gguf_get_n_tensors(gguf_);
    tensors_.reserve(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        TensorEntry t{};
        t.name = gguf_get_tensor_name(gguf_, i);
        t.type = gguf_get_tensor_type(gguf_, i);
        t.offset = gguf_get_tensor_offset(gguf_, i);
        t.size = gguf_get_tensor_size(gguf_, i);
        t.descriptor = ggml_get_tensor(meta_, t.name.c_str());
        if (t.descriptor == nullptr) throw GraftError("internal error: no descriptor for tensor " + t.name);
        t.n_dims = ggml_n_dims(t.descriptor);
        for (int d = 0; d < GGML_MAX_DIMS; ++d) t.ne[d] = t.descriptor->ne[d];
        if (!is_known_type(t.type)) {
            throw GraftError(path + " is not a valid GGUF file: tensor '" + t.name + "' has an unknown type");
        }
        const uint64_t end = data_offset_ + t.offset + t.size;
        if (end > file_size_ || end < data_offset_) {
            throw GraftError(path + " is truncated: tensor '" + t.name + "' ends at byte " + std::to_string(end) +
                             " but the file has only " + std::to_string(file_size_) +
                             " bytes (an interrupted download or copy?)");
        }
        tensors_.push_back(t);
    }
}

GgufFile::~GgufFile() {
    if (gguf_) gguf_free(gguf_);
    if (meta_) ggml_free(meta_);
}

const TensorEntry * GgufFile::find_tensor(const std::string & name) const {
    for (const auto & t : tensors_) {
        if (t.name == name) return &t;
    }
    return nullptr;
}

void GgufFile::read_tensor_bytes(const TensorEntry & t, void * dst) const {
    read_exact(fd_.get(), data_offset_ + t.offset, dst, static_cast<size_t>(t.size), path_);
}

}  // namespace graft
