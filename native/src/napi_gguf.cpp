// JS bindings of the GGUF core: inspect, streaming rewrite (off the main thread), writer,
// tensor encode/decode.
#include <napi.h>

#include <memory>

#include "errors.h"
#include "gguf_file.h"
#include "gguf_rewrite.h"
#include "gguf_writer.h"
#include "napi_convert.h"
#include "tensor_codec.h"

namespace graft {

namespace {

Napi::Array shape_to_js(Napi::Env env, const int64_t * ne, int n_dims) {
    auto a = Napi::Array::New(env, n_dims);
    for (int d = 0; d < n_dims; ++d) a.Set(static_cast<uint32_t>(d), Napi::Number::New(env, static_cast<double>(ne[d])));
    return a;
}

Napi::Value Inspect(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
        const std::string path = require_string(info[0], "path");
        size_t max_array_values = 64;
        if (info.Length() > 1 && info[1].IsObject()) {
            const auto v = info[1].As<Napi::Object>().Get("maxArrayValues");
            if (v.IsNumber()) max_array_values = static_cast<size_t>(std::max(0.0, v.As<Napi::Number>().DoubleValue()));
        }
        GgufFile file(path);
        auto result = Napi::Object::New(env);
        result.Set("version", gguf_get_version(file.gguf()));
        result.Set("alignment", Napi::Number::New(env, static_cast<double>(gguf_get_alignment(file.gguf()))));
        result.Set("dataOffset", Napi::Number::New(env, static_cast<double>(file.data_offset())));
        result.Set("fileSize", Napi::Number::New(env, static_cast<double>(file.file_size())));
        const int64_t n_kv = gguf_get_n_kv(file.gguf());
        auto kv = Napi::Array::New(env, static_cast<size_t>(n_kv));
        for (int64_t i = 0; i < n_kv; ++i) kv.Set(static_cast<uint32_t>(i), kv_to_js(env, file.gguf(), i, max_array_values));
        result.Set("kv", kv);
        auto tensors = Napi::Array::New(env, file.tensors().size());
        uint32_t i = 0;
        for (const auto & t : file.tensors()) {
            auto o = Napi::Object::New(env);
            o.Set("name", t.name);
            o.Set("type", type_name(t.type));
            o.Set("typeId", static_cast<int>(t.type));
            o.Set("shape", shape_to_js(env, t.ne, t.n_dims));
            o.Set("offset", Napi::Number::New(env, static_cast<double>(t.offset)));
            o.Set("fileOffset", Napi::Number::New(env, static_cast<double>(file.data_offset() + t.offset)));
            o.Set("size", Napi::Number::New(env, static_cast<double>(t.size)));
            tensors.Set(i++, o);
        }
        result.Set("tensors", tensors);
        return result;
    });
}

Napi::Value ReadTensor(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
        GgufFile file(require_string(info[0], "path"));
        const std::string name = require_string(info[1], "tensor name");
        const TensorEntry * t = file.find_tensor(name);
        if (t == nullptr) throw GraftError("tensor '" + name + "' is not in " + file.path());
        const int64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        std::vector<uint8_t> bytes(static_cast<size_t>(t->size));
        file.read_tensor_bytes(*t, bytes.data());
        auto values = Napi::Float32Array::New(env, static_cast<size_t>(n));
        decode_to_f32(t->type, bytes.data(), n, values.Data());
        auto o = Napi::Object::New(env);
        o.Set("type", type_name(t->type));
        o.Set("shape", shape_to_js(env, t->ne, t->n_dims));
        o.Set("values", values);
        return o;
    });
}

class RewriteWorker : public Napi::AsyncWorker {
public:
    RewriteWorker(Napi::Env env, std::string src, std::string dst, RewriteOptions options, std::vector<Napi::ObjectReference> keep)
        : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), src_(std::move(src)), dst_(std::move(dst)),
          options_(std::move(options)), keep_alive_(std::move(keep)) {}

    Napi::Promise promise() { return deferred_.Promise(); }

    void Execute() override {
        try {
            result_ = rewrite_gguf(src_, dst_, options_);
        } catch (const std::exception & e) {
            SetError(e.what());
        }
    }

    void OnOK() override {
        Napi::Env env = Env();
        auto o = Napi::Object::New(env);
        o.Set("bytesWritten", Napi::Number::New(env, static_cast<double>(result_.bytes_written)));
        o.Set("tensorsReplaced", result_.tensors_replaced);
        o.Set("tensorsCopied", result_.tensors_copied);
        deferred_.Resolve(o);
    }

    void OnError(const Napi::Error & e) override { deferred_.Reject(e.Value()); }

private:
    Napi::Promise::Deferred deferred_;
    std::string src_, dst_;
    RewriteOptions options_;
    std::vector<Napi::ObjectReference> keep_alive_;  // JS buffers read by the worker thread
    RewriteResult result_;
};

