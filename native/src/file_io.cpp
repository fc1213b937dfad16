#include "file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <vector>

#include "errors.h"

namespace graft {

std::string errno_message(int err) {
    switch (err) {
        case ENOSPC: return "no space left on the device; free some disk space and try again";
        case EDQUOT: return "disk quota exceeded; free some space and try again";
        case EACCES:
        case EPERM: return "permission denied";
        case EROFS: return "the file system is read-only";
        case ENOENT: return "no such file or directory";
        case EISDIR: return "is a directory";
        default: return std::strerror(err);
    }
}

Fd::~Fd() {
    if (fd_ >= 0) ::close(fd_);
}

Fd & Fd::operator=(Fd && other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = other.release();
    }
    return *this;
}

Fd open_for_reading(const std::string & path, uint64_t * size_out) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        const int err = errno;
        throw GraftError(err == ENOENT ? "file not found: " + path : path + ": " + errno_message(err));
    }
    if (S_ISDIR(st.st_mode)) throw GraftError(path + " is a directory, not a GGUF file");
    if (!S_ISREG(st.st_mode)) throw GraftError(path + " is not a regular file");
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw GraftError("cannot open " + path + ": " + errno_message(errno));
    if (size_out) *size_out = static_cast<uint64_t>(st.st_size);
    return Fd(fd);
}

void write_all(int fd, const void * data, size_t n, const std::string & path) {
    const auto * p = static_cast<const uint8_t *>(data);
    while (n > 0) {
        const ssize_t w = ::write(fd, p, std::min<size_t>(n, 1u << 30));
        if (w < 0) {
            if (errno == EINTR) continue;
            throw GraftError("cannot write " + path + ": " + errno_message(errno));
        }
        p += w;
        n -= static_cast<size_t>(w);
    }
}

void write_zeros(int fd, size_t n, const std::string & path) {
    static const uint8_t zeros[4096] = {};
    while (n > 0) {
        const size_t chunk = std::min(n, sizeof(zeros));
        write_all(fd, zeros, chunk, path);
        n -= chunk;
    }
}

void read_exact(int fd, uint64_t offset, void * dst, size_t n, const std::string & path) {
    auto * p = static_cast<uint8_t *>(dst);
    while (n > 0) {
        const ssize_t r = ::pread(fd, p, std::min<size_t>(n, 1u << 30), static_cast<off_t>(offset));
        if (r < 0) {
            if (errno == EINTR) continue;
            throw GraftError("cannot read " + path + ": " + errno_message(errno));
        }
        if (r == 0) throw GraftError(path + " ended unexpectedly (was it truncated or changed while Graft read it?)");
        p += r;
        n -= static_cast<size_t>(r);
        offset += static_cast<uint64_t>(r);
    }
}

void copy_range(int in_fd, uint64_t in_offset, int out_fd, uint64_t n, const std::string & in_path, const std::string & out_path) {
    // copy_file_range lets the kernel move the bytes (or share extents); fall back to
    // read/write across file systems that refuse it.
    loff_t off = static_cast<loff_t>(in_offset);
    while (n > 0) {
        const ssize_t c = ::copy_file_range(in_fd, &off, out_fd, nullptr, std::min<uint64_t>(n, 1u << 30), 0);
        if (c > 0) {
            n -= static_cast<uint64_t>(c);
            continue;
        }
        if (c == 0) throw GraftError(in_path + " ended unexpectedly (was it truncated or changed while Graft read it?)");
        if (errno == EINTR) continue;
        if (errno == ENOSPC || errno == EDQUOT || errno == EIO) {
            throw GraftError("cannot write " + out_path + ": " + errno_message(errno));
        }
        break;  // EXDEV, ENOSYS, EINVAL, ...: use the portable path
    }
    std::vector<uint8_t> buffer(std::min<uint64_t>(n, 8u << 20));
    while (n > 0) {
        const size_t chunk = static_cast<size_t>(std::min<uint64_t>(n, buffer.size()));
        read_exact(in_fd, static_cast<uint64_t>(off), buffer.data(), chunk, in_path);
        write_all(out_fd, buffer.data(), chunk, out_path);
        off += static_cast<loff_t>(chunk);
        n -= chunk;
    }
}

bool same_file(const std::string & a, const std::string & b) {
    struct stat sa {}, sb {};
    if (::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return false;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static std::string random_suffix() {
    std::random_device rd;
    static const char digits[] = "0123456789abcdef";
    std::string s;
    for (int i = 0; i < 12; ++i) s += digits[rd() % 16];
    return s;
}

static std::string parent_dir(const std::string & path) {
    const auto slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

AtomicOutputFile::AtomicOutputFile(const std::string & final_path) : final_path_(final_path) {
    if (final_path.empty()) throw GraftError("no output path given");
    struct stat st {};
    if (::stat(final_path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        throw GraftError("output path " + final_path + " is a directory; give a file name");
    }
    const std::string dir = parent_dir(final_path);
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        throw GraftError("output folder " + dir + " does not exist");
    }
    temp_path_ = final_path + ".graft-tmp-" + std::to_string(::getpid()) + "-" + random_suffix();
    const int fd = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) throw GraftError("cannot create a file in " + dir + ": " + errno_message(errno));
    fd_ = Fd(fd);
}

AtomicOutputFile::~AtomicOutputFile() {
    if (!committed_) {
        fd_ = Fd();
        ::unlink(temp_path_.c_str());
    }
}

void AtomicOutputFile::write(const void * data, size_t n) {
    write_all(fd_.get(), data, n, final_path_);
    position_ += n;
}

void AtomicOutputFile::pad_to(uint64_t position) {
    if (position < position_) throw GraftError("internal error: GGUF layout went backwards while writing " + final_path_);
    write_zeros(fd_.get(), static_cast<size_t>(position - position_), final_path_);
    position_ = position;
}

void AtomicOutputFile::copy_from(int in_fd, uint64_t in_offset, uint64_t n, const std::string & in_path) {
    copy_range(in_fd, in_offset, fd_.get(), n, in_path, final_path_);
    position_ += n;
}

void AtomicOutputFile::commit() {
    if (::fsync(fd_.get()) != 0) throw GraftError("cannot write " + final_path_ + ": " + errno_message(errno));
    if (::close(fd_.release()) != 0) throw GraftError("cannot write " + final_path_ + ": " + errno_message(errno));
    if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
        throw GraftError("cannot rename the finished file to " + final_path_ + ": " + errno_message(errno));
    }
    committed_ = true;
    const int dir_fd = ::open(parent_dir(final_path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
        ::fsync(dir_fd);
        ::close(dir_fd);
    }
}

}  // namespace graft
