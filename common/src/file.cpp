#include "heirloom/common/file.hpp"

#include <atomic>
#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace heirloom {

Fd::~Fd() {
    if (fd_ >= 0)
        ::close(fd_);
}

Fd& Fd::operator=(Fd&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = other.release();
    }
    return *this;
}

Result<Fd> open_read(const fs::path& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail_errno("open", path.string());
    return Fd(fd);
}

Status pread_exact(int fd, MutableByteView out, std::uint64_t offset, const fs::path& path) {
    std::size_t done = 0;
    while (done < out.size()) {
        ssize_t n =
            ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail_errno("read", path.string());
        if (n == 0)
            return fail(Errc::corrupt, "read " + path.string() + ": file is truncated (wanted " +
                                           std::to_string(out.size()) + " bytes at offset " +
                                           std::to_string(offset) + ")");
        done += static_cast<std::size_t>(n);
    }
    return {};
}

Status pwrite_all(int fd, ByteView data, std::uint64_t offset, const fs::path& path) {
    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t n =
            ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail_errno("write", path.string());
        done += static_cast<std::size_t>(n);
    }
    return {};
}

Status write_all(int fd, ByteView data, const fs::path& path) {
    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail_errno("write", path.string());
        done += static_cast<std::size_t>(n);
    }
    return {};
}

Result<std::uint64_t> file_size(int fd, const fs::path& path) {
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        return fail_errno("stat", path.string());
    return static_cast<std::uint64_t>(st.st_size);
}

namespace {

// Reads a whole file straight into a byte container (Bytes or std::string), with no copy.
template <class Container>
Result<Container> read_whole(const fs::path& path, std::uint64_t max_size) {
    Fd fd = HL_TRY(open_read(path));
    std::uint64_t size = HL_TRY(file_size(fd.get(), path));
    if (size > max_size)
        return fail(Errc::corrupt, path.string() + " is too large (" + std::to_string(size) +
                                       " bytes, limit " + std::to_string(max_size) + ")");
    auto read_into = [&](void* out) {
        return pread_exact(fd.get(), MutableByteView(static_cast<std::uint8_t*>(out), size), 0,
                           path);
    };
    Container data;
    Status read;
    if constexpr (std::is_same_v<Container, std::string>) {
        // No zero-filling first: the server reads every chunk it serves through here. The
        // length returned is size, not the callback's second argument: libstdc++ 12 passes
        // the new capacity there (30 for a 16-byte string), which would append garbage.
        data.resize_and_overwrite(size, [&](char* out, std::size_t) {
            read = read_into(out);
            return read ? static_cast<std::size_t>(size) : 0;
        });
    } else {
        data.resize(size);
        read = read_into(data.data());
    }
    HL_TRY(read);
    return data;
}

} // namespace

Result<Bytes> read_file(const fs::path& path, std::uint64_t max_size) {
    return read_whole<Bytes>(path, max_size);
}

Result<std::string> read_text_file(const fs::path& path, std::uint64_t max_size) {
    return read_whole<std::string>(path, max_size);
}

Status fsync_dir(const fs::path& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return fail_errno("open directory", dir.string());
    Fd owner(fd);
    if (::fsync(fd) != 0)
        return fail_errno("fsync directory", dir.string());
    return {};
}

Status sync_filesystem(const fs::path& path) {
    Fd fd = HL_TRY(open_read(path));
    if (::syncfs(fd.get()) != 0)
        return fail_errno("syncfs", path.string());
    return {};
}

Status write_file_atomic(const fs::path& path, ByteView data, Durability durability,
                         FileMode mode) {
    // Unique per process and call; O_EXCL below catches any clash with another writer.
    static std::atomic<std::uint64_t> counter{0};
    fs::path tmp = path;
    tmp += ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
    int fd =
        ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, static_cast<mode_t>(mode));
    if (fd < 0)
        return fail_errno("create", tmp.string());
    Fd owner(fd);
    auto cleanup = [&] {
        ::unlink(tmp.c_str());
    };
    if (auto ok = write_all(fd, data, tmp); !ok) {
        cleanup();
        return ok;
    }
    if (durability == Durability::fsync && ::fdatasync(fd) != 0) {
        cleanup();
        return fail_errno("fsync", tmp.string());
    }
    owner = Fd();
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        cleanup();
        return fail_errno("rename into place", path.string());
    }
    if (durability == Durability::fsync)
        return fsync_dir(path.parent_path().empty() ? fs::path(".") : path.parent_path());
    return {};
}

Status make_dirs(const fs::path& path) {
    std::error_code ec;
    fs::create_directories(path, ec);
    if (ec)
        return fail(Errc::io, "create directory " + path.string() + ": " + ec.message());
    return {};
}

} // namespace heirloom
