#pragma once
// Random-weight GGUF models (llama, qwen2, qwen3; f32, f16, q8_0, q4_k) written from C++, so
// the standalone check tool can build its own test and benchmark models on machines without
// Node. Same layout and metadata as electron/core/models/testModels/makeTestModel.ts; the
// weights are filled and quantised on several threads, so 8B-parameter shapes take seconds.
#include <cstdint>
#include <string>

namespace graft {

struct RandomModelSpec {
    std::string arch = "llama";
    std::string type = "f32";
    int layers = 2, embd = 64, ff = 128, heads = 4, kv_heads = 2, vocab = 320, context = 512;
    uint64_t seed = 7;
};

uint64_t write_random_model(const RandomModelSpec & spec, const std::string & path, int threads);

}  // namespace graft
