// JS binding of the double-precision Cholesky factor: factorSpd(matrix, n, ridge) resolves
// (off the main thread) to an object whose solve(b) is O(n²). nullSpaceBasis(matrix, n,
// threshold) resolves to the eigenvalues and the smaller side's eigenvectors (sym_eigen.h).
#include <napi.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>

#include "errors.h"
#include "linalg.h"
#include "napi_convert.h"
#include "sym_eigen.h"

namespace graft {

namespace {

Napi::FunctionReference * g_factor_ctor = nullptr;

std::vector<double> doubles(const Napi::Value & v, const std::string & what) {
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) throw GraftError(what + " must be a Float64Array");
    auto a = v.As<Napi::Float64Array>();
    return std::vector<double>(a.Data(), a.Data() + a.ElementLength());
}

class JsFactor : public Napi::ObjectWrap<JsFactor> {
public:
    static void Define(Napi::Env env) {
        Napi::Function f = DefineClass(env, "CholeskyFactor", {
            InstanceMethod("solve", &JsFactor::Solve),
            InstanceAccessor("size", &JsFactor::Size, nullptr),
            InstanceAccessor("logDeterminant", &JsFactor::LogDet, nullptr),
        });
        g_factor_ctor = new Napi::FunctionReference(Napi::Persistent(f));
    }
    explicit JsFactor(const Napi::CallbackInfo & info) : Napi::ObjectWrap<JsFactor>(info) {
        factor_ = *info[0].As<Napi::External<std::shared_ptr<Cholesky>>>().Data();
    }

private:
    Napi::Value Solve(const Napi::CallbackInfo & info) {
        return guard(info.Env(), [&]() -> Napi::Value {
            const std::vector<double> x = factor_->solve(doubles(info[0], "the right-hand side"));
            auto out = Napi::Float64Array::New(info.Env(), x.size());
            std::copy(x.begin(), x.end(), out.Data());
            return out;
        });
    }
    Napi::Value Size(const Napi::CallbackInfo & info) { return Napi::Number::New(info.Env(), factor_->size()); }
    Napi::Value LogDet(const Napi::CallbackInfo & info) { return Napi::Number::New(info.Env(), factor_->log_determinant()); }
    std::shared_ptr<Cholesky> factor_;
};

Napi::Value FactorSpd(const Napi::CallbackInfo & info) {
    return guard(info.Env(), [&]() -> Napi::Value {
        auto matrix = std::make_shared<std::vector<double>>(doubles(info[0], "the matrix"));
        const int n = info[1].As<Napi::Number>().Int32Value();
        const double ridge = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : 0.0;
        return PromiseWorker<std::shared_ptr<Cholesky>>::start(info.Env(),
            [matrix, n, ridge] { return std::make_shared<Cholesky>(*matrix, n, ridge); },
            [](Napi::Env env, std::shared_ptr<Cholesky> & f) -> Napi::Value {
                return g_factor_ctor->New({Napi::External<std::shared_ptr<Cholesky>>::New(env, &f)});
            });
    });
}

// Bad arguments reject the promise rather than throw, so that callers handle every failure
// of this asynchronous function in one place.
Napi::Value NullSpaceBasis(const Napi::CallbackInfo & info) {
    try {
        const Napi::Value m = info[0];
        if (!m.IsTypedArray() || m.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) throw GraftError("the matrix must be a Float64Array");
        if (info.Length() < 2 || !info[1].IsNumber()) throw GraftError("n must be a number");
        const double nd = info[1].As<Napi::Number>().DoubleValue();
        if (!(nd >= 1) || nd != std::floor(nd) || nd > 46340) throw GraftError("n must be an integer from 1 to 46340, got " + std::to_string(nd));
        if (info.Length() < 3 || !info[2].IsNumber()) throw GraftError("the threshold must be a number");
        const double threshold = info[2].As<Napi::Number>().DoubleValue();
        if (!std::isfinite(threshold)) throw GraftError("the threshold must be finite");
        int threads = 1;
        auto cancelled = std::make_shared<std::atomic<bool>>(false);
        // The abort listener is removed when the promise settles, so that a long-lived signal
        // does not collect one per call.
        struct AbortHook {
            Napi::ObjectReference signal;
            Napi::FunctionReference listener;
        };
        std::shared_ptr<AbortHook> hook;
        if (info.Length() > 3 && info[3].IsObject()) {
            const Napi::Object options = info[3].As<Napi::Object>();
            const Napi::Value t = options.Get("threads");
            if (!t.IsUndefined()) {
                if (!t.IsNumber() || !(t.As<Napi::Number>().DoubleValue() >= 1)) throw GraftError("threads must be a number ≥ 1");
                threads = static_cast<int>(std::min(256.0, t.As<Napi::Number>().DoubleValue()));
            }
            const Napi::Value sv = options.Get("signal");
            if (!sv.IsUndefined()) {
                if (!sv.IsObject() || !sv.As<Napi::Object>().Get("addEventListener").IsFunction()) throw GraftError("signal must be an AbortSignal");
                const Napi::Object signal = sv.As<Napi::Object>();
                if (signal.Get("aborted").ToBoolean()) throw GraftError("the null-space computation was cancelled");
                Napi::Function listener = Napi::Function::New(info.Env(), [cancelled](const Napi::CallbackInfo &) { cancelled->store(true); });
                signal.Get("addEventListener").As<Napi::Function>().Call(signal, {Napi::String::New(info.Env(), "abort"), listener});
                hook = std::make_shared<AbortHook>();
                hook->signal = Napi::Persistent(signal);
                hook->listener = Napi::Persistent(listener);
            }
        }
        const int n = static_cast<int>(nd);
        auto array = m.As<Napi::Float64Array>();
        if (array.ElementLength() != static_cast<size_t>(n) * n) {
            throw GraftError("the matrix has " + std::to_string(array.ElementLength()) + " values, but an n × n matrix with n = " + std::to_string(n) + " has " +
                             std::to_string(static_cast<size_t>(n) * n));
        }
        // The worker reads the caller's array in place (a copy of up to 1.6 GB would block the
        // main thread); keep_alive holds it until the promise settles, and the caller must not
        // write to it meanwhile.
        const double * data = array.Data();
        return PromiseWorker<NullSpaceSplit>::start(info.Env(),
            [data, n, threshold, threads, cancelled] {
                check_symmetric(data, n);
                return null_space_split(data, n, threshold, threads, cancelled.get());
            },
            [](Napi::Env env, NullSpaceSplit & r) -> Napi::Value {
                Napi::Object o = Napi::Object::New(env);
                auto values = Napi::Float64Array::New(env, r.eigenvalues.size());
                std::copy(r.eigenvalues.begin(), r.eigenvalues.end(), values.Data());
                auto vectors = Napi::Float64Array::New(env, r.vectors.size());
                std::copy(r.vectors.begin(), r.vectors.end(), vectors.Data());
                o.Set("eigenvalues", values);
                o.Set("side", Napi::String::New(env, r.below ? "below" : "atOrAbove"));
                o.Set("vectors", vectors);
                return o;
            },
            [hook] {
                if (!hook) return;
                const Napi::Object signal = hook->signal.Value();
                signal.Get("removeEventListener").As<Napi::Function>().Call(signal, {Napi::String::New(signal.Env(), "abort"), hook->listener.Value()});
                hook->signal.Reset();
                hook->listener.Reset();
            },
            m.As<Napi::Object>());
    } catch (const GraftError & e) {
        auto deferred = Napi::Promise::Deferred::New(info.Env());
        deferred.Reject(Napi::Error::New(info.Env(), e.what()).Value());
        return deferred.Promise();
    }
}

}  // namespace

void register_linalg(Napi::Env env, Napi::Object exports) {
    JsFactor::Define(env);
    exports.Set("factorSpd", Napi::Function::New(env, FactorSpd, "factorSpd"));
    exports.Set("nullSpaceBasis", Napi::Function::New(env, NullSpaceBasis, "nullSpaceBasis"));
}

}  // namespace graft
