#pragma once

// The repository: a folder of immutable files that any static HTTP server can serve.
//
//   images/NAME/latest           the newest version number ("7\n"), replaced atomically
//   images/NAME/vN.manifest      signed manifests, never changed once written
//   chunks/ab/ab12…              encrypted chunk objects, named by chunk ID
//
// pack adds a version of an image from a VHD, storing only chunks the repository lacks.

#include "heirloom/trim/keys.hpp"
#include "heirloom/trim/manifest.hpp"
#include "heirloom/trim/progress.hpp"

#include <optional>

namespace heirloom::trim {

std::string latest_path(std::string_view image);
std::string manifest_path(std::string_view image, std::uint64_t version);

struct PackOptions {
    std::string name;
    std::optional<std::uint64_t> version; // default: latest + 1
    std::int64_t expires_in_seconds = 0;  // 0 = never expires
    unsigned threads = 0;                 // 0 = one per core
    Progress* progress = nullptr;
    bool deltas = true; // byte-level deltas against the previous version where they pay
};

struct PackResult {
    std::string image;
    std::uint64_t version = 0;
    std::uint64_t virtual_size = 0;
    std::uint64_t data_bytes = 0; // non-zero virtual bytes
    std::uint64_t chunks = 0;     // non-zero chunks in this version
    std::uint64_t chunks_new = 0; // chunks the repository did not have
    std::uint64_t bytes_new = 0;  // bytes of new chunk objects written
    std::uint64_t manifest_bytes = 0;
    std::uint64_t deltas = 0;       // delta objects written
    std::uint64_t delta_bytes = 0;  // their size
    std::uint64_t delta_saving = 0; // record bytes an updating endpoint no longer fetches
    double seconds = 0;
};

Result<PackResult> pack_image(const fs::path& vhd_path, const fs::path& repo, const KeySet& keys,
                              const PackOptions& options);

// Reads the latest version number of an image in a repository folder (nullopt: none yet).
Result<std::optional<std::uint64_t>> repository_latest(const fs::path& repo,
                                                       std::string_view image);

// Parses the text of a "latest" or "current" pointer file.
Result<std::uint64_t> parse_version_pointer(std::string_view text);

// Holds an exclusive lock on a file (flock) for the lifetime of the object.
class FileLock {
  public:
    static Result<FileLock> acquire(const fs::path& path, std::string_view what);
    FileLock(FileLock&&) = default;
    FileLock& operator=(FileLock&&) = default;

  private:
    explicit FileLock(Fd fd) : fd_(std::move(fd)) {}
    Fd fd_;
};

} // namespace heirloom::trim
