#pragma once
// gguf.cpp reports why a file is invalid only through ggml's log callback. While a
// LogCapture is alive, messages logged on this thread are kept (not printed) so they can
// become the error message; messages from other threads still reach whoever installed the
// callback before (node-llama-cpp's logger, usually).
#include <string>
#include <vector>

namespace graft {

class LogCapture {
public:
    LogCapture();
    ~LogCapture();
    LogCapture(const LogCapture &) = delete;
    LogCapture & operator=(const LogCapture &) = delete;

    // The most specific captured error line, without the "function_name: " prefix.
    std::string last_error() const;

    void append(const char * text);

private:
    std::vector<std::string> lines_;
    std::string pending_;
};

}  // namespace graft
