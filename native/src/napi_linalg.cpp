// JS binding of the double-precision Cholesky factor: factorSpd(matrix, n, ridge) resolves
// (off the main thread) to an object whose solve(b) is O(n²).
#include <napi.h>

#include <memory>

#include "errors.h"
#include "linalg.h"
#include "napi_convert.h"

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

}  // namespace

void register_linalg(Napi::Env env, Napi::Object exports) {
    JsFactor::Define(env);
    exports.Set("factorSpd", Napi::Function::New(env, FactorSpd, "factorSpd"));
}

}  // namespace graft
