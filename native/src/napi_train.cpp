// JS binding of the trainer: createTrainer(shape, weights) → Trainer whose step() and loss()
// run off the main thread, one at a time.
#include <napi.h>

#include <atomic>
#include <memory>

#include "errors.h"
#include "napi_convert.h"
#include "train_graph.h"

namespace graft {

namespace {

Napi::FunctionReference * g_trainer_ctor = nullptr;

int positive_int(const Napi::Object & o, const char * key) {
    const Napi::Value v = o.Get(key);
    if (!v.IsNumber()) throw GraftError(std::string("shape.") + key + " must be a number");
    return v.As<Napi::Number>().Int32Value();
}

float number_or(const Napi::Object & o, const char * key, float fallback) {
    const Napi::Value v = o.Get(key);
    return v.IsNumber() ? v.As<Napi::Number>().FloatValue() : fallback;
}

std::vector<int32_t> token_rows(const Napi::Value & v) {
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) throw GraftError("a training batch must be an Int32Array of token ids");
    auto a = v.As<Napi::Int32Array>();
    return std::vector<int32_t>(a.Data(), a.Data() + a.ElementLength());
}

class JsTrainer : public Napi::ObjectWrap<JsTrainer> {
public:
    static void Define(Napi::Env env) {
        Napi::Function f = DefineClass(env, "Trainer", {
            InstanceMethod("step", &JsTrainer::Step),
            InstanceMethod("loss", &JsTrainer::Loss),
            InstanceMethod("weights", &JsTrainer::Weights),
            InstanceMethod("dispose", &JsTrainer::Dispose),
        });
        g_trainer_ctor = new Napi::FunctionReference(Napi::Persistent(f));
    }

    explicit JsTrainer(const Napi::CallbackInfo & info) : Napi::ObjectWrap<JsTrainer>(info) {
        if (info.Length() != 1 || !info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), "use createTrainer(shape, weights) to create a trainer");
        trainer_ = *info[0].As<Napi::External<std::shared_ptr<LlamaTrainer>>>().Data();
    }

private:
    std::shared_ptr<LlamaTrainer> claim() {
        if (!trainer_) throw GraftError("this trainer has been disposed");
        if (busy_.exchange(true)) throw GraftError("this trainer is already computing; wait for it to finish");
        return trainer_;
    }

    Napi::Value Step(const Napi::CallbackInfo & info) {
        return rejecting(info.Env(), [&]() -> Napi::Value {
            auto rows = std::make_shared<std::vector<int32_t>>(token_rows(info[0]));
            AdamWOptions o;
            if (info.Length() > 1 && info[1].IsObject()) {
                const auto a = info[1].As<Napi::Object>();
                o.lr = number_or(a, "lr", o.lr);
                o.beta1 = number_or(a, "beta1", o.beta1);
                o.beta2 = number_or(a, "beta2", o.beta2);
                o.eps = number_or(a, "eps", o.eps);
                o.weight_decay = number_or(a, "weightDecay", o.weight_decay);
                o.grad_clip = number_or(a, "gradClip", o.grad_clip);
            }
            auto trainer = claim();
            return PromiseWorker<StepOutcome>::start(info.Env(),
                [trainer, rows, o] { return trainer->step(*rows, o); },
                [](Napi::Env env, StepOutcome & r) -> Napi::Value {
                    auto out = Napi::Object::New(env);
                    out.Set("loss", r.loss);
                    out.Set("gradNorm", r.grad_norm);
                    return out;
                },
                [this] { busy_ = false; }, Value());
        });
    }

    Napi::Value Loss(const Napi::CallbackInfo & info) {
        return rejecting(info.Env(), [&]() -> Napi::Value {
            auto rows = std::make_shared<std::vector<int32_t>>(token_rows(info[0]));
            auto trainer = claim();
            return PromiseWorker<double>::start(info.Env(),
                [trainer, rows] { return trainer->loss(*rows); },
                [](Napi::Env env, double & l) -> Napi::Value { return Napi::Number::New(env, l); },
                [this] { busy_ = false; }, Value());
        });
    }

    Napi::Value Weights(const Napi::CallbackInfo & info) {
        return guard(info.Env(), [&]() -> Napi::Value {
            if (!trainer_) throw GraftError("this trainer has been disposed");
            if (busy_) throw GraftError("the weights cannot be read while the trainer computes");
            auto out = Napi::Object::New(info.Env());
            for (const auto & [name, values] : trainer_->weights()) out.Set(name, to_f32(info.Env(), values));
            return out;
        });
    }

    Napi::Value Dispose(const Napi::CallbackInfo & info) {
        if (busy_) throw Napi::Error::New(info.Env(), "cannot dispose a trainer while it computes");
        trainer_.reset();
        return info.Env().Undefined();
    }

    std::shared_ptr<LlamaTrainer> trainer_;
    std::atomic<bool> busy_{false};
};

Napi::Value CreateTrainer(const Napi::CallbackInfo & info) {
    return guard(info.Env(), [&]() -> Napi::Value {
        if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsObject()) throw GraftError("createTrainer(shape, weights) needs a shape and the initial weights");
        const auto o = info[0].As<Napi::Object>();
        TrainShape s;
        s.n_layer = positive_int(o, "nLayer");
        s.n_embd = positive_int(o, "nEmbd");
        s.n_ff = positive_int(o, "nFf");
        s.n_head = positive_int(o, "nHead");
        s.n_head_kv = positive_int(o, "nHeadKv");
        s.n_vocab = positive_int(o, "nVocab");
        s.seq_len = positive_int(o, "seqLen");
        s.batch = positive_int(o, "batch");
        s.rms_eps = number_or(o, "rmsEps", s.rms_eps);
        s.rope_freq_base = number_or(o, "ropeFreqBase", s.rope_freq_base);
        s.n_threads = static_cast<int>(number_or(o, "threads", 1.0f));
        std::map<std::string, std::vector<float>> weights;
        const auto w = info[1].As<Napi::Object>();
        const auto names = w.GetPropertyNames();
        for (uint32_t i = 0; i < names.Length(); ++i) {
            const std::string name = names.Get(i).As<Napi::String>().Utf8Value();
            const Napi::Value v = w.Get(name);
            if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) throw GraftError("weight " + name + " must be a Float32Array");
            auto a = v.As<Napi::Float32Array>();
            weights.emplace(name, std::vector<float>(a.Data(), a.Data() + a.ElementLength()));
        }
        auto trainer = std::make_shared<LlamaTrainer>(s, weights);
        return g_trainer_ctor->New({Napi::External<std::shared_ptr<LlamaTrainer>>::New(info.Env(), &trainer)});
    });
}

}  // namespace

void register_train(Napi::Env env, Napi::Object exports) {
    JsTrainer::Define(env);
    exports.Set("createTrainer", Napi::Function::New(env, CreateTrainer, "createTrainer"));
}

}  // namespace graft
