#pragma once
// Conversions between JS values and the C++ core's structures.
#include <napi.h>

#include <string>
#include <vector>

#include "gguf.h"
#include "gguf_kv.h"

namespace graft {

std::string require_string(const Napi::Value & v, const std::string & what);
Napi::Float32Array to_f32(Napi::Env env, const std::vector<float> & v);
std::vector<KvValue> kv_from_js(const Napi::Value & v);
// One GGUF metadata entry as {key, type, value[, itemType, length, truncated]}.
Napi::Object kv_to_js(Napi::Env env, const gguf_context * ctx, int64_t id, size_t max_array_values);
// Runs fn, turning GraftError (and other std::exceptions) into JS errors.
template <typename F>
auto guard(Napi::Env env, F && fn) -> decltype(fn()) {
    try {
        return fn();
    } catch (const Napi::Error &) {
        throw;
    } catch (const std::exception & e) {
        throw Napi::Error::New(env, e.what());
    }
}

}  // namespace graft
