// JS binding of the own graph: openGraphModel(path, options) → GraphModel object whose run()
// and optimize() execute off the main thread. One job at a time per model; optimize()
// reports each Adam step through a callback and stops at the next step after cancel().
#include <napi.h>

#include <atomic>
#include <memory>

#include "errors.h"
#include "graph_model.h"
#include "graph_run.h"
#include "napi_convert.h"

namespace graft {

namespace {

Napi::FunctionReference * g_graph_ctor = nullptr;

int int_of(const Napi::Object & o, const char * key, const std::string & what) {
    const Napi::Value v = o.Get(key);
    if (!v.IsNumber()) throw GraftError(what + "." + key + " must be a number");
    return v.As<Napi::Number>().Int32Value();
}

float float_or(const Napi::Object & o, const char * key, float fallback) {
    const Napi::Value v = o.Get(key);
    return v.IsNumber() ? v.As<Napi::Number>().FloatValue() : fallback;
}

std::vector<float> floats(const Napi::Value & v, const std::string & what) {
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) throw GraftError(what + " must be a Float32Array");
    auto a = v.As<Napi::Float32Array>();
    return std::vector<float>(a.Data(), a.Data() + a.ElementLength());
}

Napi::Array array_of(const Napi::Value & v, const std::string & what) {
    if (v.IsUndefined() || v.IsNull()) return Napi::Array::New(v.Env());
    if (!v.IsArray()) throw GraftError(what + " must be an array");
    return v.As<Napi::Array>();
}

RowRef row_of(const Napi::Value & v, const std::string & what) {
    if (!v.IsObject()) throw GraftError(what + " must be {prompt, pos}");
    const auto o = v.As<Napi::Object>();
    return RowRef{int_of(o, "prompt", what), int_of(o, "pos", what)};
}

GraphRequest request_from_js(const Napi::Value & v) {
    if (!v.IsObject()) throw GraftError("the graph request must be an object");
    const auto o = v.As<Napi::Object>();
    GraphRequest r;
    const auto prompts = array_of(o.Get("prompts"), "prompts");
    for (uint32_t i = 0; i < prompts.Length(); ++i) {
        const Napi::Value p = prompts.Get(i);
        if (!p.IsTypedArray() || p.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) throw GraftError("each prompt must be an Int32Array of tokens");
        auto a = p.As<Napi::Int32Array>();
        r.prompts.emplace_back(a.Data(), a.Data() + a.ElementLength());
    }
    if (o.Get("fromLayer").IsNumber()) r.from_layer = o.Get("fromLayer").As<Napi::Number>().Int32Value();
    if (o.Has("inputStates") && !o.Get("inputStates").IsUndefined()) r.input_states = floats(o.Get("inputStates"), "inputStates");
    const auto deltas = array_of(o.Get("deltas"), "deltas");
    for (uint32_t i = 0; i < deltas.Length(); ++i) {
        const auto d = deltas.Get(i).As<Napi::Object>();
        DeltaSpec s;
        s.layer = int_of(d, "layer", "delta");
        s.site = parse_site(require_string(d.Get("site"), "delta.site"));
        const auto rows = array_of(d.Get("rows"), "delta.rows");
        for (uint32_t j = 0; j < rows.Length(); ++j) s.rows.push_back(row_of(rows.Get(j), "delta.rows[]"));
        s.values = floats(d.Get("values"), "delta.values");
        r.deltas.push_back(std::move(s));
    }
    const auto overlays = array_of(o.Get("overlays"), "overlays");
    for (uint32_t i = 0; i < overlays.Length(); ++i) {
        const auto d = overlays.Get(i).As<Napi::Object>();
        OverlaySpec s;
        s.layer = int_of(d, "layer", "overlay");
        s.rank = int_of(d, "rank", "overlay");
        s.u = floats(d.Get("u"), "overlay.u");
        s.v = floats(d.Get("v"), "overlay.v");
        s.scale = float_or(d, "scale", 1.0f);
        r.overlays.push_back(std::move(s));
    }
    const auto rows = array_of(o.Get("logitRows"), "logitRows");
    for (uint32_t i = 0; i < rows.Length(); ++i) r.logit_rows.push_back(row_of(rows.Get(i), "logitRows[]"));
    r.all_logits = o.Get("allLogits").ToBoolean().Value();
    r.reuse_prefix = o.Get("reusePrefix").ToBoolean().Value();
    const auto captures = array_of(o.Get("captures"), "captures");
    for (uint32_t i = 0; i < captures.Length(); ++i) {
        const auto c = captures.Get(i).As<Napi::Object>();
        r.captures.push_back(CaptureSpec{int_of(c, "layer", "capture"), parse_site(require_string(c.Get("site"), "capture.site"))});
    }
    const auto targets = array_of(o.Get("targets"), "targets");
    for (uint32_t i = 0; i < targets.Length(); ++i) {
        const auto t = targets.Get(i).As<Napi::Object>();
        r.targets.push_back(TargetTerm{row_of(t, "target"), int_of(t, "token", "target"), float_or(t, "weight", 1.0f)});
    }
    const auto refs = array_of(o.Get("references"), "references");
    for (uint32_t i = 0; i < refs.Length(); ++i) {
        const auto t = refs.Get(i).As<Napi::Object>();
        ReferenceTerm ref;
        ref.row = row_of(t, "reference");
        ref.logprobs = floats(t.Get("logprobs"), "reference.logprobs");
        ref.weight = float_or(t, "weight", 1.0f);
        r.references.push_back(std::move(ref));
    }
    return r;
}

AdamOptions adam_from_js(const Napi::Value & v) {
    AdamOptions a;
    if (!v.IsObject()) return a;
    const auto o = v.As<Napi::Object>();
    if (o.Get("steps").IsNumber()) a.steps = o.Get("steps").As<Napi::Number>().Int32Value();
    a.lr = float_or(o, "lr", a.lr);
    a.beta1 = float_or(o, "beta1", a.beta1);
    a.beta2 = float_or(o, "beta2", a.beta2);
    a.eps = float_or(o, "eps", a.eps);
    a.weight_decay = float_or(o, "weightDecay", a.weight_decay);
    if (o.Get("normPenalty").IsArray()) {
        const auto penalties = array_of(o.Get("normPenalty"), "normPenalty");
        for (uint32_t i = 0; i < penalties.Length(); ++i) a.norm_penalties.push_back(penalties.Get(i).As<Napi::Number>().FloatValue());
    } else {
        a.norm_penalty = float_or(o, "normPenalty", a.norm_penalty);
    }
    if (o.Get("stopLoss").IsNumber()) a.stop_loss = o.Get("stopLoss").As<Napi::Number>().DoubleValue();
    const auto norms = array_of(o.Get("maxNorm"), "maxNorm");
    for (uint32_t i = 0; i < norms.Length(); ++i) a.max_norm.push_back(norms.Get(i).IsNumber() ? norms.Get(i).As<Napi::Number>().FloatValue() : 0.0f);
    return a;
}

Napi::Object result_to_js(Napi::Env env, const GraphResult & r) {
    auto o = Napi::Object::New(env);
    o.Set("nVocab", r.n_vocab);
    auto rows = Napi::Array::New(env, r.rows.size());
    for (size_t i = 0; i < r.rows.size(); ++i) {
        auto row = Napi::Object::New(env);
        row.Set("prompt", r.rows[i].prompt);
        row.Set("pos", r.rows[i].pos);
        rows.Set(static_cast<uint32_t>(i), row);
    }
    o.Set("rows", rows);
    o.Set("logprobs", to_f32(env, r.logprobs));
    auto captures = Napi::Array::New(env, r.captures.size());
    for (size_t i = 0; i < r.captures.size(); ++i) {
        auto c = Napi::Object::New(env);
        c.Set("layer", r.captures[i].layer);
        c.Set("site", site_name(r.captures[i].site));
        c.Set("width", r.captures[i].width);
        c.Set("values", to_f32(env, r.captures[i].values));
        captures.Set(static_cast<uint32_t>(i), c);
    }
    o.Set("captures", captures);
    o.Set("nll", r.nll);
    o.Set("kl", r.kl);
    o.Set("loss", r.loss);
    o.Set("computedTokens", r.computed_tokens);
    auto grads = Napi::Array::New(env, r.gradients.size());
    for (size_t i = 0; i < r.gradients.size(); ++i) grads.Set(static_cast<uint32_t>(i), to_f32(env, r.gradients[i]));
    o.Set("gradients", grads);
    return o;
}

Napi::Object step_to_js(Napi::Env env, const StepReport & s) {
    auto o = Napi::Object::New(env);
    o.Set("step", s.step);
    o.Set("loss", s.loss);
    o.Set("nll", s.nll);
    o.Set("kl", s.kl);
    auto norms = Napi::Array::New(env, s.delta_norms.size());
    for (size_t i = 0; i < s.delta_norms.size(); ++i) norms.Set(static_cast<uint32_t>(i), s.delta_norms[i]);
    o.Set("deltaNorms", norms);
    return o;
}

class JsGraphModel;

class JsGraphModel : public Napi::ObjectWrap<JsGraphModel> {
public:
    static void Define(Napi::Env env) {
        Napi::Function f = DefineClass(env, "GraphModel", {
            InstanceMethod("tokenize", &JsGraphModel::Tokenize),
            InstanceMethod("tokenPiece", &JsGraphModel::TokenPiece),
            InstanceMethod("run", &JsGraphModel::Run),
            InstanceMethod("optimize", &JsGraphModel::Optimize),
            InstanceMethod("cancel", &JsGraphModel::Cancel),
            InstanceMethod("setThreads", &JsGraphModel::SetThreads),
            InstanceMethod("dispose", &JsGraphModel::Dispose),
            InstanceAccessor("info", &JsGraphModel::Info, nullptr),
        });
        g_graph_ctor = new Napi::FunctionReference(Napi::Persistent(f));
    }

