#include "heirloom/trim/image_reader.hpp"

#include "heirloom/common/file.hpp"
#include "heirloom/trim/format.hpp"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <list>
#include <mutex>
#include <unordered_map>

namespace heirloom::trim {

namespace {

// Chunks kept open with their verified headers: enough for the working set of a booting guest
// (a header is ~2.5 KiB), few enough to keep file descriptors modest.
constexpr std::size_t max_open_chunks = 256;

struct OpenChunk {
    ChunkHeader header;
    Fd fd;
    crypto::Key key{};
    ~OpenChunk() { crypto::secure_wipe(key); }
};

} // namespace

struct ImageReader::Impl {
    fs::path dir;
    Manifest manifest;
    FamilyKeys keys;
    std::vector<std::int32_t> entry_of_chunk; // chunk index → manifest entry, -1: all zero

    std::mutex mutex;
    std::list<std::uint32_t> lru; // entry indexes, most recent first
    std::unordered_map<std::uint32_t,
                       std::pair<std::shared_ptr<OpenChunk>, std::list<std::uint32_t>::iterator>>
        open;

    Impl(fs::path d, Manifest m, const FamilyKeys& k)
        : dir(std::move(d)), manifest(std::move(m)), keys(k) {}

    Result<std::shared_ptr<OpenChunk>> chunk(std::uint32_t entry_index) {
        {
            std::lock_guard lock(mutex);
            auto it = open.find(entry_index);
            if (it != open.end()) {
                lru.splice(lru.begin(), lru, it->second.second);
                return it->second.first;
            }
        }
        const ManifestEntry& entry = manifest.chunks[entry_index];
        fs::path path = dir / chunk_path(entry.id);
        auto c = std::make_shared<OpenChunk>();
        c->header = HL_TRY(read_chunk_header_file(path, keys, entry.id));
        if (c->header.blocks.size() != manifest.blocks_in_chunk(entry.index))
            return fail(Errc::corrupt, fmt::format("{}: holds {} blocks, the manifest says {}",
                                                   path.string(), c->header.blocks.size(),
                                                   manifest.blocks_in_chunk(entry.index)));
        c->fd = HL_TRY(open_read(path));
        c->key = keys.chunk_key(entry.id);
        std::lock_guard lock(mutex);
        auto it = open.find(entry_index);
        if (it != open.end()) // another thread opened it meanwhile
            return it->second.first;
        lru.push_front(entry_index);
        open.emplace(entry_index, std::make_pair(c, lru.begin()));
        while (open.size() > max_open_chunks) {
            open.erase(lru.back());
            lru.pop_back();
        }
        return c;
    }

    // Blocks [first, first + count) of one chunk, decrypted into out (count × 4 KiB).
    Status read_blocks(std::uint32_t chunk_index, std::uint32_t first, std::uint32_t count,
                       MutableByteView out) {
        std::int32_t e = entry_of_chunk[chunk_index];
        if (e < 0) {
            std::memset(out.data(), 0, out.size());
            return {};
        }
        auto c = HL_TRY(chunk(static_cast<std::uint32_t>(e)));
        const ChunkHeader& h = c->header;
        // One read for the records of the whole range: they are contiguous in the object.
        std::uint64_t begin = h.record_offsets[first];
        std::uint64_t end =
            h.record_offsets[first + count - 1] + h.blocks[first + count - 1].record_size;
        thread_local Bytes records;
        thread_local RecordCodec codec;
        records.resize(end - begin);
        fs::path path = dir / chunk_path(h.id);
        HL_TRY(pread_exact(c->fd.get(), records, begin, path));
        for (std::uint32_t b = first; b < first + count; ++b) {
            const BlockEntry& entry = h.blocks[b];
            MutableByteView block = out.subspan(std::size_t{b - first} * block_size, block_size);
            if (entry.codec == Codec::zero) {
                std::memset(block.data(), 0, block.size());
                continue;
            }
            ByteView record(records.data() + (h.record_offsets[b] - begin), entry.record_size);
            auto ok = codec.open(keys, c->key, h.id, b, entry, record, block);
            if (!ok)
                return std::unexpected(ok.error().context(
                    fmt::format("{} (block {} of chunk {})", path.string(), b, chunk_index)));
        }
        return {};
    }
};

ImageReader::ImageReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ImageReader::ImageReader(ImageReader&&) noexcept = default;
ImageReader& ImageReader::operator=(ImageReader&&) noexcept = default;
ImageReader::~ImageReader() = default;

Result<ImageReader> ImageReader::open(const fs::path& store_dir, Manifest manifest,
                                      const FamilyKeys& keys) {
    if (manifest.family != keys.family_id())
        return fail(Errc::invalid_argument,
                    fmt::format("image '{}' belongs to another key family", manifest.image));
    auto impl = std::make_unique<Impl>(store_dir, std::move(manifest), keys);
    impl->entry_of_chunk.assign(impl->manifest.chunk_count(), -1);
    const auto& chunks = impl->manifest.chunks;
    for (std::size_t i = 0; i < chunks.size(); ++i)
        impl->entry_of_chunk.at(chunks[i].index) = static_cast<std::int32_t>(i);
    return ImageReader(std::move(impl));
}

std::uint64_t ImageReader::size() const {
    return impl_->manifest.virtual_size;
}
std::uint64_t ImageReader::version() const {
    return impl_->manifest.version;
}

Status ImageReader::read(std::uint64_t offset, MutableByteView out) {
    std::uint64_t size = impl_->manifest.virtual_size;
    if (offset > size || out.size() > size - offset)
        return fail(Errc::invalid_argument,
                    fmt::format("read of {} bytes at {} is past the end of the {}-byte image",
                                out.size(), offset, size));
    // Whole blocks are decrypted straight into out; a partial block at either end goes
    // through a scratch block.
    thread_local Bytes scratch;
    std::size_t done = 0;
    while (done < out.size()) {
        std::uint64_t pos = offset + done;
        auto chunk_index = static_cast<std::uint32_t>(pos / chunk_bytes);
        auto first = static_cast<std::uint32_t>(pos % chunk_bytes / block_size);
        std::uint32_t blocks = impl_->manifest.blocks_in_chunk(chunk_index);
        std::uint64_t in_block = pos % block_size;
        std::size_t want = out.size() - done;
        if (in_block == 0 && want >= block_size) {
            auto count = static_cast<std::uint32_t>(
                std::min<std::uint64_t>(want / block_size, blocks - first));
            HL_TRY(impl_->read_blocks(chunk_index, first, count,
                                      out.subspan(done, std::size_t{count} * block_size)));
            done += std::size_t{count} * block_size;
            continue;
        }
        scratch.resize(block_size);
        HL_TRY(impl_->read_blocks(chunk_index, first, 1, scratch));
        std::size_t n = std::min<std::size_t>(want, block_size - in_block);
        std::memcpy(out.data() + done, scratch.data() + in_block, n);
        done += n;
    }
    crypto::secure_wipe(scratch);
    return {};
}

} // namespace heirloom::trim
