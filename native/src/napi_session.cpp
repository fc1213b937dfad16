// JS binding of LlamaSession. Loading and evaluation run off the main thread; one
// evaluation at a time per session (llama.cpp contexts are not re-entrant).
#include <napi.h>

#include <atomic>
#include <memory>

#include "errors.h"
#include "llama_session.h"
#include "napi_convert.h"

namespace graft {

namespace {

std::vector<int> int_list(const Napi::Value & v, const std::string & what) {
    std::vector<int> out;
    if (v.IsUndefined() || v.IsNull()) return out;
    if (!v.IsArray()) throw GraftError(what + " must be an array of layer numbers");
    const auto a = v.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
        if (!a.Get(i).IsNumber()) throw GraftError(what + " must be an array of layer numbers");
        out.push_back(a.Get(i).As<Napi::Number>().Int32Value());
    }
    return out;
}

Napi::Float32Array to_f32(Napi::Env env, const std::vector<float> & v) {
    auto a = Napi::Float32Array::New(env, v.size());
    std::copy(v.begin(), v.end(), a.Data());
    return a;
}

class JsSession;

class OpenWorker : public Napi::AsyncWorker {
public:
    OpenWorker(Napi::Env env, std::string path, SessionOptions options, Napi::FunctionReference * ctor)
        : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), path_(std::move(path)), options_(options), ctor_(ctor) {}
    Napi::Promise promise() { return deferred_.Promise(); }
    void Execute() override {
        try {
            session_ = std::make_unique<LlamaSession>(path_, options_);
        } catch (const std::exception & e) {
            SetError(e.what());
        }
    }
    void OnOK() override;
    void OnError(const Napi::Error & e) override { deferred_.Reject(e.Value()); }
private:
    Napi::Promise::Deferred deferred_;
    std::string path_;
    SessionOptions options_;
    Napi::FunctionReference * ctor_;
    std::unique_ptr<LlamaSession> session_;
};

class JsSession : public Napi::ObjectWrap<JsSession> {
public:
    static Napi::FunctionReference * Define(Napi::Env env) {
        Napi::Function f = DefineClass(env, "LlamaSession", {
            InstanceMethod("tokenize", &JsSession::Tokenize),
            InstanceMethod("tokenPiece", &JsSession::TokenPiece),
            InstanceMethod("evaluate", &JsSession::Evaluate),
            InstanceMethod("dispose", &JsSession::Dispose),
            InstanceAccessor("nLayer", &JsSession::NLayer, nullptr),
            InstanceAccessor("nEmbd", &JsSession::NEmbd, nullptr),
            InstanceAccessor("nVocab", &JsSession::NVocab, nullptr),
            InstanceAccessor("contextSize", &JsSession::ContextSize, nullptr),
        });
        auto * ref = new Napi::FunctionReference(Napi::Persistent(f));
        env.SetInstanceData<Napi::FunctionReference>(ref);
        return ref;
    }

    explicit JsSession(const Napi::CallbackInfo & info) : Napi::ObjectWrap<JsSession>(info) {
        if (info.Length() != 1 || !info[0].IsExternal()) {
            throw Napi::TypeError::New(info.Env(), "use openLlamaSession(path, options) to create a session");
        }
        session_.reset(info[0].As<Napi::External<LlamaSession>>().Data());
    }

    LlamaSession & session() {
        if (!session_) throw GraftError("this llama.cpp session has been disposed");
        return *session_;
    }
    std::atomic<bool> busy{false};

private:
    Napi::Value Tokenize(const Napi::CallbackInfo & info) {
        return guard(info.Env(), [&]() -> Napi::Value {
            const auto tokens = session().tokenize(require_string(info[0], "text"), info.Length() < 2 || info[1].ToBoolean().Value());
            auto a = Napi::Int32Array::New(info.Env(), tokens.size());
            std::copy(tokens.begin(), tokens.end(), a.Data());
            return a;
        });
    }

    Napi::Value TokenPiece(const Napi::CallbackInfo & info) {
        return guard(info.Env(), [&]() -> Napi::Value {
            return Napi::String::New(info.Env(), session().token_piece(info[0].As<Napi::Number>().Int32Value()));
        });
    }

    Napi::Value Evaluate(const Napi::CallbackInfo & info);

    Napi::Value Dispose(const Napi::CallbackInfo & info) {
        if (busy) throw Napi::Error::New(info.Env(), "cannot dispose a session while it evaluates");
        session_.reset();
        return info.Env().Undefined();
    }