    explicit JsGraphModel(const Napi::CallbackInfo & info) : Napi::ObjectWrap<JsGraphModel>(info) {
        if (info.Length() != 1 || !info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), "use openGraphModel(path, options) to open a model");
        model_ = *info[0].As<Napi::External<std::shared_ptr<GraphModel>>>().Data();
    }

    GraphModel & model() {
        if (!model_) throw GraftError("this graph model has been disposed");
        return *model_;
    }
    std::atomic<bool> busy{false};
    std::atomic<bool> cancelled{false};

private:
    Napi::Value Tokenize(const Napi::CallbackInfo & info) {
        return tokenize_call(info, [&](const std::string & text, bool special) { return model().tokenize(text, special); });
    }
    Napi::Value TokenPiece(const Napi::CallbackInfo & info) {
        return guard(info.Env(), [&]() -> Napi::Value { return Napi::String::New(info.Env(), model().token_piece(info[0].As<Napi::Number>().Int32Value())); });
    }
    Napi::Value SetThreads(const Napi::CallbackInfo & info) {
        return guard(info.Env(), [&]() -> Napi::Value {
            if (busy) throw GraftError("cannot change threads while the model computes");
            model().set_threads(info[0].As<Napi::Number>().Int32Value());
            return info.Env().Undefined();
        });
    }
    Napi::Value Cancel(const Napi::CallbackInfo & info) {
        cancelled = true;
        return info.Env().Undefined();
    }
    Napi::Value Dispose(const Napi::CallbackInfo & info) {
        if (busy) throw Napi::Error::New(info.Env(), "cannot dispose a graph model while it computes");
        model_.reset();
        return info.Env().Undefined();
    }
    Napi::Value Info(const Napi::CallbackInfo & info) {
        return guard(info.Env(), [&]() -> Napi::Value {
            const GraphHparams & h = model().hparams();
            auto o = Napi::Object::New(info.Env());
            o.Set("arch", h.arch);
            o.Set("nLayer", h.n_layer);
            o.Set("nEmbd", h.n_embd);
            o.Set("nFf", h.n_ff);
            o.Set("nHead", h.n_head);
            o.Set("nHeadKv", h.n_head_kv);
            o.Set("nVocab", h.n_vocab);
            o.Set("contextLength", h.n_ctx_train);
            o.Set("device", model().device_description());
            o.Set("threads", model().n_threads());
            return o;
        });
    }
    Napi::Value Run(const Napi::CallbackInfo & info);
    Napi::Value Optimize(const Napi::CallbackInfo & info);

