// JS binding of LlamaSession. Loading and evaluation run off the main thread; one
// evaluation at a time per session (llama.cpp contexts are not re-entrant).
#include <napi.h>

#include <atomic>
#include <cmath>
#include <memory>

#include "errors.h"
#include "llama_session.h"
#include "napi_convert.h"
#include "second_moments.h"

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

std::vector<float> f32_values(const Napi::Value & v, const std::string & what) {
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
        throw GraftError(what + " must be a Float32Array");
    }
    const auto a = v.As<Napi::Float32Array>();
    return std::vector<float>(a.Data(), a.Data() + a.ElementLength());
}

int int_field(const Napi::Object & o, const char * key, const std::string & what) {
    const Napi::Value v = o.Get(key);
    if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue()) ||
        v.As<Napi::Number>().DoubleValue() != static_cast<double>(v.As<Napi::Number>().Int32Value())) {
        throw GraftError(what + "." + key + " must be an integer");
    }
    return v.As<Napi::Number>().Int32Value();
}

std::vector<Patch> patch_list(const Napi::Value & v) {
    std::vector<Patch> out;
    if (v.IsUndefined() || v.IsNull()) return out;
    if (!v.IsArray()) throw GraftError("patches must be an array of {layer, site, position, mode, values}");
    const auto a = v.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
        const std::string what = "patches[" + std::to_string(i) + "]";
        if (!a.Get(i).IsObject()) throw GraftError(what + " must be an object {layer, site, position, mode, values}");
        const auto o = a.Get(i).As<Napi::Object>();
        Patch p;
        p.layer = int_field(o, "layer", what);
        p.position = int_field(o, "position", what);
        const std::string site = o.Get("site").IsString() ? o.Get("site").As<Napi::String>().Utf8Value() : "";
        if (site == "resid") p.site = PatchSite::resid;
        else if (site == "mlp_out") p.site = PatchSite::mlp_out;
        else throw GraftError(what + ".site must be 'resid' or 'mlp_out'");
        const std::string mode = o.Get("mode").IsString() ? o.Get("mode").As<Napi::String>().Utf8Value() : "";
        if (mode == "add") p.mode = PatchMode::add;
        else if (mode == "replace") p.mode = PatchMode::replace;
        else throw GraftError(what + ".mode must be 'add' or 'replace'");
        p.values = f32_values(o.Get("values"), what + ".values");
        out.push_back(std::move(p));
    }
    return out;
}

class JsSession;

class JsSession : public Napi::ObjectWrap<JsSession> {
public:
    static Napi::FunctionReference * Define(Napi::Env env) {
        Napi::Function f = DefineClass(env, "LlamaSession", {
            InstanceMethod("tokenize", &JsSession::Tokenize),
            InstanceMethod("tokenPiece", &JsSession::TokenPiece),
            InstanceMethod("evaluate", &JsSession::Evaluate),
            InstanceMethod("score", &JsSession::Score),
            InstanceMethod("setControlVector", &JsSession::SetControlVector),
            InstanceMethod("secondMoments", &JsSession::SecondMoments),
            InstanceMethod("dispose", &JsSession::Dispose),
            InstanceAccessor("nLayer", &JsSession::NLayer, nullptr),
            InstanceAccessor("nEmbd", &JsSession::NEmbd, nullptr),
            InstanceAccessor("nVocab", &JsSession::NVocab, nullptr),
            InstanceAccessor("contextSize", &JsSession::ContextSize, nullptr),
            InstanceAccessor("bosToken", &JsSession::BosToken, nullptr),
            InstanceAccessor("addsBos", &JsSession::AddsBos, nullptr),
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
        return tokenize_call(info, [&](const std::string & text, bool special) { return session().tokenize(text, special); });
    }

    Napi::Value TokenPiece(const Napi::CallbackInfo & info) {
        return guard(info.Env(), [&]() -> Napi::Value {
            return Napi::String::New(info.Env(), session().token_piece(info[0].As<Napi::Number>().Int32Value()));
        });
    }

    Napi::Value Evaluate(const Napi::CallbackInfo & info);
    Napi::Value Score(const Napi::CallbackInfo & info);
    Napi::Value SecondMoments(const Napi::CallbackInfo & info);

    Napi::Value SetControlVector(const Napi::CallbackInfo & info) {
        return guard(info.Env(), [&]() -> Napi::Value {
            if (busy) throw GraftError("this session is evaluating; wait for it to finish");
            if (info.Length() < 2 || info[1].IsNull() || info[1].IsUndefined()) {
                session().set_control_vector(-1, nullptr, 0);
            } else {
                const auto values = f32_values(info[1], "the control vector");
                session().set_control_vector(info[0].As<Napi::Number>().Int32Value(), values.data(), values.size());
            }
            return info.Env().Undefined();
        });
    }

    Napi::Value Dispose(const Napi::CallbackInfo & info) {
        if (busy) throw Napi::Error::New(info.Env(), "cannot dispose a session while it evaluates");
        session_.reset();
        return info.Env().Undefined();
    }

    Napi::Value NLayer(const Napi::CallbackInfo & info) { return guard(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), session().n_layer()); }); }
    Napi::Value NEmbd(const Napi::CallbackInfo & info) { return guard(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), session().n_embd()); }); }
    Napi::Value NVocab(const Napi::CallbackInfo & info) { return guard(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), session().n_vocab()); }); }
    Napi::Value ContextSize(const Napi::CallbackInfo & info) { return guard(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), session().n_ctx()); }); }

    Napi::Value BosToken(const Napi::CallbackInfo & info) {
        return guard(info.Env(), [&]() -> Napi::Value {
            const int32_t bos = session().bos_token();
            return bos < 0 ? info.Env().Null() : Napi::Number::New(info.Env(), bos);
        });
    }
    Napi::Value AddsBos(const Napi::CallbackInfo & info) {
        return guard(info.Env(), [&]() -> Napi::Value { return Napi::Boolean::New(info.Env(), session().bos_token_if_added() >= 0); });
    }

    std::unique_ptr<LlamaSession> session_;
};

