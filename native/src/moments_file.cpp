#include "moments_file.h"

#include <cstring>
#include <map>
#include <sstream>

#include "errors.h"
#include "file_io.h"

namespace graft {

namespace {

constexpr char kMagic[8] = {'G', 'R', 'A', 'F', 'T', 'M', 'O', 'M'};
constexpr uint32_t kVersion = 1;

std::string header_text(const MomentsHeader & h) {
    std::ostringstream s;
    s << "kind=" << h.kind << "\nmatrix=" << h.matrix << "\nlayer=" << h.layer << "\nn_ff=" << h.n_ff << "\nn=" << h.n
      << "\ntoken_count=" << h.token_count << "\ncontext_size=" << h.context_size << "\nmodel_sha256=" << h.model_sha256
      << "\ncorpus_sha256=" << h.corpus_sha256 << "\n";
    std::string text = s.str();
    while (text.size() % 8 != 0) text += '\n';
    return text;
}

int64_t to_int(const std::map<std::string, std::string> & kv, const std::string & key, const std::string & path) {
    const auto it = kv.find(key);
    if (it == kv.end()) throw GraftError(path + " is not a valid second-moment file: its header has no " + key);
    try {
        size_t used = 0;
        const long long v = std::stoll(it->second, &used);
        if (used != it->second.size()) throw std::invalid_argument(key);
        return v;
    } catch (const std::exception &) {
        throw GraftError(path + " is not a valid second-moment file: " + key + " is not a number");
    }
}

}  // namespace

void write_moments_file(const std::string & path, const MomentsHeader & header, const double * data) {
    const std::string text = header_text(header);
    AtomicOutputFile out(path);
    const uint32_t version = kVersion;
    const uint32_t length = static_cast<uint32_t>(text.size());
    out.write(kMagic, sizeof(kMagic));
    out.write(&version, sizeof(version));
    out.write(&length, sizeof(length));
    out.write(text.data(), text.size());
    out.write(data, static_cast<size_t>(header.n_ff) * static_cast<size_t>(header.n_ff) * sizeof(double));
    out.commit();
}

MomentsHeader read_moments_file(const std::string & path, std::vector<double> * data) {
    uint64_t size = 0;
    Fd fd = open_for_reading(path, &size);
    char prefix[16];
    if (size < sizeof(prefix)) throw GraftError(path + " is not a second-moment file (too short)");
    read_exact(fd.get(), 0, prefix, sizeof(prefix), path);
    if (std::memcmp(prefix, kMagic, sizeof(kMagic)) != 0) throw GraftError(path + " is not a second-moment file (no GRAFTMOM magic)");
    uint32_t version = 0, length = 0;
    std::memcpy(&version, prefix + 8, 4);
    std::memcpy(&length, prefix + 12, 4);
    if (version != kVersion) throw GraftError(path + " has second-moment format version " + std::to_string(version) + "; this Graft reads version 1");
    if (length % 8 != 0 || 16 + static_cast<uint64_t>(length) > size) throw GraftError(path + " is not a valid second-moment file: bad header length");
    std::string text(length, '\0');
    read_exact(fd.get(), 16, text.data(), length, path);
    std::map<std::string, std::string> kv;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        const auto eq = line.find('=');
        if (eq != std::string::npos) kv[line.substr(0, eq)] = line.substr(eq + 1);
    }
    MomentsHeader h;
    h.kind = kv["kind"];
    h.matrix = kv["matrix"];
    h.layer = static_cast<int>(to_int(kv, "layer", path));
    h.n_ff = static_cast<int>(to_int(kv, "n_ff", path));
    h.n = to_int(kv, "n", path);
    h.token_count = to_int(kv, "token_count", path);
    h.context_size = static_cast<int>(to_int(kv, "context_size", path));
    h.model_sha256 = kv["model_sha256"];
    h.corpus_sha256 = kv["corpus_sha256"];
    if (h.n_ff <= 0) throw GraftError(path + " is not a valid second-moment file: n_ff is " + std::to_string(h.n_ff));
    const uint64_t bytes = static_cast<uint64_t>(h.n_ff) * static_cast<uint64_t>(h.n_ff) * sizeof(double);
    if (16 + static_cast<uint64_t>(length) + bytes != size) {
        throw GraftError(path + " is truncated or damaged: it should hold " + std::to_string(16 + length + bytes) + " bytes but has " + std::to_string(size));
    }
    if (data != nullptr) {
        data->resize(static_cast<size_t>(h.n_ff) * static_cast<size_t>(h.n_ff));
        read_exact(fd.get(), 16 + length, data->data(), static_cast<size_t>(bytes), path);
    }
    return h;
}

std::string moments_mismatch(const MomentsHeader & found, const MomentsHeader & expected) {
    auto differ = [](const std::string & what, const std::string & a, const std::string & b) {
        return what + " " + a + " where " + b + " was expected";
    };
    if (found.kind != expected.kind) return differ("kind", found.kind, expected.kind);
    if (found.model_sha256 != expected.model_sha256) return differ("another model: sha256", found.model_sha256, expected.model_sha256);
    if (found.corpus_sha256 != expected.corpus_sha256) return differ("another corpus: sha256", found.corpus_sha256, expected.corpus_sha256);
    if (found.layer != expected.layer) return differ("layer", std::to_string(found.layer), std::to_string(expected.layer));
    if (found.n_ff != expected.n_ff) return differ("n_ff", std::to_string(found.n_ff), std::to_string(expected.n_ff));
    if (found.token_count != expected.token_count) return differ("token count", std::to_string(found.token_count), std::to_string(expected.token_count));
    if (found.context_size != expected.context_size) return differ("context size", std::to_string(found.context_size), std::to_string(expected.context_size));
    return "";
}

}  // namespace graft
