#include "log_capture.h"

#include <mutex>

#include "ggml.h"
#include "llama.h"

namespace graft {

namespace {

std::mutex g_mutex;
int g_active = 0;
// ggml and llama.cpp each have a logger; we replace both and remember who had them.
struct PreviousLogger {
    ggml_log_callback callback = nullptr;
    void * user_data = nullptr;
};
PreviousLogger g_previous_ggml;
PreviousLogger g_previous_llama;
thread_local LogCapture * t_capture = nullptr;

void capture_callback(ggml_log_level level, const char * text, void * user_data) {
    if (t_capture != nullptr) {
        t_capture->append(level, text);
        return;
    }
    const auto * previous = static_cast<const PreviousLogger *>(user_data);
    if (previous->callback != nullptr) previous->callback(level, text, previous->user_data);
}

std::string strip_function_prefix(const std::string & line) {
    // gguf.cpp prefixes messages with "__func__: "; the function name means nothing to users.
    const auto colon = line.find(": ");
    if (colon != std::string::npos && colon > 0 && line.find(' ') > colon) {
        return line.substr(colon + 2);
    }
    return line;
}

}  // namespace

LogCapture::LogCapture() {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (g_active++ == 0) {
        ggml_log_get(&g_previous_ggml.callback, &g_previous_ggml.user_data);
        llama_log_get(&g_previous_llama.callback, &g_previous_llama.user_data);
        // llama_log_set also points ggml's logger at its callback: set ggml's after it.
        llama_log_set(capture_callback, &g_previous_llama);
        ggml_log_set(capture_callback, &g_previous_ggml);
    }
    t_capture = this;
}

LogCapture::~LogCapture() {
    t_capture = nullptr;
    std::lock_guard<std::mutex> lock(g_mutex);
    if (--g_active == 0) {
        llama_log_set(g_previous_llama.callback, g_previous_llama.user_data);
        ggml_log_set(g_previous_ggml.callback, g_previous_ggml.user_data);
    }
}

void LogCapture::append(ggml_log_level level, const char * text) {
    // GGML_LOG_LEVEL_CONT continues the previous message at its level.
    if (level != GGML_LOG_LEVEL_CONT) pending_level_ = level;
    pending_ += text;
    std::string::size_type nl;
    while ((nl = pending_.find('\n')) != std::string::npos) {
        std::string line = pending_.substr(0, nl);
        pending_.erase(0, nl + 1);
        if (!line.empty()) lines_.push_back({pending_level_, strip_function_prefix(line)});
    }
}

std::string LogCapture::last_error() const {
    // The first error is the cause; later ones ("failed to read tensor info") repeat it in
    // more general terms. Without errors, the first message at all.
    for (const auto & line : lines_) {
        if (line.level == GGML_LOG_LEVEL_ERROR) return line.text;
    }
    if (!lines_.empty() && lines_.front().level != GGML_LOG_LEVEL_DEBUG && lines_.front().level != GGML_LOG_LEVEL_INFO) {
        return lines_.front().text;
    }
    if (!pending_.empty()) return strip_function_prefix(pending_);
    return "";
}

}  // namespace graft