    Napi::Value NLayer(const Napi::CallbackInfo & info) { return guard(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), session().n_layer()); }); }
    Napi::Value NEmbd(const Napi::CallbackInfo & info) { return guard(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), session().n_embd()); }); }
    Napi::Value NVocab(const Napi::CallbackInfo & info) { return guard(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), session().n_vocab()); }); }
    Napi::Value ContextSize(const Napi::CallbackInfo & info) { return guard(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), session().n_ctx()); }); }

    std::unique_ptr<LlamaSession> session_;
};

void OpenWorker::OnOK() {
    Napi::Env env = Env();
    auto external = Napi::External<LlamaSession>::New(env, session_.release());
    deferred_.Resolve(ctor_->New({external}));
}

class EvaluateWorker : public Napi::AsyncWorker {
public:
    EvaluateWorker(Napi::Env env, JsSession * owner, Napi::Object self, std::vector<int32_t> tokens, CaptureRequest request)
        : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), owner_(owner), self_(Napi::Persistent(self)),
          tokens_(std::move(tokens)), request_(std::move(request)) {}
    Napi::Promise promise() { return deferred_.Promise(); }
    void Execute() override {
        try {
            result_ = owner_->session().evaluate(tokens_, request_);
        } catch (const std::exception & e) {
            SetError(e.what());
        }
    }
    void OnOK() override {
        owner_->busy = false;
        Napi::Env env = Env();
        auto o = Napi::Object::New(env);
        o.Set("nTokens", result_.n_tokens);
        o.Set("nVocab", result_.n_vocab);
        if (request_.logprobs) o.Set("logprobs", to_f32(env, result_.logprobs));
        auto keys = Napi::Object::New(env);
        for (const auto & [layer, v] : result_.keys) keys.Set(std::to_string(layer), to_f32(env, v));
        auto residuals = Napi::Object::New(env);
        for (const auto & [layer, v] : result_.residuals) residuals.Set(std::to_string(layer), to_f32(env, v));
        o.Set("keys", keys);
        o.Set("residuals", residuals);
        deferred_.Resolve(o);
    }
    void OnError(const Napi::Error & e) override {
        owner_->busy = false;
        deferred_.Reject(e.Value());
    }
private:
    Napi::Promise::Deferred deferred_;
    JsSession * owner_;
    Napi::ObjectReference self_;  // keeps the session alive while the worker uses it
    std::vector<int32_t> tokens_;
    CaptureRequest request_;
    EvalResult result_;
};

Napi::Value JsSession::Evaluate(const Napi::CallbackInfo & info) {
    return guard(info.Env(), [&]() -> Napi::Value {
        session();
        if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
            throw GraftError("evaluate needs an Int32Array of tokens");
        }
        auto a = info[0].As<Napi::Int32Array>();
        std::vector<int32_t> tokens(a.Data(), a.Data() + a.ElementLength());
        CaptureRequest request;
        if (info.Length() > 1 && info[1].IsObject()) {
            const auto o = info[1].As<Napi::Object>();
            request.key_layers = int_list(o.Get("keyLayers"), "keyLayers");
            request.resid_layers = int_list(o.Get("residualLayers"), "residualLayers");
            if (o.Has("logprobs")) request.logprobs = o.Get("logprobs").ToBoolean().Value();
        }
        if (busy.exchange(true)) throw GraftError("this session is already evaluating; wait for it to finish");
        auto * worker = new EvaluateWorker(info.Env(), this, Value(), std::move(tokens), std::move(request));
        auto promise = worker->promise();
        worker->Queue();
        return promise;
    });
}

Napi::FunctionReference * g_session_ctor = nullptr;

Napi::Value OpenLlamaSession(const Napi::CallbackInfo & info) {
    return guard(info.Env(), [&]() -> Napi::Value {
        const std::string path = require_string(info[0], "model path");
        SessionOptions options;
        if (info.Length() > 1 && info[1].IsObject()) {
            const auto o = info[1].As<Napi::Object>();
            if (o.Get("contextSize").IsNumber()) options.n_ctx = o.Get("contextSize").As<Napi::Number>().Int32Value();
            if (o.Get("threads").IsNumber()) options.n_threads = o.Get("threads").As<Napi::Number>().Int32Value();
            if (o.Get("gpuLayers").IsNumber()) options.n_gpu_layers = o.Get("gpuLayers").As<Napi::Number>().Int32Value();
            if (o.Has("repack")) options.repack = o.Get("repack").ToBoolean().Value();
        }
        auto * worker = new OpenWorker(info.Env(), path, options, g_session_ctor);
        auto promise = worker->promise();
        worker->Queue();
        return promise;
    });
}

}  // namespace

void register_session(Napi::Env env, Napi::Object exports) {
    g_session_ctor = JsSession::Define(env);
    exports.Set("openLlamaSession", Napi::Function::New(env, OpenLlamaSession, "openLlamaSession"));
}

}  // namespace graft
