#pragma once

// Operations on stored images: export back to a standard VHD, verify every chunk, and write a
// removable-media seed.

#include "heirloom/trim/keys.hpp"
#include "heirloom/trim/progress.hpp"
#include "heirloom/trim/source.hpp"

#include <optional>
#include <string>
#include <vector>

namespace heirloom::trim {

struct ExportResult {
    std::uint64_t version = 0;
    std::uint64_t virtual_size = 0;
    std::uint64_t data_bytes = 0;
    double seconds = 0;
};

// Writes a stored version (default: the current one) as a dynamic VHD that qemu-img and other
// hypervisors open. The file appears only when complete.
Result<ExportResult> export_image(const fs::path& store, std::string_view image,
                                  std::optional<std::uint64_t> version, const fs::path& out,
                                  const KeySet& keys, Progress* progress);

struct VerifyResult {
    std::uint64_t version = 0;
    std::uint64_t chunks = 0;
    std::uint64_t data_bytes = 0;
    std::vector<std::string> problems; // one line per damaged or missing chunk
    double seconds = 0;
};

// Checks the manifest signature and authenticates and decrypts every chunk of a version.
Result<VerifyResult> verify_image(const fs::path& store, std::string_view image,
                                  std::optional<std::uint64_t> version, const KeySet& keys,
                                  Progress* progress);

struct MediaResult {
    std::uint64_t version = 0;
    std::uint64_t chunks = 0;
    std::uint64_t chunks_copied = 0; // the rest were on the media already
    std::uint64_t bytes_copied = 0;
    double seconds = 0;
};

// Copies the signed manifest and the encrypted chunks of a version (default: the latest) from
// a repository (a folder, or a server: see open_source) to a removable-media folder. Chunks
// already on the media are kept; the manifest is written last, so media cut short are never
// taken for complete. Never writes plaintext.
Result<MediaResult> create_media(ObjectSource& repo, std::string_view image,
                                 std::optional<std::uint64_t> version, const fs::path& out,
                                 Progress* progress);
// The same from a repository folder.
Result<MediaResult> create_media(const fs::path& repo, std::string_view image,
                                 std::optional<std::uint64_t> version, const fs::path& out,
                                 Progress* progress);

} // namespace heirloom::trim
