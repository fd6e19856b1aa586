#include "backends.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace heirloom::trim::detail {

namespace {

// Objects in a folder: a repository on disk or a copy on removable media.
class FolderSource final : public ObjectSource {
  public:
    explicit FolderSource(fs::path root) : root_(std::move(root)) {}

    std::string describe() const override { return "folder " + root_.string(); }

    Result<Bytes> get(std::string_view path, std::uint64_t max_size) override {
        fs::path file = HL_TRY(resolve(path));
        Fd fd = HL_TRY(open_object(path, file));
        std::uint64_t size = HL_TRY(regular_size(fd, path, file));
        if (size > max_size)
            return fail(Errc::corrupt, "object " + std::string(path) + " in " + describe() +
                                           " is " + std::to_string(size) +
                                           " bytes, more than the limit of " +
                                           std::to_string(max_size) +
                                           "; the repository is damaged or not a Heirloom "
                                           "repository");
        Bytes data(static_cast<std::size_t>(size));
        HL_TRY(pread_exact(fd.get(), data, 0, file));
        bytes_ += size;
        return data;
    }

    Result<std::vector<Bytes>> get_ranges(std::string_view path,
                                          std::span<const ByteRange> ranges) override {
        fs::path file = HL_TRY(resolve(path));
        Fd fd = HL_TRY(open_object(path, file));
        std::uint64_t size = HL_TRY(regular_size(fd, path, file));
        // Checks every range before reading any, so a bad request allocates nothing.
        for (const ByteRange& r : ranges) {
            if (r.length > size || r.offset > size - r.length)
                return fail(Errc::corrupt,
                            "object " + std::string(path) + " in " + describe() + " is " +
                                std::to_string(size) + " bytes, but bytes " +
                                std::to_string(r.offset) + "+" + std::to_string(r.length) +
                                " were asked for; the object is truncated or the manifest "
                                "does not match it");
        }
        std::vector<Bytes> out;
        out.reserve(ranges.size());
        for (const ByteRange& r : ranges) {
            Bytes data(static_cast<std::size_t>(r.length));
            HL_TRY(pread_exact(fd.get(), data, r.offset, file));
            bytes_ += r.length;
            out.push_back(std::move(data));
        }
        return out;
    }

    TransferStats stats() const override { return {bytes_.load(), requests_.load()}; }

  private:
    Result<fs::path> resolve(std::string_view path) const {
        if (!valid_object_path(path))
            return fail(Errc::invalid_argument,
                        "invalid object path \"" + std::string(path) + "\" for " + describe());
        return root_ / fs::path(std::string(path));
    }

    // O_NONBLOCK keeps a FIFO planted in the folder from blocking the open forever; it has no
    // effect on regular files.
    Result<Fd> open_object(std::string_view path, const fs::path& file) {
        int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
            int err = errno;
            if (err == ENOENT || err == ENOTDIR)
                return fail(Errc::not_found,
                            "object " + std::string(path) + " is not in " + describe());
            return fail(Errc::io, "open " + file.string() + ": " + std::strerror(err));
        }
        ++requests_;
        return Fd(fd);
    }

    Result<std::uint64_t> regular_size(const Fd& fd, std::string_view path,
                                       const fs::path& file) const {
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0)
            return fail_errno("stat", file.string());
        if (!S_ISREG(st.st_mode))
            return fail(Errc::io, "object " + std::string(path) + " in " + describe() +
                                      " is not a regular file (" + file.string() + ")");
        return static_cast<std::uint64_t>(st.st_size);
    }

    fs::path root_;
    std::atomic<std::uint64_t> bytes_{0};
    std::atomic<std::uint64_t> requests_{0};
};

} // namespace

std::unique_ptr<ObjectSource> make_folder_source(const fs::path& root) {
    return std::make_unique<FolderSource>(root);
}

} // namespace heirloom::trim::detail