Napi::Value Rewrite(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
        const std::string src = require_string(info[0], "source path");
        const std::string dst = require_string(info[1], "output path");
        RewriteOptions options;
        std::vector<Napi::ObjectReference> keep;
        if (info.Length() > 2 && info[2].IsObject()) {
            const auto o = info[2].As<Napi::Object>();
            const Napi::Value replace = o.Get("replace");
            if (replace.IsArray()) {
                const auto arr = replace.As<Napi::Array>();
                for (uint32_t i = 0; i < arr.Length(); ++i) {
                    const auto r = arr.Get(i).As<Napi::Object>();
                    TensorReplacement rep;
                    rep.name = require_string(r.Get("name"), "replacement tensor name");
                    rep.type = parse_type(require_string(r.Get("type"), "type of replacement '" + rep.name + "'"));
                    const Napi::Value f32 = r.Get("f32");
                    const Napi::Value raw = r.Get("raw");
                    if (f32.IsTypedArray() && f32.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array) {
                        auto a = f32.As<Napi::Float32Array>();
                        rep.source = TensorReplacement::Source::F32;
                        rep.f32 = a.Data();
                        rep.count = a.ElementLength();
                        keep.push_back(Napi::Persistent(a.As<Napi::Object>()));
                    } else if (raw.IsTypedArray() && raw.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array) {
                        auto a = raw.As<Napi::Uint8Array>();
                        rep.source = TensorReplacement::Source::RAW;
                        rep.raw = a.Data();
                        rep.count = a.ByteLength();
                        keep.push_back(Napi::Persistent(a.As<Napi::Object>()));
                    } else if (!f32.IsUndefined() || !raw.IsUndefined()) {
                        throw GraftError("replacement '" + rep.name + "': f32 must be a Float32Array and raw a Uint8Array");
                    }
                    options.replacements.push_back(std::move(rep));
                }
            }
            options.set_kv = kv_from_js(o.Get("setKv"));
            const Napi::Value remove = o.Get("removeKv");
            if (remove.IsArray()) {
                const auto arr = remove.As<Napi::Array>();
                for (uint32_t i = 0; i < arr.Length(); ++i) options.remove_kv.push_back(require_string(arr.Get(i), "removeKv entry"));
            }
        }
        auto * worker = new RewriteWorker(env, src, dst, std::move(options), std::move(keep));
        Napi::Promise promise = worker->promise();
        worker->Queue();
        return promise;
    });
}

class JsGgufWriter : public Napi::ObjectWrap<JsGgufWriter> {
public:
    static Napi::Function Define(Napi::Env env) {
        return DefineClass(env, "GgufWriter", {
            InstanceMethod("next", &JsGgufWriter::Next),
            InstanceMethod("writeF32", &JsGgufWriter::WriteF32),
            InstanceMethod("writeRaw", &JsGgufWriter::WriteRaw),
            InstanceMethod("finish", &JsGgufWriter::Finish),
            InstanceMethod("abort", &JsGgufWriter::Abort),
        });
    }

    explicit JsGgufWriter(const Napi::CallbackInfo & info) : Napi::ObjectWrap<JsGgufWriter>(info) {
        Napi::Env env = info.Env();
        guard(env, [&]() {
            const std::string path = require_string(info[0], "output path");
            std::vector<KvValue> kv = kv_from_js(info[1]);
            if (!info[2].IsArray()) throw GraftError("tensors must be an array of {name, type, shape}");
            std::vector<TensorSpec> specs;
            const auto arr = info[2].As<Napi::Array>();
            for (uint32_t i = 0; i < arr.Length(); ++i) {
                if (!arr.Get(i).IsObject()) throw GraftError("tensors must be an array of {name, type, shape}");
                const auto t = arr.Get(i).As<Napi::Object>();
                TensorSpec spec;
                spec.name = require_string(t.Get("name"), "tensor name");
                spec.type = parse_type(require_string(t.Get("type"), "type of tensor '" + spec.name + "'"));
                if (!t.Get("shape").IsArray()) throw GraftError("tensor '" + spec.name + "' needs a shape array");
                const auto shape = t.Get("shape").As<Napi::Array>();
                for (uint32_t d = 0; d < shape.Length(); ++d) {
                    if (!shape.Get(d).IsNumber()) throw GraftError("tensor '" + spec.name + "' shape must hold numbers");
                    spec.ne.push_back(shape.Get(d).As<Napi::Number>().Int64Value());
                }
                specs.push_back(std::move(spec));
            }
            uint32_t alignment = 32;
            if (info.Length() > 3 && info[3].IsNumber()) alignment = info[3].As<Napi::Number>().Uint32Value();
            writer_ = std::make_unique<GgufWriter>(path, kv, specs, alignment);
        });
    }

private:
    GgufWriter & writer() {
        if (!writer_) throw GraftError("the GGUF writer is closed");
        return *writer_;
    }