Napi::Object evaluation_to_js(Napi::Env env, const EvalResult & r, bool logprobs) {
    auto o = Napi::Object::New(env);
    o.Set("nTokens", r.n_tokens);
    o.Set("nVocab", r.n_vocab);
    if (logprobs) o.Set("logprobs", to_f32(env, r.logprobs));
    auto keys = Napi::Object::New(env);
    for (const auto & [layer, v] : r.keys) keys.Set(std::to_string(layer), to_f32(env, v));
    auto residuals = Napi::Object::New(env);
    for (const auto & [layer, v] : r.residuals) residuals.Set(std::to_string(layer), to_f32(env, v));
    o.Set("keys", keys);
    o.Set("residuals", residuals);
    return o;
}

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
            request.patches = patch_list(o.Get("patches"));
            if (!o.Get("stopAfterLayer").IsUndefined()) request.stop_after_layer = int_field(o, "stopAfterLayer", "the request");
        }
        if (busy.exchange(true)) throw GraftError("this session is already evaluating; wait for it to finish");
        const bool logprobs = request.logprobs;
        auto job = std::make_shared<std::pair<std::vector<int32_t>, CaptureRequest>>(std::move(tokens), std::move(request));
        return PromiseWorker<EvalResult>::start(info.Env(),
            [this, job] { return session().evaluate(job->first, job->second); },
            [logprobs](Napi::Env env, EvalResult & r) -> Napi::Value { return evaluation_to_js(env, r, logprobs); },
            [this] { busy = false; }, Value());
    });
}

std::vector<ScoreSequence> score_requests(const Napi::Value & v) {
    if (!v.IsArray()) throw GraftError("score needs an array of {tokens, scoreFrom?, scoreTo?, rows?}");
    const auto a = v.As<Napi::Array>();
    std::vector<ScoreSequence> out(a.Length());
    for (uint32_t i = 0; i < a.Length(); ++i) {
        const std::string what = "sequences[" + std::to_string(i) + "]";
        if (!a.Get(i).IsObject()) throw GraftError(what + " must be an object {tokens, scoreFrom?, scoreTo?, rows?}");
        const auto o = a.Get(i).As<Napi::Object>();
        const Napi::Value tokens = o.Get("tokens");
        if (!tokens.IsTypedArray() || tokens.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
            throw GraftError(what + ".tokens must be an Int32Array");
        }
        const auto t = tokens.As<Napi::Int32Array>();
        out[i].tokens.assign(t.Data(), t.Data() + t.ElementLength());
        if (!o.Get("scoreFrom").IsUndefined()) out[i].score_begin = int_field(o, "scoreFrom", what);
        out[i].score_end = o.Get("scoreTo").IsUndefined() ? static_cast<int>(out[i].tokens.size()) : int_field(o, "scoreTo", what);
        if (out[i].score_end < 0) throw GraftError(what + ".scoreTo must not be negative");
        out[i].row_positions = int_list(o.Get("rows"), what + ".rows");
    }
    return out;
}

