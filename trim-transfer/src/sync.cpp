// Planning a sync: fetch and verify the manifest, take whole chunks from the store and media,
// fetch the headers of the rest, index the seeds, and decide for every block where it comes
// from. Applying is in sync_apply.cpp.

#include "heirloom/trim/sync.hpp"

#include "heirloom/trim/repository.hpp"
#include "sync_internal.hpp"

#include <chrono>
#include <ctime>
#include <fmt/format.h>
#include <thread>
#include <unordered_map>

namespace heirloom::trim {

using namespace detail;

bool is_media_folder(const fs::path& folder) {
    std::error_code ec;
    return fs::exists(folder / "heirloom-media.json", ec);
}

namespace {

// Which manifests of a folder count: the current version of each image (a store), or all
// of them (removable media).
enum class Versions { current, all };

// Chunk files referenced by every manifest in a repository-shaped folder that verifies under
// our keys (a store, or removable media: both are untrusted until verified).
std::vector<std::pair<ChunkId, fs::path>>
verified_chunk_files(const fs::path& root, const KeySet& keys, Versions versions, const Log* log) {
    const bool current_only = versions == Versions::current;
    std::vector<std::pair<ChunkId, fs::path>> files;
    std::error_code ec;
    for (const auto& image_dir : fs::directory_iterator(root / "images", ec)) {
        std::string name = image_dir.path().filename().string();
        std::optional<std::uint64_t> current;
        if (current_only) {
            auto text = read_text_file(image_dir.path() / "current", 64);
            auto v = text ? parse_version_pointer(*text) : Result<std::uint64_t>(0);
            if (!v)
                continue;
            current = *v;
        }
        for (const auto& entry : fs::directory_iterator(image_dir.path(), ec)) {
            if (entry.path().extension() != ".manifest")
                continue;
            if (current && entry.path().filename() != fmt::format("v{}.manifest", *current))
                continue;
            auto bytes = read_file(entry.path(), max_manifest_size);
            auto m = bytes ? parse_manifest(*bytes, keys.signing_public)
                           : Result<Manifest>(std::unexpected(bytes.error()));
            if (!m || m->family != keys.family.family_id()) {
                if (log && !current_only)
                    log->warn("ignoring {}: {}", entry.path().string(),
                              m ? "another image family" : m.error().message);
                continue;
            }
            for (const auto& c : m->chunks)
                files.emplace_back(c.id, root / chunk_path(c.id));
        }
    }
    return files;
}

// Fetches and verifies the headers of the chunks we must build, several at a time.
Status fetch_headers(ObjectSource& source, const FamilyKeys& keys, const Manifest& m,
                     std::vector<PartialChunk>& chunks, unsigned workers) {
    std::atomic<std::size_t> next{0};
    std::mutex mutex;
    std::optional<Error> error;
    auto work = [&] {
        for (std::size_t i = next++; i < chunks.size(); i = next++) {
            PartialChunk& pc = chunks[i];
            std::uint32_t blocks = m.blocks_in_chunk(pc.entry.index);
            ByteRange range{0, chunk_header_size(blocks)};
            auto fail_with = [&](Error e) {
                std::lock_guard lock(mutex);
                if (!error)
                    error = std::move(e).context("chunk " + to_hex(pc.entry.id));
                next = chunks.size();
            };
            auto parts = source.get_ranges(chunk_path(pc.entry.id), {&range, 1});
            if (!parts) {
                fail_with(parts.error());
                return;
            }
            auto header = parse_chunk_header(parts->at(0), keys, &pc.entry.id);
            if (!header) {
                fail_with(header.error());
                return;
            }
            if (header->blocks.size() != blocks || header->object_size() != pc.entry.object_size) {
                fail_with(Error{Errc::corrupt, "header does not match the manifest"});
                return;
            }
            pc.remote = std::move(*header);
        }
    };
    {
        std::vector<std::jthread> threads;
        for (unsigned i = 0; i < std::max(1u, workers); ++i)
            threads.emplace_back(work);
    }
    if (error)
        return std::unexpected(*error);
    return {};
}

std::uint64_t data_bytes(const ChunkHeader& h) {
    std::uint64_t n = 0;
    for (const auto& b : h.blocks)
        n += b.codec == Codec::zero ? 0 : block_size;
    return n;
}

// Verifies a whole chunk object from removable media and stages it unchanged.
Status copy_from_media(const ChunkSeed& media, std::uint32_t object, Store& store,
                       const FamilyKeys& keys, RecordCodec& codec) {
    const ChunkHeader& h = media.header(object);
    Bytes bytes = HL_TRY(read_file(media.path(object), h.object_size()));
    Bytes scratch(h.blocks.size() * block_size);
    HL_TRY(open_chunk(keys, codec, h, bytes, scratch));
    crypto::secure_wipe(scratch);
    return store.stage_chunk(h.id, bytes);
}

void plan_blocks(std::vector<PartialChunk>& chunks, const Seeds& seeds, std::uint64_t& fetched) {
    std::unordered_map<BlockTag, BlockLocation, TagHash> first_fetch;
    for (std::uint32_t c = 0; c < chunks.size(); ++c) {
        PartialChunk& pc = chunks[c];
        pc.plan.resize(pc.remote.blocks.size());
        for (std::uint32_t b = 0; b < pc.remote.blocks.size(); ++b) {
            const BlockTag& tag = pc.remote.blocks[b].tag;
            BlockPlan& p = pc.plan[b];
            if (tag == zero_tag) {
                p.source = BlockSource::zero;
            } else if (const BlockLocation* where = seeds.index.find(tag)) {
                p = {BlockSource::seed, *where};
            } else if (auto it = first_fetch.find(tag); it != first_fetch.end()) {
                p = {BlockSource::duplicate, it->second};
            } else {
                p.source = BlockSource::fetch;
                first_fetch.emplace(tag, BlockLocation{0, c, b});
                ++fetched;
            }
        }
    }
}

struct WholeChunks {
    std::vector<PartialChunk> partial;            // chunks to build block by block
    std::vector<std::uint32_t> repeated_partials; // a partial chunk's ordinal per repeat
    std::uint64_t data_bytes = 0;                 // data in the chunks taken whole
};

// Takes the chunks the store holds, copies those found whole on media, and lists the rest.
// A chunk that occurs several times in the image is built and stored once.
Result<WholeChunks> take_whole_chunks(const Manifest& m, const Seeds& seeds, Store& store,
                                      const FamilyKeys& keys, ApplyCounters& counters) {
    WholeChunks out;
    RecordCodec codec;
    // Where each chunk ID was found: seed number, or partial ordinal + seed count.
    std::unordered_map<ChunkId, std::pair<std::size_t, std::uint64_t>, TagHash> seen;
    const std::size_t partial_base = seeds.extra.size() + 1;
    for (const auto& entry : m.chunks) {
        if (auto it = seen.find(entry.id); it != seen.end()) {
            auto [origin, bytes] = it->second;
            if (origin >= partial_base) {
                out.repeated_partials.push_back(static_cast<std::uint32_t>(origin - partial_base));
                continue;
            }
            counters.from_seed[origin] += bytes;
            out.data_bytes += bytes;
            continue;
        }
        std::optional<std::pair<std::size_t, std::uint64_t>> found;
        if (auto obj = seeds.store.find(entry.id))
            found = {0, data_bytes(seeds.store.header(*obj))};
        for (std::size_t s = 0; s < seeds.extra.size() && !found; ++s) {
            const auto* media = std::get_if<ChunkSeed>(&seeds.extra[s]);
            auto obj = media ? media->find(entry.id) : std::nullopt;
            if (obj && copy_from_media(*media, *obj, store, keys, codec))
                found = {s + 1, data_bytes(media->header(*obj))};
        }
        if (!found) {
            seen.emplace(entry.id, std::make_pair(partial_base + out.partial.size(), 0));
            out.partial.push_back({entry, {}, {}, std::nullopt});
            continue;
        }
        seen.emplace(entry.id, *found);
        counters.from_seed[found->first] += found->second;
        out.data_bytes += found->second;
    }
    return out;
}

// Uses a delta where the store holds the chunk it starts from and it is smaller than the
// records the plan would fetch for that chunk.
void choose_deltas(std::vector<PartialChunk>& partial, const Manifest& m, const Seeds& seeds) {
    std::unordered_map<std::uint32_t, const DeltaEntry*> by_index;
    for (const auto& d : m.deltas)
        by_index.emplace(d.index, &d);
    for (PartialChunk& pc : partial) {
        auto it = by_index.find(pc.entry.index);
        if (it == by_index.end() || !seeds.store.find(it->second->from))
            continue;
        std::uint64_t cost = 0;
        for (std::size_t b = 0; b < pc.plan.size(); ++b)
            if (pc.plan[b].source == BlockSource::fetch)
                cost += pc.remote.blocks[b].record_size;
        if (cost > it->second->object_size)
            pc.delta = *it->second;
    }
}

struct Fetched {
    Manifest manifest;
    Bytes bytes;
};

Result<std::optional<Fetched>> fetch_manifest(ObjectSource& source, const SyncOptions& o,
                                              const KeySet& keys,
                                              std::optional<std::uint64_t> current) {
    auto latest_text = HL_TRY_CTX(source.get(latest_path(o.image), 64),
                                  fmt::format("image '{}' at {}", o.image, source.describe()));
    std::string text(latest_text.begin(), latest_text.end());
    std::uint64_t latest = HL_TRY_CTX(parse_version_pointer(text), "latest version pointer");
    if (current && latest == *current)
        return std::optional<Fetched>{};
    Fetched f;
    f.bytes = HL_TRY(source.get(manifest_path(o.image, latest), max_manifest_size));
    f.manifest = HL_TRY_CTX(parse_manifest(f.bytes, keys.signing_public),
                            fmt::format("manifest of '{}' v{}", o.image, latest));
    if (f.manifest.version != latest)
        return fail(Errc::crypto,
                    fmt::format("v{}.manifest holds version {}", latest, f.manifest.version));
    ManifestExpectations expect{o.image, keys.family.family_id(), current.value_or(0),
                                o.now ? o.now : std::time(nullptr)};
    HL_TRY(check_manifest(f.manifest, expect));
    return std::optional<Fetched>(std::move(f));
}

} // namespace

Result<SyncResult> sync_image(const SyncOptions& o, const KeySet& keys) {
    auto started = std::chrono::steady_clock::now();
    if (!valid_image_name(o.image))
        return fail(Errc::invalid_argument, fmt::format("'{}' is not a valid image name", o.image));
    auto source = HL_TRY(open_source(o.from, o.source));
    Store store = HL_TRY(Store::open(o.store, o.checkpoint_bytes));
    SyncResult result;
    result.image = o.image;
    result.previous_version = HL_TRY(store.current_version(o.image));

    auto fetched = HL_TRY(fetch_manifest(*source, o, keys, result.previous_version));
    auto finish = [&] {
        auto stats = source->stats();
        result.bytes_fetched = stats.bytes;
        result.requests = stats.requests;
        result.seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    };
    if (!fetched) {
        result.version = *result.previous_version;
        finish();
        return result;
    }
    const Manifest& m = fetched->manifest;
    result.version = m.version;
    result.virtual_size = m.virtual_size;
    result.manifest_bytes = fetched->bytes.size();
    const unsigned workers = std::max(1u, o.workers);

    // Seeds: the store first (current versions, and chunks left by an interrupted sync).
    Seeds seeds;
    auto store_files = verified_chunk_files(store.dir(), keys, Versions::current, o.log);
    for (const auto& c : m.chunks)
        if (store.has_chunk(c.id))
            store_files.emplace_back(c.id, store.chunk_file(c.id));
    seeds.store = ChunkSeed::load(std::move(store_files), keys.family);
    seeds.names.push_back("store");
    for (const auto& path : o.seeds) {
        seeds.names.push_back(path.string());
        if (is_media_folder(path)) {
            seeds.extra.emplace_back(ChunkSeed::load(
                verified_chunk_files(path, keys, Versions::all, o.log), keys.family));
            continue;
        }
        auto host =
            HL_TRY_CTX(HostFolderSeed::index(path, store.seeds_dir(), keys.family, o.progress),
                       "seed " + path.string());
        if (o.log)
            o.log->info("seed {}: {} files, {} hashed anew", path.string(), host.files(),
                        host.files_hashed());
        seeds.extra.emplace_back(std::move(host));
    }
    ApplyCounters counters(seeds.names.size());

    WholeChunks whole = HL_TRY(take_whole_chunks(m, seeds, store, keys.family, counters));
    std::vector<PartialChunk>& partial = whole.partial;
    HL_TRY(fetch_headers(*source, keys.family, m, partial, workers));
    std::uint64_t data = whole.data_bytes;
    for (const auto& pc : partial)
        data += data_bytes(pc.remote);
    for (std::uint32_t ordinal : whole.repeated_partials) {
        counters.duplicates += data_bytes(partial[ordinal].remote);
        data += data_bytes(partial[ordinal].remote);
    }
    seeds.store.add_to(seeds.index, 0);
    for (std::uint32_t s = 0; s < seeds.extra.size(); ++s)
        std::visit([&](const auto& seed) { seed.add_to(seeds.index, s + 1); }, seeds.extra[s]);
    seeds.index.finish();
    plan_blocks(partial, seeds, result.blocks_fetched);
    choose_deltas(partial, m, seeds);

    ApplyContext ctx(keys, store, *source, seeds, partial, counters, o.progress);
    HL_TRY_CTX(apply_partial_chunks(ctx, workers),
               fmt::format("sync '{}' v{}", o.image, m.version));
    HL_TRY(store.commit(o.image, m.version, fetched->bytes));
    if (auto pruned = store.prune(o.image, o.keep_versions, keys.signing_public); !pruned && o.log)
        o.log->warn("could not prune old versions: {}", pruned.error().message);

    result.changed = true;
    result.seed_mismatches = counters.mismatches;
    result.deltas_used = counters.deltas_used;
    result.delta_fallbacks = counters.delta_fallbacks;
    result.from_seeds.push_back({"store", counters.from_seed[0]});
    result.from_seeds.push_back({"zero", m.virtual_size - data});
    result.from_seeds.push_back({"duplicates", counters.duplicates});
    for (std::size_t s = 1; s < seeds.names.size(); ++s)
        result.from_seeds.push_back({seeds.names[s], counters.from_seed[s]});
    finish();
    return result;
}

} // namespace heirloom::trim
