#include "backends.h"

#include <dlfcn.h>

#include <mutex>
#include <string>

#include "errors.h"
#include "ggml-backend.h"

namespace graft {

void ensure_backends_loaded() {
    static std::mutex mutex;
    std::lock_guard<std::mutex> lock(mutex);
    if (ggml_backend_dev_count() > 0) return;
    Dl_info info{};
    if (dladdr(reinterpret_cast<const void *>(&ggml_backend_dev_count), &info) != 0 && info.dli_fname != nullptr) {
        std::string dir = info.dli_fname;
        const auto slash = dir.find_last_of('/');
        dir = slash == std::string::npos ? "." : dir.substr(0, slash);
        ggml_backend_load_all_from_path(dir.c_str());
    }
    if (ggml_backend_dev_count() == 0) ggml_backend_load_all();
    if (ggml_backend_dev_count() == 0) throw GraftError("no ggml compute backend could be loaded (is node-llama-cpp installed completely?)");
}

}  // namespace graft