    std::shared_ptr<GraphModel> model_;
};

class OptimizeWorker : public Napi::AsyncProgressQueueWorker<StepReport> {
public:
    OptimizeWorker(Napi::Env env, JsGraphModel * owner, Napi::Object self, GraphRequest request, AdamOptions adam, Napi::Function on_step)
        : Napi::AsyncProgressQueueWorker<StepReport>(env), deferred_(Napi::Promise::Deferred::New(env)), owner_(owner),
          self_(Napi::Persistent(self)), request_(std::move(request)), adam_(std::move(adam)) {
        if (!on_step.IsEmpty()) on_step_ = Napi::Persistent(on_step);
    }
    Napi::Promise promise() { return deferred_.Promise(); }
    void Execute(const ExecutionProgress & progress) override {
        try {
            std::unique_ptr<GraphRun> created = GraphRun::create(owner_->model(), request_, true);
            GraphRun & run = *created;
            result_ = run.optimize(adam_, [&](const StepReport & s) {
                steps_.push_back(s);
                progress.Send(&s, 1);
                return !owner_->cancelled.load();
            });
            for (size_t i = 0; i < request_.deltas.size(); ++i) deltas_.push_back(run.delta(i));
            cancelled_ = owner_->cancelled.load();
        } catch (const std::exception & e) {
            SetError(e.what());
        }
    }
    void OnProgress(const StepReport * data, size_t count) override {
        if (on_step_.IsEmpty()) return;
        Napi::HandleScope scope(Env());
        for (size_t i = 0; i < count; ++i) on_step_.Call({step_to_js(Env(), data[i])});
    }
    void OnOK() override {
        owner_->busy = false;
        Napi::Env env = Env();
        auto o = Napi::Object::New(env);
        o.Set("result", result_to_js(env, result_));
        auto deltas = Napi::Array::New(env, deltas_.size());
        for (size_t i = 0; i < deltas_.size(); ++i) deltas.Set(static_cast<uint32_t>(i), to_f32(env, deltas_[i]));
        o.Set("deltas", deltas);
        auto steps = Napi::Array::New(env, steps_.size());
        for (size_t i = 0; i < steps_.size(); ++i) steps.Set(static_cast<uint32_t>(i), step_to_js(env, steps_[i]));
        o.Set("steps", steps);
        o.Set("cancelled", cancelled_);
        deferred_.Resolve(o);
    }
    void OnError(const Napi::Error & e) override {
        owner_->busy = false;
        deferred_.Reject(e.Value());
    }
private:
    Napi::Promise::Deferred deferred_;
    JsGraphModel * owner_;
    Napi::ObjectReference self_;
    Napi::FunctionReference on_step_;
    GraphRequest request_;
    AdamOptions adam_;
    GraphResult result_;
    std::vector<std::vector<float>> deltas_;
    std::vector<StepReport> steps_;
    bool cancelled_ = false;
};

