#pragma once

// File helpers that keep data consistent across crashes: atomic replace, fsync of data and
// directories, and an owning file descriptor.

#include "heirloom/common/bytes.hpp"

#include <filesystem>
#include <string>

namespace heirloom {

namespace fs = std::filesystem;

// An owning POSIX file descriptor.
class Fd {
  public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd();
    Fd(Fd&& other) noexcept : fd_(other.release()) {}
    Fd& operator=(Fd&& other) noexcept;
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;

    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    int release() {
        int fd = fd_;
        fd_ = -1;
        return fd;
    }

  private:
    int fd_ = -1;
};

Result<Fd> open_read(const fs::path& path);

// Reads exactly out.size() bytes at offset, failing on a short read (a truncated file).
Status pread_exact(int fd, MutableByteView out, std::uint64_t offset, const fs::path& path);
Status pwrite_all(int fd, ByteView data, std::uint64_t offset, const fs::path& path);
Status write_all(int fd, ByteView data, const fs::path& path);
Result<std::uint64_t> file_size(int fd, const fs::path& path);

// Reads a whole file, refusing files larger than max_size.
Result<Bytes> read_file(const fs::path& path, std::uint64_t max_size = 64ull << 20);
Result<std::string> read_text_file(const fs::path& path, std::uint64_t max_size = 1 << 20);

enum class Durability { none, fsync };
enum class FileMode : unsigned { public_read = 0644, owner_only = 0600 };

// Replaces path with data atomically: a crash leaves either the old or the new content.
Status write_file_atomic(const fs::path& path, ByteView data,
                         Durability durability = Durability::fsync,
                         FileMode mode = FileMode::public_read);

// Creates directories (like mkdir -p) with a clear error.
Status make_dirs(const fs::path& path);
Status fsync_dir(const fs::path& dir);
// Makes everything written to the file system holding path durable (syncfs): one call instead
// of an fsync per file, for many files written before a commit point.
Status sync_filesystem(const fs::path& path);

} // namespace heirloom