    Napi::Value Next(const Napi::CallbackInfo & info) {
        return guard(info.Env(), [&]() -> Napi::Value {
            GgufWriter & w = writer();
            if (w.tensors_written() >= w.tensor_count()) return info.Env().Null();
            const TensorSpec & s = w.next_spec();
            auto o = Napi::Object::New(info.Env());
            o.Set("name", s.name);
            o.Set("type", type_name(s.type));
            o.Set("shape", shape_to_js(info.Env(), s.ne.data(), static_cast<int>(s.ne.size())));
            return o;
        });
    }

    Napi::Value WriteF32(const Napi::CallbackInfo & info) {
        return guard(info.Env(), [&]() -> Napi::Value {
            if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
                throw GraftError("writeF32 needs a Float32Array");
            }
            auto a = info[0].As<Napi::Float32Array>();
            writer().write_f32(a.Data(), a.ElementLength());
            return info.Env().Undefined();
        });
    }

    Napi::Value WriteRaw(const Napi::CallbackInfo & info) {
        return guard(info.Env(), [&]() -> Napi::Value {
            if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
                throw GraftError("writeRaw needs a Uint8Array");
            }
            auto a = info[0].As<Napi::Uint8Array>();
            writer().write_raw(a.Data(), a.ByteLength());
            return info.Env().Undefined();
        });
    }

    Napi::Value Finish(const Napi::CallbackInfo & info) {
        return guard(info.Env(), [&]() -> Napi::Value {
            const uint64_t size = writer().finish();
            writer_.reset();
            return Napi::Number::New(info.Env(), static_cast<double>(size));
        });
    }

    Napi::Value Abort(const Napi::CallbackInfo & info) {
        writer_.reset();  // the destructor removes the temporary file
        return info.Env().Undefined();
    }

    std::unique_ptr<GgufWriter> writer_;
};

Napi::Value Encode(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
        if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
            throw GraftError("encode needs a Float32Array");
        }
        auto values = info[0].As<Napi::Float32Array>();
        const ggml_type type = parse_type(require_string(info[1], "type"));
        const int64_t n = static_cast<int64_t>(values.ElementLength());
        const int64_t per_row = info[2].IsNumber() ? info[2].As<Napi::Number>().Int64Value() : n;
        check_row_fits_type(type, per_row, "encode");
        if (n % per_row != 0) throw GraftError("encode: the value count is not a multiple of the row length");
        auto out = Napi::Uint8Array::New(env, tensor_bytes(type, n, per_row));
        encode_from_f32(type, values.Data(), n, per_row, out.Data());
        return out;
    });
}

Napi::Value Decode(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
        if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
            throw GraftError("decode needs a Uint8Array");
        }
        auto bytes = info[0].As<Napi::Uint8Array>();
        const ggml_type type = parse_type(require_string(info[1], "type"));
        const int64_t n = info[2].As<Napi::Number>().Int64Value();
        check_row_fits_type(type, n, "decode");
        if (bytes.ByteLength() != tensor_bytes(type, n, n)) throw GraftError("decode: byte count does not match the value count");
        auto out = Napi::Float32Array::New(env, static_cast<size_t>(n));
        decode_to_f32(type, bytes.Data(), n, out.Data());
        return out;
    });
}

Napi::Value TypeInfo(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
        const ggml_type type = parse_type(require_string(info[0], "type"));
        auto o = Napi::Object::New(env);
        o.Set("id", static_cast<int>(type));
        o.Set("name", type_name(type));
        o.Set("blockSize", Napi::Number::New(env, static_cast<double>(ggml_blck_size(type))));
        o.Set("typeSize", Napi::Number::New(env, static_cast<double>(ggml_type_size(type))));
        o.Set("quantized", ggml_is_quantized(type));
        o.Set("canEncode", can_encode(type));
        return o;
    });
}

}  // namespace

void register_gguf(Napi::Env env, Napi::Object exports) {
    exports.Set("inspect", Napi::Function::New(env, Inspect, "inspect"));
    exports.Set("readTensor", Napi::Function::New(env, ReadTensor, "readTensor"));
    exports.Set("rewrite", Napi::Function::New(env, Rewrite, "rewrite"));
    exports.Set("GgufWriter", JsGgufWriter::Define(env));
    exports.Set("encode", Napi::Function::New(env, Encode, "encode"));
    exports.Set("decode", Napi::Function::New(env, Decode, "decode"));
    exports.Set("typeInfo", Napi::Function::New(env, TypeInfo, "typeInfo"));
}

}  // namespace graft
