// graft_native: module entry and build information.
#include <dlfcn.h>
#include <napi.h>

#include "ggml-backend.h"
#include "ggml.h"
#include "llama.h"

namespace graft {

void register_gguf(Napi::Env env, Napi::Object exports);
void register_session(Napi::Env env, Napi::Object exports);
void register_graph(Napi::Env env, Napi::Object exports);
void register_linalg(Napi::Env env, Napi::Object exports);
void register_train(Napi::Env env, Napi::Object exports);

namespace {

std::string library_of(const void * symbol) {
    Dl_info info{};
    if (symbol != nullptr && dladdr(symbol, &info) != 0 && info.dli_fname != nullptr) return info.dli_fname;
    return "";
}

// Where each shared library this addon uses was loaded from, so callers can check that
// the process holds one copy of ggml, shared with node-llama-cpp.
Napi::Value BuildInfo(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    auto o = Napi::Object::New(env);
    o.Set("llamaCppCommit", GRAFT_LLAMA_CPP_COMMIT);
    o.Set("ggmlBaseLibrary", library_of(reinterpret_cast<const void *>(&ggml_init)));
    o.Set("ggmlLibrary", library_of(reinterpret_cast<const void *>(&ggml_backend_reg_count)));
    o.Set("llamaLibrary", library_of(reinterpret_cast<const void *>(&llama_model_default_params)));
    o.Set("addonFile", library_of(reinterpret_cast<const void *>(&library_of)));
    return o;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
    exports.Set("buildInfo", Napi::Function::New(env, BuildInfo, "buildInfo"));
    register_gguf(env, exports);
    register_session(env, exports);
    register_graph(env, exports);
    register_linalg(env, exports);
    register_train(env, exports);
    return exports;
}

}  // namespace graft

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
    return graft::Init(env, exports);
}

NODE_API_MODULE(graft_native, InitModule)
