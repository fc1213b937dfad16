#pragma once
// Writing a GGUF in one pass: the metadata (KV pairs and tensor table) first, then each
// tensor's bytes at the offset the table promises, zero-padded to the alignment.
#include <cstdint>
#include <string>

#include "file_io.h"
#include "gguf.h"

namespace graft {

// Writes ctx's metadata to out and returns its size (the start of the data section).
uint64_t write_gguf_metadata(const gguf_context * ctx, AtomicOutputFile & out);

// Pads out up to where tensor `index` must begin.
void seek_tensor_start(const gguf_context * ctx, uint64_t meta_size, int64_t index, AtomicOutputFile & out);

// Pads the end of the data section the way gguf.cpp does, after the last tensor.
void finish_data_section(const gguf_context * ctx, AtomicOutputFile & out);

}  // namespace graft
