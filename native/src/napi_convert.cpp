#include "napi_convert.h"

#include <cmath>
#include <cstring>

#include "errors.h"

namespace graft {

std::string require_string(const Napi::Value & v, const std::string & what) {
    if (!v.IsString()) throw GraftError(what + " must be a string");
    return v.As<Napi::String>().Utf8Value();
}

namespace {

template <typename T>
void append_bytes(std::vector<uint8_t> & out, T value) {
    const auto * p = reinterpret_cast<const uint8_t *>(&value);
    out.insert(out.end(), p, p + sizeof(T));
}

double number_of(const Napi::Value & v, const std::string & key) {
    if (v.IsNumber()) return v.As<Napi::Number>().DoubleValue();
    if (v.IsBoolean()) return v.As<Napi::Boolean>().Value() ? 1 : 0;
    if (v.IsBigInt()) {
        bool lossless = false;
        return static_cast<double>(v.As<Napi::BigInt>().Int64Value(&lossless));
    }
    throw GraftError("metadata '" + key + "' must hold numbers");
}

void append_scalar(std::vector<uint8_t> & out, gguf_type type, const Napi::Value & v, const std::string & key) {
    if ((type == GGUF_TYPE_UINT64 || type == GGUF_TYPE_INT64) && v.IsBigInt()) {
        bool lossless = false;
        if (type == GGUF_TYPE_UINT64) append_bytes(out, v.As<Napi::BigInt>().Uint64Value(&lossless));
        else append_bytes(out, v.As<Napi::BigInt>().Int64Value(&lossless));
        return;
    }
    const double x = number_of(v, key);
    const bool integral = std::isfinite(x) && std::floor(x) == x;
    auto check_range = [&](double lo, double hi) {
        if (!integral || x < lo || x > hi) throw GraftError("metadata '" + key + "' value " + std::to_string(x) + " does not fit " + gguf_type_label(type));
    };
    switch (type) {
        case GGUF_TYPE_UINT8: check_range(0, 255); append_bytes(out, static_cast<uint8_t>(x)); break;
        case GGUF_TYPE_INT8: check_range(-128, 127); append_bytes(out, static_cast<int8_t>(x)); break;
        case GGUF_TYPE_UINT16: check_range(0, 65535); append_bytes(out, static_cast<uint16_t>(x)); break;
        case GGUF_TYPE_INT16: check_range(-32768, 32767); append_bytes(out, static_cast<int16_t>(x)); break;
        case GGUF_TYPE_UINT32: check_range(0, 4294967295.0); append_bytes(out, static_cast<uint32_t>(x)); break;
        case GGUF_TYPE_INT32: check_range(-2147483648.0, 2147483647.0); append_bytes(out, static_cast<int32_t>(x)); break;
        case GGUF_TYPE_UINT64: check_range(0, 18446744073709551615.0); append_bytes(out, static_cast<uint64_t>(x)); break;
        case GGUF_TYPE_INT64: check_range(-9223372036854775808.0, 9223372036854775807.0); append_bytes(out, static_cast<int64_t>(x)); break;
        case GGUF_TYPE_FLOAT32: append_bytes(out, static_cast<float>(x)); break;
        case GGUF_TYPE_FLOAT64: append_bytes(out, x); break;
        case GGUF_TYPE_BOOL: append_bytes(out, static_cast<uint8_t>(x != 0)); break;
        default: throw GraftError("metadata '" + key + "' has an unsupported type");
    }
}

}  // namespace

std::vector<KvValue> kv_from_js(const Napi::Value & v) {
    std::vector<KvValue> out;
    if (v.IsUndefined() || v.IsNull()) return out;
    if (!v.IsArray()) throw GraftError("metadata must be an array of {key, type, value}");
    const auto arr = v.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) {
        const Napi::Value item = arr.Get(i);
        if (!item.IsObject()) throw GraftError("metadata entries must be objects");
        const auto o = item.As<Napi::Object>();
        KvValue kv;
        kv.key = require_string(o.Get("key"), "metadata key");
        kv.type = parse_gguf_type(require_string(o.Get("type"), "type of metadata '" + kv.key + "'"));
        const Napi::Value value = o.Get("value");
        if (kv.type == GGUF_TYPE_STRING) {
            kv.text = require_string(value, "metadata '" + kv.key + "'");
        } else if (kv.type == GGUF_TYPE_ARRAY) {
            kv.item_type = parse_gguf_type(require_string(o.Get("itemType"), "itemType of metadata '" + kv.key + "'"));
            if (kv.item_type == GGUF_TYPE_ARRAY) throw GraftError("metadata '" + kv.key + "': nested arrays are not supported");
            if (!value.IsArray() && !value.IsTypedArray()) throw GraftError("metadata '" + kv.key + "' must be an array");
            const auto items = value.As<Napi::Object>();
            const uint32_t n = value.IsArray() ? value.As<Napi::Array>().Length()
                                               : static_cast<uint32_t>(value.As<Napi::TypedArray>().ElementLength());
            for (uint32_t j = 0; j < n; ++j) {
                const Napi::Value e = items.Get(j);
                if (kv.item_type == GGUF_TYPE_STRING) kv.texts.push_back(require_string(e, "metadata '" + kv.key + "' items"));
                else append_scalar(kv.bytes, kv.item_type, e, kv.key);
            }
        } else {
            append_scalar(kv.bytes, kv.type, value, kv.key);
        }
        out.push_back(std::move(kv));
    }
    return out;
}

