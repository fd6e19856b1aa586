// Applying a sync plan: each partial chunk is assembled from seed blocks (verified against
// their tags), fetched records (authenticated and decrypted before use) and duplicates of
// blocks fetched elsewhere in the image, then sealed and staged in the store.

#include "heirloom/trim/delta.hpp"
#include "sync_internal.hpp"

#include <cstring>
#include <fmt/format.h>
#include <thread>

namespace heirloom::trim::detail {

namespace {

// One worker's reusable state.
struct Worker {
    RecordCodec codec;
    OpenFiles files;
};

Status read_seed_block(ApplyContext& ctx, Worker& w, const BlockLocation& where,
                       const BlockTag& tag, MutableByteView out) {
    const FamilyKeys& keys = ctx.keys.family;
    if (where.seed == 0)
        return ctx.seeds.store.read_block(keys, w.codec, w.files, where.object, where.block, out);
    const ExtraSeed& seed = ctx.seeds.extra.at(where.seed - 1);
    if (const auto* chunks = std::get_if<ChunkSeed>(&seed))
        return chunks->read_block(keys, w.codec, w.files, where.object, where.block, out);
    return std::get<HostFolderSeed>(seed).read_block(keys, w.files, where.object, where.block, tag,
                                                     out);
}

// Rebuilds a chunk's plaintext from the stored chunk its delta starts from, and checks every
// block against the tags in the chunk's verified header.
Result<Bytes> rebuild_from_delta(ApplyContext& ctx, Worker& w, const PartialChunk& pc) {
    const FamilyKeys& keys = ctx.keys.family;
    const DeltaEntry& d = *pc.delta;
    auto obj = ctx.seeds.store.find(d.from);
    if (!obj)
        return fail(Errc::not_found, "the delta's base chunk is not in the store");
    Bytes base_plain;
    HL_TRY(read_chunk_plaintext(ctx.seeds.store.path(*obj), d.from, keys, w.codec, base_plain));
    Bytes sealed = HL_TRY(ctx.source.get(delta_path(d.from, pc.entry.id), d.object_size));
    Bytes delta = HL_TRY(open_delta(keys, d.from, pc.entry.id, sealed));
    Bytes plain = HL_TRY(apply_delta(base_plain, delta, pc.remote.blocks.size() * block_size));
    crypto::secure_wipe(base_plain);
    for (std::size_t i = 0; i < pc.remote.blocks.size(); ++i) {
        ByteView block(plain.data() + i * block_size, block_size);
        const BlockTag& tag = pc.remote.blocks[i].tag;
        bool ok = tag == zero_tag ? all_zero(block) : keys.block_tag(block) == tag;
        if (!ok) {
            crypto::secure_wipe(plain);
            return fail(Errc::crypto, fmt::format("block {} rebuilt from the delta does not match "
                                                  "its tag",
                                                  i));
        }
    }
    return plain;
}

// Waits until the chunk with this ordinal is staged and returns our header of it.
Result<const ChunkHeader*> wait_for_chunk(ApplyContext& ctx, std::uint32_t ordinal) {
    std::unique_lock lock(ctx.mutex);
    ctx.cv.wait(lock, [&] { return ctx.stored[ordinal] != nullptr || ctx.failed.load(); });
    if (!ctx.stored[ordinal])
        return fail(Errc::cancelled, "sync stopped");
    return ctx.stored[ordinal].get();
}

Status apply_chunk(ApplyContext& ctx, Worker& w, std::uint32_t ordinal) {
    RecordCodec& codec = w.codec;
    const PartialChunk& pc = ctx.chunks[ordinal];
    const ChunkId& id = pc.entry.id;
    const FamilyKeys& keys = ctx.keys.family;
    const std::size_t n = pc.remote.blocks.size();
    Bytes plain(n * block_size);
    auto block_of = [&](std::size_t i) {
        return MutableByteView(plain.data() + i * block_size, block_size);
    };
    std::vector<Bytes> records(n);
    std::vector<BlockEntry> entries(n);
    std::vector<bool> reseal(n, false);
    std::vector<std::uint32_t> fetch;

    for (std::uint32_t i = 0; i < n; ++i) {
        const BlockPlan& p = pc.plan[i];
        if (p.source == BlockSource::seed) {
            if (read_seed_block(ctx, w, p.where, pc.remote.blocks[i].tag, block_of(i))) {
                reseal[i] = true;
                ctx.counters.from_seed[p.where.seed] += block_size;
                continue;
            }
            ++ctx.counters.mismatches; // changed or damaged since indexed: fetch instead
            fetch.push_back(i);
        } else if (p.source == BlockSource::fetch) {
            fetch.push_back(i);
        }
    }

    if (pc.delta && !fetch.empty()) {
        auto rebuilt = rebuild_from_delta(ctx, w, pc);
        if (rebuilt) {
            for (std::uint32_t i : fetch) {
                std::memcpy(block_of(i).data(), rebuilt->data() + i * block_size, block_size);
                reseal[i] = true;
            }
            crypto::secure_wipe(*rebuilt);
            fetch.clear();
            ++ctx.counters.deltas_used;
        } else {
            ++ctx.counters.delta_fallbacks; // fetch the records instead
        }
    }

    if (!fetch.empty()) {
        std::vector<ByteRange> ranges;
        for (std::uint32_t i : fetch)
            ranges.push_back({pc.remote.record_offsets[i], pc.remote.blocks[i].record_size});
        auto parts = HL_TRY(ctx.source.get_ranges(chunk_path(id), ranges));
        if (parts.size() != fetch.size())
            return fail(Errc::network, "the source answered with the wrong number of ranges");
        crypto::Key key = keys.chunk_key(id);
        for (std::size_t k = 0; k < fetch.size(); ++k) {
            std::uint32_t i = fetch[k];
            auto ok = codec.open(keys, key, id, i, pc.remote.blocks[i], parts[k], block_of(i));
            if (!ok) {
                crypto::secure_wipe(key);
                return std::unexpected(ok.error());
            }
            records[i] = std::move(parts[k]);
            entries[i] = pc.remote.blocks[i];
        }
        crypto::secure_wipe(key);
    }

    for (std::uint32_t i = 0; i < n; ++i) {
        const BlockPlan& p = pc.plan[i];
        if (p.source != BlockSource::duplicate)
            continue;
        if (p.where.object == ordinal) {
            std::memcpy(block_of(i).data(), block_of(p.where.block).data(), block_size);
        } else {
            const ChunkHeader* other = HL_TRY(wait_for_chunk(ctx, p.where.object));
            HL_TRY(read_block_from_object(ctx.store.readable_chunk_file(other->id), *other,
                                          p.where.block, keys, codec, block_of(i)));
        }
        reseal[i] = true;
        ctx.counters.duplicates += block_size;
    }

    crypto::Key key = keys.chunk_key(id);
    for (std::uint32_t i = 0; i < n; ++i) {
        if (!reseal[i])
            continue;
        // Blocks from seeds are sealed uncompressed: applying stays at AES speed.
        auto codec_used = codec.seal(keys, key, id, i, pc.remote.blocks[i].tag, block_of(i),
                                     RecordCodec::Compress::no, records[i]);
        if (!codec_used) {
            crypto::secure_wipe(key);
            return std::unexpected(codec_used.error());
        }
        entries[i] = {*codec_used, static_cast<std::uint16_t>(records[i].size()),
                      pc.remote.blocks[i].tag};
    }
    crypto::secure_wipe(key);
    crypto::secure_wipe(plain);

    std::vector<ByteView> views(records.begin(), records.end());
    Bytes object = assemble_chunk(id, entries, views);
    HL_TRY(ctx.store.stage_chunk(id, object));
    {
        std::lock_guard lock(ctx.mutex);
        ctx.stored[ordinal] =
            std::make_unique<ChunkHeader>(header_from_entries(id, std::move(entries)));
    }
    ctx.cv.notify_all();
    return {};
}

void worker(ApplyContext& ctx, std::atomic<std::uint32_t>& next) {
    Worker w;
    while (!ctx.failed) {
        std::uint32_t ordinal = next++;
        if (ordinal >= ctx.chunks.size())
            return;
        auto ok = apply_chunk(ctx, w, ordinal);
        if (!ok) {
            {
                std::lock_guard lock(ctx.mutex);
                if (!ctx.error || ctx.error->code == Errc::cancelled)
                    ctx.error = ok.error().context("chunk " + to_hex(ctx.chunks[ordinal].entry.id));
                ctx.failed = true;
            }
            ctx.cv.notify_all();
            return;
        }
        std::uint64_t done = ++ctx.counters.chunks_done;
        if (ctx.progress)
            ctx.progress->update("sync", done, ctx.progress_total);
    }
}

} // namespace

Status apply_partial_chunks(ApplyContext& ctx, unsigned workers) {
    ctx.stored.resize(ctx.chunks.size());
    std::atomic<std::uint32_t> next{0};
    {
        std::vector<std::jthread> threads;
        for (unsigned i = 0; i < std::max(1u, workers); ++i)
            threads.emplace_back([&] { worker(ctx, next); });
    }
    if (ctx.error)
        return std::unexpected(*ctx.error);
    return {};
}

} // namespace heirloom::trim::detail
