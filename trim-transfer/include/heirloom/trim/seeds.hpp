#pragma once

// Seeds: places an endpoint already holds blocks from, so they need not cross the network.
//
//  - chunk seeds: chunk objects held locally (the store's earlier versions and other images,
//    or a removable-media folder made by `media create`); their blocks are found through the
//    block tables in the chunk headers;
//  - host folders (Trim Transfer): the endpoint's own files, indexed in 4 KiB blocks (a
//    partial last block padded with zeros, as a guest file system stores it). The index is
//    kept under the store's seeds/ folder and updated incrementally: a file whose size, mtime,
//    ctime and inode are unchanged is not read again.
//
// Every block taken from a seed is verified against its tag when it is read, so a seed that
// changed since it was indexed costs a network fetch, never a wrong byte.

#include "heirloom/trim/chunk.hpp"
#include "heirloom/trim/progress.hpp"

#include <array>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace heirloom::trim {

// A few open files kept by one worker, so reading consecutive blocks of a seed file or chunk
// object does not open it again for each block. Not thread-safe: one per worker.
class OpenFiles {
  public:
    Result<int> get(const fs::path& path);

  private:
    struct Entry {
        fs::path path;
        Fd fd;
    };
    std::array<Entry, 8> entries_;
    std::size_t next_ = 0;
};

// Where a block can be read: seed number, object (chunk or file) number in that seed, and
// block number within the object.
struct BlockLocation {
    std::uint32_t seed = 0;
    std::uint32_t object = 0;
    std::uint32_t block = 0;
};

// Maps block tags to the first seed (in priority order) that holds them. Built once, then
// read-only. About 32 bytes per indexed block.
class SeedIndex {
  public:
    void add(const BlockTag& tag, BlockLocation where);
    // Sorts and keeps, for each tag, the location from the lowest seed number.
    void finish();
    const BlockLocation* find(const BlockTag& tag) const;
    std::size_t size() const { return entries_.size(); }

  private:
    struct Entry {
        BlockTag tag;
        BlockLocation where;
    };
    std::vector<Entry> entries_;
};

// A set of chunk objects read from a folder, with their verified headers.
class ChunkSeed {
  public:
    // chunk_files: the object files; headers are read and verified against the IDs.
    // Unreadable or damaged objects are skipped (counted in skipped()).
    static ChunkSeed load(std::vector<std::pair<ChunkId, fs::path>> chunk_files,
                          const FamilyKeys& keys);

    void add_to(SeedIndex& index, std::uint32_t seed_number) const;
    // Reads, authenticates and decrypts one block.
    Status read_block(const FamilyKeys& keys, RecordCodec& codec, OpenFiles& files,
                      std::uint32_t object, std::uint32_t block, MutableByteView out) const;
    std::size_t skipped() const { return skipped_; }
    std::size_t objects() const { return chunks_.size(); }
    // The object number holding chunk id, if this seed has it.
    std::optional<std::uint32_t> find(const ChunkId& id) const;
    const fs::path& path(std::uint32_t object) const { return chunks_.at(object).path; }
    const ChunkHeader& header(std::uint32_t object) const { return chunks_.at(object).header; }

  private:
    struct Chunk {
        fs::path path;
        ChunkHeader header;
    };
    std::vector<Chunk> chunks_;
    std::unordered_map<ChunkId, std::uint32_t, TagHash> by_id_;
    std::size_t skipped_ = 0;
};

// A host folder indexed in 4 KiB blocks (Trim Transfer).
class HostFolderSeed {
  public:
    // Indexes folder (recursively, regular files only, symlinks not followed), reusing and
    // updating the index file kept in cache_dir.
    static Result<HostFolderSeed> index(const fs::path& folder, const fs::path& cache_dir,
                                        const FamilyKeys& keys, Progress* progress);

    void add_to(SeedIndex& index, std::uint32_t seed_number) const;
    // Reads one block (zero-padded at end of file) and checks it against the expected tag.
    Status read_block(const FamilyKeys& keys, OpenFiles& files, std::uint32_t object,
                      std::uint32_t block, const BlockTag& expected, MutableByteView out) const;

    const fs::path& folder() const { return folder_; }
    std::uint64_t files() const { return files_.size(); }
    std::uint64_t files_hashed() const { return files_hashed_; }
    std::uint64_t bytes_indexed() const { return bytes_indexed_; }

    struct File {
        std::string path; // relative to the folder
        std::uint64_t size = 0;
        std::int64_t mtime_ns = 0;
        std::int64_t ctime_ns = 0;
        std::uint64_t inode = 0;
        std::uint64_t first_tag = 0; // index into tags_
    };

  private:
    fs::path folder_;
    std::vector<File> files_;
    std::vector<BlockTag> tags_;
    std::uint64_t files_hashed_ = 0;
    std::uint64_t bytes_indexed_ = 0;
};

} // namespace heirloom::trim