Napi::Value scores_to_js(Napi::Env env, ScoreOutcome & r, int n_vocab) {
    auto o = Napi::Object::New(env);
    auto list = Napi::Array::New(env, r.sequences.size());
    for (size_t i = 0; i < r.sequences.size(); ++i) {
        const SequenceScores & s = r.sequences[i];
        auto item = Napi::Object::New(env);
        auto nll = Napi::Float64Array::New(env, s.nll.size());
        std::copy(s.nll.begin(), s.nll.end(), nll.Data());
        item.Set("nll", nll);
        if (!s.rows.empty()) item.Set("rows", to_f32(env, s.rows));
        list.Set(static_cast<uint32_t>(i), item);
    }
    o.Set("sequences", list);
    o.Set("nVocab", n_vocab);
    o.Set("decodes", r.decodes);
    o.Set("tokensEvaluated", static_cast<double>(r.tokens_evaluated));
    return o;
}

Napi::Value JsSession::Score(const Napi::CallbackInfo & info) {
    return guard(info.Env(), [&]() -> Napi::Value {
        const int n_vocab = session().n_vocab();
        auto sequences = std::make_shared<std::vector<ScoreSequence>>(score_requests(info[0]));
        ScoreOptions options;
        if (info.Length() > 1 && info[1].IsObject()) {
            const auto o = info[1].As<Napi::Object>();
            if (!o.Get("maxSequencesPerDecode").IsUndefined()) {
                options.max_sequences_per_decode = int_field(o, "maxSequencesPerDecode", "the options");
            }
        }
        if (busy.exchange(true)) throw GraftError("this session is already evaluating; wait for it to finish");
        return PromiseWorker<ScoreOutcome>::start(info.Env(),
            [this, sequences, options] { return session().score(*sequences, options); },
            [n_vocab](Napi::Env env, ScoreOutcome & r) -> Napi::Value { return scores_to_js(env, r, n_vocab); },
            [this] { busy = false; }, Value());
    });
}

// Second moments run off the main thread; progress reaches JS through the worker's progress
// queue (coalesced), cancellation through an atomic flag the job checks between chunks.
class MomentsWorker : public Napi::AsyncProgressWorker<MomentsProgress> {
public:
    MomentsWorker(Napi::Env env, JsSession * owner, Napi::Object self, MomentsJob job, Napi::Value on_progress,
                  std::shared_ptr<std::atomic<bool>> cancel)
        : Napi::AsyncProgressWorker<MomentsProgress>(env), deferred_(Napi::Promise::Deferred::New(env)), owner_(owner),
          self_(Napi::Persistent(self)), job_(std::move(job)), cancel_(std::move(cancel)) {
        if (on_progress.IsFunction()) on_progress_ = Napi::Persistent(on_progress.As<Napi::Function>());
    }
    Napi::Promise promise() { return deferred_.Promise(); }
    void Execute(const ExecutionProgress & progress) override {
        try {
            outcome_ = compute_second_moments(owner_->session(), job_, *cancel_, [&](const MomentsProgress & p) { progress.Send(&p, 1); });
        } catch (const std::exception & e) {
            SetError(e.what());
        }
    }
    void OnProgress(const MomentsProgress * data, size_t count) override {
        if (on_progress_.IsEmpty() || data == nullptr || count == 0) return;
        Napi::Env env = Env();
        auto o = Napi::Object::New(env);
        o.Set("tokensDone", static_cast<double>(data[count - 1].tokens_done));
        o.Set("tokensTotal", static_cast<double>(data[count - 1].tokens_total));
        on_progress_.Call({o});
    }
    void OnOK() override {
        owner_->busy = false;
        Napi::Env env = Env();
        auto o = Napi::Object::New(env);
        o.Set("cancelled", outcome_.cancelled);
        o.Set("tokensDone", static_cast<double>(outcome_.tokens_done));
        o.Set("tokensTotal", static_cast<double>(outcome_.tokens_total));
        auto layers = Napi::Array::New(env, outcome_.layers.size());
        for (size_t i = 0; i < outcome_.layers.size(); ++i) {
            const auto & l = outcome_.layers[i];
            auto item = Napi::Object::New(env);
            item.Set("layer", l.layer);
            item.Set("nFf", l.n_ff);
            item.Set("n", static_cast<double>(l.n));
            item.Set("file", l.file);
            item.Set("resumedFrom", static_cast<double>(l.resumed_from));
            layers.Set(static_cast<uint32_t>(i), item);
        }
        o.Set("layers", layers);
        deferred_.Resolve(o);
    }
    void OnError(const Napi::Error & e) override {
        owner_->busy = false;
        deferred_.Reject(e.Value());
    }
private:
    Napi::Promise::Deferred deferred_;
    JsSession * owner_;
    Napi::ObjectReference self_;
    MomentsJob job_;
    std::shared_ptr<std::atomic<bool>> cancel_;
    Napi::FunctionReference on_progress_;
    MomentsOutcome outcome_;
};

