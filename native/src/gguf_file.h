#pragma once
// A GGUF file opened read-only and validated beyond what gguf.cpp checks: every tensor's
// bytes must lie inside the file, so a truncated download is caught before anything reads it.
#include <cstdint>
#include <string>
#include <vector>

#include "file_io.h"
#include "ggml.h"
#include "gguf.h"

namespace graft {

struct TensorEntry {
    std::string name;
    ggml_type type;
    int n_dims;
    int64_t ne[GGML_MAX_DIMS];
    uint64_t offset;  // from the start of the data section
    uint64_t size;    // bytes
    const ggml_tensor * descriptor;  // shape/type holder for gguf_add_tensor (no data)
};

class GgufFile {
public:
    explicit GgufFile(const std::string & path);
    ~GgufFile();
    GgufFile(const GgufFile &) = delete;
    GgufFile & operator=(const GgufFile &) = delete;

    const std::string & path() const { return path_; }
    gguf_context * gguf() const { return gguf_; }
    int fd() const { return fd_.get(); }
    uint64_t file_size() const { return file_size_; }
    uint64_t data_offset() const { return data_offset_; }
    const std::vector<TensorEntry> & tensors() const { return tensors_; }
    const TensorEntry * find_tensor(const std::string & name) const;
    void read_tensor_bytes(const TensorEntry & t, void * dst) const;

private:
    std::string path_;
    Fd fd_;
    uint64_t file_size_ = 0;
    uint64_t data_offset_ = 0;
    gguf_context * gguf_ = nullptr;
    ggml_context * meta_ = nullptr;
    std::vector<TensorEntry> tensors_;
};

}  // namespace graft