namespace {

Napi::Value scalar_to_js(Napi::Env env, gguf_type type, const uint8_t * p) {
    switch (type) {
        case GGUF_TYPE_UINT8: return Napi::Number::New(env, *p);
        case GGUF_TYPE_INT8: return Napi::Number::New(env, static_cast<int8_t>(*p));
        case GGUF_TYPE_BOOL: return Napi::Boolean::New(env, *p != 0);
        case GGUF_TYPE_UINT16: { uint16_t x; std::memcpy(&x, p, 2); return Napi::Number::New(env, x); }
        case GGUF_TYPE_INT16: { int16_t x; std::memcpy(&x, p, 2); return Napi::Number::New(env, x); }
        case GGUF_TYPE_UINT32: { uint32_t x; std::memcpy(&x, p, 4); return Napi::Number::New(env, x); }
        case GGUF_TYPE_INT32: { int32_t x; std::memcpy(&x, p, 4); return Napi::Number::New(env, x); }
        case GGUF_TYPE_FLOAT32: { float x; std::memcpy(&x, p, 4); return Napi::Number::New(env, x); }
        case GGUF_TYPE_FLOAT64: { double x; std::memcpy(&x, p, 8); return Napi::Number::New(env, x); }
        case GGUF_TYPE_UINT64: {
            uint64_t x; std::memcpy(&x, p, 8);
            if (x <= (1ull << 53)) return Napi::Number::New(env, static_cast<double>(x));
            return Napi::BigInt::New(env, x);
        }
        case GGUF_TYPE_INT64: {
            int64_t x; std::memcpy(&x, p, 8);
            if (x <= (1ll << 53) && x >= -(1ll << 53)) return Napi::Number::New(env, static_cast<double>(x));
            return Napi::BigInt::New(env, x);
        }
        default: return env.Undefined();
    }
}

}  // namespace

Napi::Object kv_to_js(Napi::Env env, const gguf_context * ctx, int64_t id, size_t max_array_values) {
    auto o = Napi::Object::New(env);
    o.Set("key", gguf_get_key(ctx, id));
    const gguf_type type = gguf_get_kv_type(ctx, id);
    o.Set("type", gguf_type_label(type));
    if (type == GGUF_TYPE_STRING) {
        o.Set("value", Napi::String::New(env, gguf_get_val_str(ctx, id)));
    } else if (type == GGUF_TYPE_ARRAY) {
        const gguf_type item = gguf_get_arr_type(ctx, id);
        const size_t n = gguf_get_arr_n(ctx, id);
        const size_t shown = std::min(n, max_array_values);
        o.Set("itemType", gguf_type_label(item));
        o.Set("length", Napi::Number::New(env, static_cast<double>(n)));
        auto values = Napi::Array::New(env, shown);
        if (item == GGUF_TYPE_STRING) {
            for (size_t i = 0; i < shown; ++i) values.Set(static_cast<uint32_t>(i), gguf_get_arr_str(ctx, id, i));
        } else if (item != GGUF_TYPE_ARRAY) {
            const auto * data = static_cast<const uint8_t *>(gguf_get_arr_data(ctx, id));
            const size_t size = gguf_type_size(item);
            for (size_t i = 0; i < shown; ++i) values.Set(static_cast<uint32_t>(i), scalar_to_js(env, item, data + i * size));
        }
        o.Set("value", values);
        if (shown < n) o.Set("truncated", true);
    } else {
        o.Set("value", scalar_to_js(env, type, static_cast<const uint8_t *>(gguf_get_val_data(ctx, id))));
    }
    return o;
}

Napi::Float32Array to_f32(Napi::Env env, const std::vector<float> & v) {
    auto a = Napi::Float32Array::New(env, v.size());
    std::copy(v.begin(), v.end(), a.Data());
    return a;
}

Napi::Value tokenize_call(const Napi::CallbackInfo & info, const std::function<std::vector<int32_t>(const std::string &, bool)> & tokenize) {
    return guard(info.Env(), [&]() -> Napi::Value {
        const auto tokens = tokenize(require_string(info[0], "text"), info.Length() < 2 || info[1].ToBoolean().Value());
        auto a = Napi::Int32Array::New(info.Env(), tokens.size());
        std::copy(tokens.begin(), tokens.end(), a.Data());
        return a;
    });
}

}  // namespace graft
