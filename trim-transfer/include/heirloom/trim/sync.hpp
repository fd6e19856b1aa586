#pragma once

// sync: brings an image in the local store to the newest version a source offers, moving
// only the 4 KiB blocks that no seed holds. Seeds, in priority order: what the store already
// holds, zero blocks, duplicates within the image, then each extra seed (host folders for
// Trim Transfer, removable-media folders). Everything is verified before it is written, an
// interrupted sync resumes from the chunks already stored, and the new version becomes
// current atomically.

#include "heirloom/common/log.hpp"
#include "heirloom/trim/keys.hpp"
#include "heirloom/trim/progress.hpp"
#include "heirloom/trim/source.hpp"

#include <optional>
#include <string>
#include <vector>

namespace heirloom::trim {

struct SyncOptions {
    std::string from; // repository folder, or http(s) URL of one
    std::string image;
    fs::path store;
    std::vector<fs::path> seeds; // host folders or media folders, in priority order
    SourceOptions source;
    unsigned workers = 8; // chunks processed (and requests in flight) at once
    unsigned keep_versions = 2;
    std::uint64_t checkpoint_bytes = 256ull << 20; // fetched data made durable this often
    std::int64_t now = 0; // unix seconds for expiry checks; 0 = the system clock
    Progress* progress = nullptr;
    const Log* log = nullptr;
};

struct SeedBytes {
    std::string seed; // "store", "zero", "duplicates", or a seed folder
    std::uint64_t bytes = 0;
};

struct SyncResult {
    std::string image;
    std::optional<std::uint64_t> previous_version;
    std::uint64_t version = 0;
    bool changed = false;
    std::uint64_t virtual_size = 0;
    std::uint64_t bytes_fetched = 0;  // everything received from the source, manifest included
    std::uint64_t manifest_bytes = 0; // of which the manifest
    std::uint64_t requests = 0;
    std::uint64_t blocks_fetched = 0;  // distinct blocks that no seed held
    std::uint64_t seed_mismatches = 0; // seed blocks that failed verification (then fetched)
    std::uint64_t deltas_used = 0;     // chunks rebuilt from a librsync delta
    std::uint64_t delta_fallbacks = 0; // deltas that did not verify (records fetched instead)
    std::vector<SeedBytes> from_seeds;
    double seconds = 0;
};

Result<SyncResult> sync_image(const SyncOptions& options, const KeySet& keys);

// True when folder is a removable-media seed (made by `media create`), not a host folder.
bool is_media_folder(const fs::path& folder);

} // namespace heirloom::trim
