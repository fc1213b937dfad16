#pragma once
// Second-moment files (.moments): one layer's C = Σ k kᵀ / n over a corpus, or, for a
// checkpoint of a running job, the raw sum Σ k kᵀ so far.
//
// Layout (little-endian):
//   bytes 0–7    magic "GRAFTMOM"
//   bytes 8–11   u32 format version (1)
//   bytes 12–15  u32 header length H (a multiple of 8)
//   16 … 16+H    header: UTF-8 "key=value\n" lines, padded with '\n'
//   16+H …       n_ff × n_ff f64, row-major (the matrix is symmetric)
// Header keys: kind (second-moments | checkpoint), matrix (mean | sum), layer, n_ff,
// n (tokens accumulated), token_count (tokens of the corpus used), context_size (chunk
// length), model_sha256, corpus_sha256. A reader verifies every key field against what it
// expects, so a file of another model, corpus, layer or chunking is never used by mistake.
#include <cstdint>
#include <string>
#include <vector>

namespace graft {

struct MomentsHeader {
    std::string kind;    // "second-moments" (final) or "checkpoint"
    std::string matrix;  // "mean" or "sum"
    int layer = 0;
    int n_ff = 0;
    int64_t n = 0;
    int64_t token_count = 0;
    int context_size = 0;
    std::string model_sha256;
    std::string corpus_sha256;
};

// Written under a temporary name, fsynced and renamed: the path holds either the previous
// file or the complete new one.
void write_moments_file(const std::string & path, const MomentsHeader & header, const double * data);
// Reads a file written by write_moments_file; data may be null to read the header only.
MomentsHeader read_moments_file(const std::string & path, std::vector<double> * data);
// Empty when the key fields (kind, layer, n_ff, token_count, context_size, shas) match;
// otherwise a one-line reason.
std::string moments_mismatch(const MomentsHeader & found, const MomentsHeader & expected);

}  // namespace graft