Napi::Value JsSession::SecondMoments(const Napi::CallbackInfo & info) {
    return guard(info.Env(), [&]() -> Napi::Value {
        session();
        if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
            throw GraftError("secondMoments needs an Int32Array of corpus tokens");
        }
        if (info.Length() < 2 || !info[1].IsObject()) throw GraftError("secondMoments needs {layers, modelSha256, corpusSha256}");
        auto a = info[0].As<Napi::Int32Array>();
        MomentsJob job;
        job.tokens.assign(a.Data(), a.Data() + a.ElementLength());
        const auto o = info[1].As<Napi::Object>();
        job.model_sha256 = require_string(o.Get("modelSha256"), "modelSha256");
        job.corpus_sha256 = require_string(o.Get("corpusSha256"), "corpusSha256");
        if (o.Get("checkpointSeconds").IsNumber()) job.checkpoint_seconds = o.Get("checkpointSeconds").As<Napi::Number>().DoubleValue();
        if (!o.Get("layers").IsArray()) throw GraftError("layers must be an array of {layer, file, checkpoint}");
        const auto layers = o.Get("layers").As<Napi::Array>();
        for (uint32_t i = 0; i < layers.Length(); ++i) {
            const std::string what = "layers[" + std::to_string(i) + "]";
            if (!layers.Get(i).IsObject()) throw GraftError(what + " must be an object {layer, file, checkpoint}");
            const auto item = layers.Get(i).As<Napi::Object>();
            job.layers.push_back({int_field(item, "layer", what), require_string(item.Get("file"), what + ".file"),
                                  require_string(item.Get("checkpoint"), what + ".checkpoint")});
        }
        if (busy.exchange(true)) throw GraftError("this session is already evaluating; wait for it to finish");
        auto cancel = std::make_shared<std::atomic<bool>>(false);
        auto * worker = new MomentsWorker(info.Env(), this, Value(), std::move(job), info.Length() > 2 ? info[2] : info.Env().Undefined(), cancel);
        auto handle = Napi::Object::New(info.Env());
        handle.Set("done", worker->promise());
        handle.Set("cancel", Napi::Function::New(info.Env(), [cancel](const Napi::CallbackInfo & ci) {
            cancel->store(true);
            return ci.Env().Undefined();
        }, "cancel"));
        worker->Queue();
        return handle;
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
            const Napi::Value lora = o.Get("lora");
            if (!lora.IsUndefined() && !lora.IsNull()) {
                if (!lora.IsArray()) throw GraftError("lora must be an array of {path, scale?}");
                const auto a = lora.As<Napi::Array>();
                for (uint32_t i = 0; i < a.Length(); ++i) {
                    if (!a.Get(i).IsObject()) throw GraftError("lora[" + std::to_string(i) + "] must be an object {path, scale?}");
                    const auto item = a.Get(i).As<Napi::Object>();
                    LoraAdapterSpec spec;
                    spec.path = require_string(item.Get("path"), "lora[" + std::to_string(i) + "].path");
                    if (!item.Get("scale").IsUndefined()) {
                        if (!item.Get("scale").IsNumber()) throw GraftError("lora[" + std::to_string(i) + "].scale must be a number");
                        spec.scale = item.Get("scale").As<Napi::Number>().FloatValue();
                    }
                    options.loras.push_back(std::move(spec));
                }
            }
        }
        return PromiseWorker<std::unique_ptr<LlamaSession>>::start(info.Env(),
            [path, options] { return std::make_unique<LlamaSession>(path, options); },
            [](Napi::Env env, std::unique_ptr<LlamaSession> & session) -> Napi::Value {
                return g_session_ctor->New({Napi::External<LlamaSession>::New(env, session.release())});
            });
    });
}

}  // namespace

void register_session(Napi::Env env, Napi::Object exports) {
    g_session_ctor = JsSession::Define(env);
    exports.Set("openLlamaSession", Napi::Function::New(env, OpenLlamaSession, "openLlamaSession"));
}

}  // namespace graft
