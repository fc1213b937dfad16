#include "gguf_kv.h"

#include <cstring>

#include "errors.h"

namespace graft {

size_t gguf_type_size(gguf_type type) {
    switch (type) {
        case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
        case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
        case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
        case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64: case GGUF_TYPE_FLOAT64: return 8;
        default: return 0;
    }
}

static const struct { const char * name; gguf_type type; } kTypeNames[] = {
    {"u8", GGUF_TYPE_UINT8}, {"i8", GGUF_TYPE_INT8}, {"u16", GGUF_TYPE_UINT16}, {"i16", GGUF_TYPE_INT16},
    {"u32", GGUF_TYPE_UINT32}, {"i32", GGUF_TYPE_INT32}, {"f32", GGUF_TYPE_FLOAT32}, {"bool", GGUF_TYPE_BOOL},
    {"str", GGUF_TYPE_STRING}, {"arr", GGUF_TYPE_ARRAY}, {"u64", GGUF_TYPE_UINT64}, {"i64", GGUF_TYPE_INT64},
    {"f64", GGUF_TYPE_FLOAT64},
};

gguf_type parse_gguf_type(const std::string & name) {
    for (const auto & t : kTypeNames) {
        if (name == t.name) return t.type;
    }
    throw GraftError("unknown metadata type '" + name + "' (expected u8, i8, u16, i16, u32, i32, u64, i64, f32, f64, bool, str or arr)");
}

std::string gguf_type_label(gguf_type type) {
    for (const auto & t : kTypeNames) {
        if (type == t.type) return t.name;
    }
    return "unknown";
}

void apply_kv(gguf_context * ctx, const std::vector<KvValue> & values) {
    for (const auto & v : values) {
        if (v.key.empty()) throw GraftError("metadata keys must not be empty");
        if (v.key == GGUF_KEY_GENERAL_ALIGNMENT) {
            uint32_t a = 0;
            if (v.type == GGUF_TYPE_UINT32 && v.bytes.size() == 4) std::memcpy(&a, v.bytes.data(), 4);
            if (a == 0 || (a & (a - 1)) != 0) {
                throw GraftError(std::string(GGUF_KEY_GENERAL_ALIGNMENT) + " must be a u32 power of two");
            }
        }
        gguf_remove_key(ctx, v.key.c_str());
        const char * key = v.key.c_str();
        const uint8_t * b = v.bytes.data();
        switch (v.type) {
            case GGUF_TYPE_STRING: gguf_set_val_str(ctx, key, v.text.c_str()); break;
            case GGUF_TYPE_ARRAY:
                if (v.item_type == GGUF_TYPE_STRING) {
                    std::vector<const char *> ptrs;
                    ptrs.reserve(v.texts.size());
                    for (const auto & s : v.texts) ptrs.push_back(s.c_str());
                    gguf_set_arr_str(ctx, key, ptrs.data(), ptrs.size());
                } else {
                    const size_t size = gguf_type_size(v.item_type);
                    if (size == 0) throw GraftError("metadata array '" + v.key + "' has an unsupported element type");
                    gguf_set_arr_data(ctx, key, v.item_type, v.bytes.data(), v.bytes.size() / size);
                }
                break;
            default: {
                const size_t size = gguf_type_size(v.type);
                if (size == 0 || v.bytes.size() != size) throw GraftError("metadata value '" + v.key + "' is malformed");
                switch (v.type) {
                    case GGUF_TYPE_UINT8: gguf_set_val_u8(ctx, key, *b); break;
                    case GGUF_TYPE_INT8: gguf_set_val_i8(ctx, key, static_cast<int8_t>(*b)); break;
                    case GGUF_TYPE_BOOL: gguf_set_val_bool(ctx, key, *b != 0); break;
                    case GGUF_TYPE_UINT16: { uint16_t x; std::memcpy(&x, b, 2); gguf_set_val_u16(ctx, key, x); break; }
                    case GGUF_TYPE_INT16: { int16_t x; std::memcpy(&x, b, 2); gguf_set_val_i16(ctx, key, x); break; }
                    case GGUF_TYPE_UINT32: { uint32_t x; std::memcpy(&x, b, 4); gguf_set_val_u32(ctx, key, x); break; }
                    case GGUF_TYPE_INT32: { int32_t x; std::memcpy(&x, b, 4); gguf_set_val_i32(ctx, key, x); break; }
                    case GGUF_TYPE_FLOAT32: { float x; std::memcpy(&x, b, 4); gguf_set_val_f32(ctx, key, x); break; }
                    case GGUF_TYPE_UINT64: { uint64_t x; std::memcpy(&x, b, 8); gguf_set_val_u64(ctx, key, x); break; }
                    case GGUF_TYPE_INT64: { int64_t x; std::memcpy(&x, b, 8); gguf_set_val_i64(ctx, key, x); break; }
                    case GGUF_TYPE_FLOAT64: { double x; std::memcpy(&x, b, 8); gguf_set_val_f64(ctx, key, x); break; }
                    default: throw GraftError("metadata value '" + v.key + "' has an unsupported type");
                }
            }
        }
    }
}

}  // namespace graft