Napi::Value JsGraphModel::Run(const Napi::CallbackInfo & info) {
    return rejecting(info.Env(), [&]() -> Napi::Value {
        model();
        GraphRequest request = request_from_js(info[0]);
        const bool backward = info.Length() > 1 && info[1].IsObject() && info[1].As<Napi::Object>().Get("backward").ToBoolean().Value();
        if (busy.exchange(true)) throw GraftError("this graph model is already computing; wait for it to finish");
        std::shared_ptr<GraphModel> model = model_;
        auto shared = std::make_shared<GraphRequest>(std::move(request));
        return PromiseWorker<GraphResult>::start(info.Env(),
            [model, shared, backward] { return GraphRun::create(*model, *shared, backward)->compute(backward); },
            [](Napi::Env env, GraphResult & r) -> Napi::Value { return result_to_js(env, r); },
            [this] { busy = false; }, Value());
    });
}

Napi::Value JsGraphModel::Optimize(const Napi::CallbackInfo & info) {
    return rejecting(info.Env(), [&]() -> Napi::Value {
        model();
        GraphRequest request = request_from_js(info[0]);
        AdamOptions adam = adam_from_js(info.Length() > 1 ? info[1] : info.Env().Undefined());
        Napi::Function on_step = info.Length() > 2 && info[2].IsFunction() ? info[2].As<Napi::Function>() : Napi::Function();
        if (busy.exchange(true)) throw GraftError("this graph model is already computing; wait for it to finish");
        cancelled = false;
        auto * worker = new OptimizeWorker(info.Env(), this, Value(), std::move(request), std::move(adam), on_step);
        auto promise = worker->promise();
        worker->Queue();
        return promise;
    });
}

Napi::Value OpenGraphModel(const Napi::CallbackInfo & info) {
    return guard(info.Env(), [&]() -> Napi::Value {
        const std::string path = require_string(info[0], "model path");
        GraphModelOptions options;
        if (info.Length() > 1 && info[1].IsObject()) {
            const auto o = info[1].As<Napi::Object>();
            if (o.Get("threads").IsNumber()) options.n_threads = o.Get("threads").As<Napi::Number>().Int32Value();
            options.gpu = o.Get("gpu").ToBoolean().Value();
            if (o.Has("rowOnceOutProd")) options.row_once_out_prod = o.Get("rowOnceOutProd").ToBoolean().Value();
            if (o.Get("dequantizeForBackward").IsBoolean()) options.dequantize_for_backward = o.Get("dequantizeForBackward").ToBoolean().Value() ? 1 : 0;
        }
        // The model travels as a shared_ptr until the JS object takes ownership in done().
        return PromiseWorker<std::shared_ptr<GraphModel>>::start(info.Env(),
            [path, options] { return std::make_shared<GraphModel>(path, options); },
            [](Napi::Env env, std::shared_ptr<GraphModel> & m) -> Napi::Value {
                return g_graph_ctor->New({Napi::External<std::shared_ptr<GraphModel>>::New(env, &m)});
            });
    });
}

}  // namespace

void register_graph(Napi::Env env, Napi::Object exports) {
    JsGraphModel::Define(env);
    exports.Set("openGraphModel", Napi::Function::New(env, OpenGraphModel, "openGraphModel"));
}

}  // namespace graft
