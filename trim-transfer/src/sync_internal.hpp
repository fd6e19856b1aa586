#pragma once

// Internals of sync shared by planning (sync.cpp) and applying (sync_apply.cpp).

#include "heirloom/trim/chunk.hpp"
#include "heirloom/trim/manifest.hpp"
#include "heirloom/trim/seeds.hpp"
#include "heirloom/trim/source.hpp"
#include "heirloom/trim/store.hpp"
#include "heirloom/trim/sync.hpp"

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <variant>

namespace heirloom::trim::detail {

enum class BlockSource : std::uint8_t { zero, seed, duplicate, fetch };

// Where one block of a chunk being built comes from. For a duplicate, `where.object` is the
// ordinal of the partial chunk that fetches it and `where.block` its block number there.
struct BlockPlan {
    BlockSource source = BlockSource::fetch;
    BlockLocation where;
};

// A chunk of the new version that the store does not hold whole.
struct PartialChunk {
    ManifestEntry entry;
    ChunkHeader remote; // the source's header: block tags and record offsets
    std::vector<BlockPlan> plan;
    std::optional<DeltaEntry> delta; // fetch this delta instead of the planned records
};

using ExtraSeed = std::variant<ChunkSeed, HostFolderSeed>;

// Seed 0 is the store; seeds 1.. are the --seed folders in order.
struct Seeds {
    ChunkSeed store;
    std::vector<ExtraSeed> extra;
    std::vector<std::string> names; // names[0] == "store"
    SeedIndex index;
};

struct ApplyCounters {
    explicit ApplyCounters(std::size_t seeds) : from_seed(seeds) {}
    std::vector<std::atomic<std::uint64_t>> from_seed;
    std::atomic<std::uint64_t> duplicates{0};
    std::atomic<std::uint64_t> deltas_used{0};
    std::atomic<std::uint64_t> delta_fallbacks{0};
    std::atomic<std::uint64_t> mismatches{0};
    std::atomic<std::uint64_t> chunks_done{0};
};

struct ApplyContext {
    ApplyContext(const KeySet& k, Store& st, ObjectSource& src, const Seeds& sd,
                 const std::vector<PartialChunk>& c, ApplyCounters& n, Progress* p)
        : keys(k), store(st), source(src), seeds(sd), chunks(c), counters(n), progress(p),
          progress_total(c.size()) {}
    const KeySet& keys;
    Store& store;
    ObjectSource& source;
    const Seeds& seeds;
    const std::vector<PartialChunk>& chunks;
    ApplyCounters& counters;
    Progress* progress = nullptr;
    std::uint64_t progress_total = 0;

    std::mutex mutex;
    std::condition_variable cv;
    std::vector<std::unique_ptr<ChunkHeader>> stored; // our header of each finished chunk
    std::atomic<bool> failed{false};
    std::optional<Error> error;
};

// Builds, verifies and stages every partial chunk with `workers` threads.
Status apply_partial_chunks(ApplyContext& ctx, unsigned workers);

} // namespace heirloom::trim::detail
