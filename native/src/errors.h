#pragma once
// Every failure the addon reports is a GraftError carrying a one-line message meant for
// the user; the N-API layer turns it into a JS Error.
#include <stdexcept>
#include <string>

namespace graft {

struct GraftError : std::runtime_error {
    explicit GraftError(const std::string & message) : std::runtime_error(message) {}
};

std::string errno_message(int err);

}  // namespace graft
