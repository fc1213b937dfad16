#pragma once
// gguf.cpp and llama.cpp report why a file is invalid only through their log callbacks.
// While a LogCapture is alive, messages logged on this thread are kept (not printed) so they
// can become the error message; messages from other threads still reach whoever installed
// the callbacks before (node-llama-cpp's logger, usually).
#include <string>
#include <vector>

#include "ggml.h"

namespace graft {

class LogCapture {
public:
    LogCapture();
    ~LogCapture();
    LogCapture(const LogCapture &) = delete;
    LogCapture & operator=(const LogCapture &) = delete;

    // The most specific captured error line, without the "function_name: " prefix.
    std::string last_error() const;

    void append(ggml_log_level level, const char * text);

private:
    struct Line {
        ggml_log_level level;
        std::string text;
    };
    std::vector<Line> lines_;
    std::string pending_;
    ggml_log_level pending_level_ = GGML_LOG_LEVEL_NONE;
};

}  // namespace graft
