#pragma once

// The endpoint's local store: chunks stay encrypted exactly as they are sealed, in the same
// layout as a repository, plus the pointer to the current version of each image.
//
//   chunks/ab/ab12…            encrypted chunk objects (complete, durable)
//   images/NAME/vN.manifest    signed manifests of versions held here
//   images/NAME/current        the version in use ("7\n"); replaced atomically, last
//   incoming/                  chunks of a sync in progress, not yet durable
//   seeds/                     Trim Transfer indexes of host folders
//
// A new version becomes current only after all its chunks are durable; a crash at any point
// leaves the old or the new version current, never a mix.

#include "heirloom/trim/keys.hpp"
#include "heirloom/trim/manifest.hpp"
#include "heirloom/trim/repository.hpp"

#include <mutex>
#include <optional>
#include <vector>

namespace heirloom::trim {

// What a store holds, read without taking its lock: the current pointer and manifests are
// replaced atomically, so a running VM can look while a sync works next to it.
Result<std::optional<std::uint64_t>> read_current_version(const fs::path& dir,
                                                          std::string_view image);
Result<Manifest> read_stored_manifest(const fs::path& dir, std::string_view image,
                                      std::uint64_t version, const crypto::SigningPublicKey& key);

class Store {
  public:
    // Opens (creating if needed) a store and takes its lock; leftovers of an interrupted sync
    // in incoming/ are discarded (finished chunks were already moved into chunks/).
    // Staged chunks are made durable and moved into chunks/ every checkpoint_bytes, so an
    // interrupted sync resumes from the last checkpoint.
    static Result<Store> open(const fs::path& dir, std::uint64_t checkpoint_bytes = 256ull << 20);
    // Flushes what is staged (best effort): a sync that fails (the server went away) keeps the
    // verified chunks it already received, so the next one does not fetch them again.
    ~Store();
    Store(Store&&) noexcept = default;
    Store& operator=(Store&&) noexcept = default;

    const fs::path& dir() const { return dir_; }
    fs::path chunk_file(const ChunkId& id) const { return dir_ / chunk_path(id); }
    bool has_chunk(const ChunkId& id) const;
    fs::path seeds_dir() const { return dir_ / "seeds"; }

    Result<std::optional<std::uint64_t>> current_version(std::string_view image) const;
    // Loads and verifies a manifest held here.
    Result<Manifest> load_manifest(std::string_view image, std::uint64_t version,
                                   const crypto::SigningPublicKey& key) const;
    // Names of images that have a current version.
    std::vector<std::string> images() const;

    // Writes a verified chunk object into incoming/. Thread-safe. Objects become durable and
    // visible in chunks/ at the next flush (done automatically at each checkpoint).
    Status stage_chunk(const ChunkId& id, ByteView object);
    // Makes staged chunks durable (syncfs) and moves them into chunks/. Thread-safe.
    Status flush();
    // Path a staged or stored chunk can be read from right now.
    fs::path readable_chunk_file(const ChunkId& id) const;

    // Flushes, writes the manifest, then switches the current pointer: the atomic step.
    Status commit(std::string_view image, std::uint64_t version, ByteView manifest_bytes);

    // Keeps the newest `keep` versions of image (at least the current one), deletes older
    // manifests, and removes chunks no kept manifest of any image references.
    struct PruneResult {
        std::uint64_t manifests_removed = 0;
        std::uint64_t chunks_removed = 0;
    };
    Result<PruneResult> prune(std::string_view image, unsigned keep,
                              const crypto::SigningPublicKey& key);

  private:
    Store(fs::path dir, FileLock lock, std::uint64_t checkpoint)
        : dir_(std::move(dir)), lock_(std::move(lock)), checkpoint_bytes_(checkpoint) {}
    Status flush_locked();
    fs::path dir_;
    FileLock lock_;
    std::unique_ptr<std::mutex> mutex_ = std::make_unique<std::mutex>();
    std::vector<ChunkId> staged_;
    std::uint64_t staged_bytes_ = 0;
    std::uint64_t checkpoint_bytes_;
};

} // namespace heirloom::trim
