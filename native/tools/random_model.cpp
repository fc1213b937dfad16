#include "random_model.h"

#include <cmath>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include "errors.h"
#include "gguf_kv.h"
#include "gguf_writer.h"
#include "tensor_codec.h"

namespace graft {

namespace {

KvValue kv_str(const std::string & key, const std::string & value) {
    KvValue v;
    v.key = key;
    v.type = GGUF_TYPE_STRING;
    v.text = value;
    return v;
}

template <typename T>
KvValue kv_num(const std::string & key, gguf_type type, T value) {
    KvValue v;
    v.key = key;
    v.type = type;
    v.bytes.resize(sizeof(T));
    std::memcpy(v.bytes.data(), &value, sizeof(T));
    return v;
}

template <typename T>
KvValue kv_arr(const std::string & key, gguf_type item, const std::vector<T> & values) {
    KvValue v;
    v.key = key;
    v.type = GGUF_TYPE_ARRAY;
    v.item_type = item;
    v.bytes.resize(values.size() * sizeof(T));
    std::memcpy(v.bytes.data(), values.data(), v.bytes.size());
    return v;
}

// SentencePiece-style vocabulary: specials, 256 byte tokens, then letter pieces.
void add_vocabulary(std::vector<KvValue> & kv, int size) {
    std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
    std::vector<int32_t> types = {2, 3, 3};
    for (int b = 0; b < 256; ++b) {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
        tokens.push_back(buf);
        types.push_back(6);
    }
    const std::string sp = "\xe2\x96\x81";  // ▁
    const std::string letters = "etaoinshrdlcumwfgypbvkjxqz";
    std::vector<std::string> pieces = {sp};
    for (char c : letters) pieces.push_back(std::string(1, c));
    for (char c : letters) pieces.push_back(sp + c);
    std::function<void(const std::string &, int)> grow = [&](const std::string & prefix, int depth) {
        for (char c : letters) {
            if (static_cast<int>(tokens.size() + pieces.size()) >= size) return;
            pieces.push_back(prefix + c);
            pieces.push_back(sp + prefix + c);
        }
        if (depth > 1) for (char c : letters) grow(prefix + c, depth - 1);
    };
    for (char c : letters) grow(std::string(1, c), 3);
    if (static_cast<int>(tokens.size() + pieces.size()) < size) throw GraftError("vocabulary too large for the test vocabulary");
    std::vector<float> scores(tokens.size(), 0.0f);
    for (size_t i = 0; tokens.size() < static_cast<size_t>(size); ++i) {
        tokens.push_back(pieces[i]);
        types.push_back(1);
        scores.push_back(-static_cast<float>(i + 1));
    }
    KvValue t;
    t.key = "tokenizer.ggml.tokens";
    t.type = GGUF_TYPE_ARRAY;
    t.item_type = GGUF_TYPE_STRING;
    t.texts = tokens;
    kv.push_back(t);
    kv.push_back(kv_arr("tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores));
    kv.push_back(kv_arr("tokenizer.ggml.token_type", GGUF_TYPE_INT32, types));
}

uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

struct Tensor {
    std::string name;
    ggml_type type;
    int64_t cols, rows;
    float mean, std;
};

}  // namespace

uint64_t write_random_model(const RandomModelSpec & s, const std::string & path, int threads) {
    if (s.arch != "llama" && s.arch != "qwen2" && s.arch != "qwen3") throw GraftError("arch must be llama, qwen2 or qwen3");
    if (s.embd % s.heads != 0 || s.heads % s.kv_heads != 0) throw GraftError("embd must be a multiple of heads, heads of kv_heads");
    const ggml_type wanted = parse_type(s.type);
    const bool qwen = s.arch != "llama";
    const std::string a = s.arch + ".";
    const int head_dim = s.embd / s.heads, kv_dim = head_dim * s.kv_heads;
    std::vector<KvValue> kv = {
        kv_str("general.architecture", s.arch),
        kv_str("general.name", "graft-check random " + s.arch + " " + s.type),
        kv_num<uint32_t>("general.quantization_version", GGUF_TYPE_UINT32, 2),
        kv_num<uint32_t>(a + "context_length", GGUF_TYPE_UINT32, static_cast<uint32_t>(s.context)),
        kv_num<uint32_t>(a + "embedding_length", GGUF_TYPE_UINT32, static_cast<uint32_t>(s.embd)),
        kv_num<uint32_t>(a + "block_count", GGUF_TYPE_UINT32, static_cast<uint32_t>(s.layers)),
        kv_num<uint32_t>(a + "feed_forward_length", GGUF_TYPE_UINT32, static_cast<uint32_t>(s.ff)),
        kv_num<uint32_t>(a + "attention.head_count", GGUF_TYPE_UINT32, static_cast<uint32_t>(s.heads)),
        kv_num<uint32_t>(a + "attention.head_count_kv", GGUF_TYPE_UINT32, static_cast<uint32_t>(s.kv_heads)),
        kv_num<float>(a + "attention.layer_norm_rms_epsilon", GGUF_TYPE_FLOAT32, qwen ? 1e-6f : 1e-5f),
        kv_num<float>(a + "rope.freq_base", GGUF_TYPE_FLOAT32, qwen ? 1000000.0f : 10000.0f),
        kv_num<uint32_t>(a + "rope.dimension_count", GGUF_TYPE_UINT32, static_cast<uint32_t>(head_dim)),
        kv_num<uint32_t>(a + "vocab_size", GGUF_TYPE_UINT32, static_cast<uint32_t>(s.vocab)),
        kv_str("tokenizer.ggml.model", "llama"),
        kv_num<uint32_t>("tokenizer.ggml.bos_token_id", GGUF_TYPE_UINT32, 1),
        kv_num<uint32_t>("tokenizer.ggml.eos_token_id", GGUF_TYPE_UINT32, 2),
        kv_num<uint32_t>("tokenizer.ggml.unknown_token_id", GGUF_TYPE_UINT32, 0),
        kv_num<uint8_t>("tokenizer.ggml.add_bos_token", GGUF_TYPE_BOOL, 1),
        kv_num<uint8_t>("tokenizer.ggml.add_eos_token", GGUF_TYPE_BOOL, 0),
    };
    add_vocabulary(kv, s.vocab);

    auto storage = [&](int64_t cols) {
        for (ggml_type t : {wanted, GGML_TYPE_Q8_0, GGML_TYPE_F16}) {
            if (cols % ggml_blck_size(t) == 0) return t;
        }
        return GGML_TYPE_F32;
    };
    std::vector<Tensor> list;
    auto matrix = [&](const std::string & name, int64_t cols, int64_t rows) {
        list.push_back({name, storage(cols), cols, rows, 0.0f, 1.0f / std::sqrt(static_cast<float>(cols))});
    };
    auto vec = [&](const std::string & name, int64_t n, float mean, float std) { list.push_back({name, GGML_TYPE_F32, n, 1, mean, std}); };
    matrix("token_embd.weight", s.embd, s.vocab);
    vec("output_norm.weight", s.embd, 1.0f, 0.05f);
    matrix("output.weight", s.embd, s.vocab);
    for (int i = 0; i < s.layers; ++i) {
        const std::string p = "blk." + std::to_string(i) + ".";
        vec(p + "attn_norm.weight", s.embd, 1.0f, 0.05f);
        matrix(p + "attn_q.weight", s.embd, s.embd);
        matrix(p + "attn_k.weight", s.embd, kv_dim);
        matrix(p + "attn_v.weight", s.embd, kv_dim);
        if (s.arch == "qwen2") {
            vec(p + "attn_q.bias", s.embd, 0.0f, 0.02f);
            vec(p + "attn_k.bias", kv_dim, 0.0f, 0.02f);
            vec(p + "attn_v.bias", kv_dim, 0.0f, 0.02f);
        }
        if (s.arch == "qwen3") {
            vec(p + "attn_q_norm.weight", head_dim, 1.0f, 0.05f);
            vec(p + "attn_k_norm.weight", head_dim, 1.0f, 0.05f);
        }
        matrix(p + "attn_output.weight", s.embd, s.embd);
        vec(p + "ffn_norm.weight", s.embd, 1.0f, 0.05f);
        matrix(p + "ffn_gate.weight", s.embd, s.ff);
        matrix(p + "ffn_up.weight", s.embd, s.ff);
        matrix(p + "ffn_down.weight", s.ff, s.embd);
    }
    std::vector<TensorSpec> specs;
    for (const auto & t : list) specs.push_back({t.name, t.type, t.rows == 1 ? std::vector<int64_t>{t.cols} : std::vector<int64_t>{t.cols, t.rows}});
    GgufWriter writer(path, kv, specs);
    const int n_threads = std::max(1, threads);
    for (size_t ti = 0; ti < list.size(); ++ti) {
        const Tensor & t = list[ti];
        const size_t row_bytes = ggml_row_size(t.type, t.cols);
        std::vector<uint8_t> bytes(row_bytes * static_cast<size_t>(t.rows));
        auto work = [&](int64_t r0, int64_t r1) {
            if (t.type == GGML_TYPE_Q4_K) {
                // Random Q4_K blocks written directly (quantising 8B random floats takes
                // minutes): random 4-bit values and 6-bit sub-block scales/minimums, with
                // d and dmin chosen so the weights have mean ≈ 0 and the wanted spread.
                const float d = t.std / 245.0f;
                const ggml_fp16_t d16 = ggml_fp32_to_fp16(d), dmin16 = ggml_fp32_to_fp16(7.5f * d);
                for (int64_t r = r0; r < r1; ++r) {
                    uint64_t state = mix(s.seed * 0x100000001b3ULL + ti * 0x9e3779b97f4a7c15ULL + static_cast<uint64_t>(r));
                    uint8_t * row = bytes.data() + static_cast<size_t>(r) * row_bytes;
                    for (size_t b = 0; b < row_bytes; b += 8) {
                        state = mix(state);
                        std::memcpy(row + b, &state, std::min<size_t>(8, row_bytes - b));
                    }
                    for (size_t blk = 0; blk < row_bytes; blk += ggml_type_size(GGML_TYPE_Q4_K)) {
                        std::memcpy(row + blk, &d16, 2);
                        std::memcpy(row + blk + 2, &dmin16, 2);
                    }
                }
                return;
            }
            std::vector<float> row(static_cast<size_t>(t.cols));
            const float half = t.std * std::sqrt(3.0f);
            for (int64_t r = r0; r < r1; ++r) {
                uint64_t state = mix(s.seed * 0x100000001b3ULL + ti * 0x9e3779b97f4a7c15ULL + static_cast<uint64_t>(r));
                for (auto & x : row) {
                    state = mix(state);
                    x = t.mean + (static_cast<float>(state >> 40) / static_cast<float>(1 << 24) * 2.0f - 1.0f) * half;
                }
                encode_from_f32(t.type, row.data(), t.cols, t.cols, bytes.data() + static_cast<size_t>(r) * row_bytes);
            }
        };
        std::vector<std::thread> pool;
        const int64_t per = (t.rows + n_threads - 1) / n_threads;
        for (int k = 0; k < n_threads; ++k) {
            const int64_t r0 = k * per, r1 = std::min<int64_t>(t.rows, r0 + per);
            if (r0 < r1) pool.emplace_back(work, r0, r1);
        }
        for (auto & th : pool) th.join();
        writer.write_raw(bytes.data(), bytes.size());
    }
    return writer.finish();
}

}  // namespace graft
