#include "log_capture.h"

#include <mutex>

#include "ggml.h"

namespace graft {

namespace {

std::mutex g_mutex;
int g_active = 0;
ggml_log_callback g_previous_callback = nullptr;
void * g_previous_user_data = nullptr;
thread_local LogCapture * t_capture = nullptr;

void capture_callback(ggml_log_level level, const char * text, void * user_data) {
    if (t_capture != nullptr) {
        t_capture->append(text);
        return;
    }
    if (g_previous_callback != nullptr) {
        g_previous_callback(level, text, g_previous_user_data);
    }
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
        ggml_log_get(&g_previous_callback, &g_previous_user_data);
        ggml_log_set(capture_callback, nullptr);
    }
    t_capture = this;
}

LogCapture::~LogCapture() {
    t_capture = nullptr;
    std::lock_guard<std::mutex> lock(g_mutex);
    if (--g_active == 0) {
        ggml_log_set(g_previous_callback, g_previous_user_data);
    }
}

void LogCapture::append(const char * text) {
    pending_ += text;
    std::string::size_type nl;
    while ((nl = pending_.find('\n')) != std::string::npos) {
        std::string line = pending_.substr(0, nl);
        pending_.erase(0, nl + 1);
        if (!line.empty()) lines_.push_back(strip_function_prefix(line));
    }
}

std::string LogCapture::last_error() const {
    // The first message is the cause; later ones ("failed to read tensor info") repeat it
    // in more general terms.
    if (!lines_.empty()) return lines_.front();
    if (!pending_.empty()) return strip_function_prefix(pending_);
    return "";
}

}  // namespace graft
