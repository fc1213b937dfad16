#pragma once
// Conversions between JS values and the C++ core's structures.
#include <napi.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gguf.h"
#include "gguf_kv.h"

namespace graft {

std::string require_string(const Napi::Value & v, const std::string & what);
Napi::Float32Array to_f32(Napi::Env env, const std::vector<float> & v);
// tokenize(text, addSpecial = true) for a JS method: (text, addSpecial?) → Int32Array.
Napi::Value tokenize_call(const Napi::CallbackInfo & info, const std::function<std::vector<int32_t>(const std::string &, bool)> & tokenize);
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

// Runs work() on libuv's thread pool and settles a promise on the main thread: resolved with
// done(env, result), or rejected with the message of whatever work() threw. finally() runs on
// the main thread either way (e.g. to clear a busy flag); keep_alive holds a JS object (the
// owner of what work() uses) until then.
template <typename Result>
class PromiseWorker : public Napi::AsyncWorker {
public:
    using Work = std::function<Result()>;
    using Done = std::function<Napi::Value(Napi::Env, Result &)>;

    static Napi::Promise start(Napi::Env env, Work work, Done done, std::function<void()> finally = {}, Napi::Object keep_alive = Napi::Object()) {
        auto * worker = new PromiseWorker(env, std::move(work), std::move(done), std::move(finally), keep_alive);
        Napi::Promise promise = worker->deferred_.Promise();
        worker->Queue();
        return promise;
    }

private:
    PromiseWorker(Napi::Env env, Work work, Done done, std::function<void()> finally, Napi::Object keep_alive)
        : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)), done_(std::move(done)), finally_(std::move(finally)) {
        if (!keep_alive.IsEmpty()) keep_alive_ = Napi::Persistent(keep_alive);
    }
    void Execute() override {
        try {
            result_ = std::make_unique<Result>(work_());
        } catch (const std::exception & e) {
            SetError(e.what());
        }
    }
    void OnOK() override {
        if (finally_) finally_();
        deferred_.Resolve(done_(Env(), *result_));
    }
    void OnError(const Napi::Error & e) override {
        if (finally_) finally_();
        deferred_.Reject(e.Value());
    }

    Napi::Promise::Deferred deferred_;
    Work work_;
    Done done_;
    std::function<void()> finally_;
    Napi::ObjectReference keep_alive_;
    std::unique_ptr<Result> result_;
};

// Bad requests reject the returned promise (like failures during the computation) rather
// than throwing synchronously, so callers handle every error in one place.
template <typename F>
Napi::Value rejecting(Napi::Env env, F && fn) {
    try {
        return fn();
    } catch (const std::exception & e) {
        auto deferred = Napi::Promise::Deferred::New(env);
        deferred.Reject(Napi::Error::New(env, e.what()).Value());
        return deferred.Promise();
    }
}

}  // namespace graft
