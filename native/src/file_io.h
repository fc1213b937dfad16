#pragma once
// POSIX file helpers for streaming GGUF output: every output is written under a temporary
// name next to its destination, fsynced and renamed, so a crash or an error never leaves a
// partial file under the final name.
#include <cstdint>
#include <string>

namespace graft {

class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd();
    Fd(Fd && other) noexcept : fd_(other.release()) {}
    Fd & operator=(Fd && other) noexcept;
    Fd(const Fd &) = delete;
    Fd & operator=(const Fd &) = delete;
    int get() const { return fd_; }
    int release() { int fd = fd_; fd_ = -1; return fd; }
private:
    int fd_ = -1;
};

Fd open_for_reading(const std::string & path, uint64_t * size_out);
void write_all(int fd, const void * data, size_t n, const std::string & path);
void write_zeros(int fd, size_t n, const std::string & path);
void read_exact(int fd, uint64_t offset, void * dst, size_t n, const std::string & path);
// Copies n bytes from in_fd at in_offset to the current position of out_fd.
void copy_range(int in_fd, uint64_t in_offset, int out_fd, uint64_t n, const std::string & in_path, const std::string & out_path);
// True when both paths name the same existing file (same device and inode).
bool same_file(const std::string & a, const std::string & b);

class AtomicOutputFile {
public:
    explicit AtomicOutputFile(const std::string & final_path);
    ~AtomicOutputFile();  // removes the temporary file unless commit() succeeded
    AtomicOutputFile(const AtomicOutputFile &) = delete;
    AtomicOutputFile & operator=(const AtomicOutputFile &) = delete;
    int fd() const { return fd_.get(); }
    const std::string & final_path() const { return final_path_; }
    uint64_t position() const { return position_; }
    void write(const void * data, size_t n);
    void pad_to(uint64_t position);
    void copy_from(int in_fd, uint64_t in_offset, uint64_t n, const std::string & in_path);
    void commit();
private:
    std::string final_path_;
    std::string temp_path_;
    Fd fd_;
    uint64_t position_ = 0;
    bool committed_ = false;
};

}  // namespace graft
