#pragma once
// Writes a new GGUF tensor by tensor: the table is fixed up front, then each tensor's data
// arrives in table order (as F32 values to encode, or as bytes of the tensor's type), so
// models far larger than memory can be generated.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "file_io.h"
#include "ggml.h"
#include "gguf.h"
#include "gguf_kv.h"

namespace graft {

struct TensorSpec {
    std::string name;
    ggml_type type;
    std::vector<int64_t> ne;  // ggml order: ne[0] is the row length
};

class GgufWriter {
public:
    GgufWriter(const std::string & path, const std::vector<KvValue> & kv, const std::vector<TensorSpec> & tensors,
               uint32_t alignment = 32);
    ~GgufWriter();

    size_t tensor_count() const { return specs_.size(); }
    size_t tensors_written() const { return next_; }
    const TensorSpec & next_spec() const;
    int64_t next_elements() const;
    void write_f32(const float * values, size_t count);
    void write_raw(const void * bytes, size_t count);
    // Closes the file under its final name; before this nothing exists under that name.
    uint64_t finish();
    void abort();

private:
    void begin_tensor();
    std::vector<TensorSpec> specs_;
    gguf_context * ctx_ = nullptr;
    ggml_context * meta_ = nullptr;
    std::unique_ptr<AtomicOutputFile> out_;
    uint64_t meta_size_ = 0;
    size_t next_ = 0;
};

}  // namespace graft
