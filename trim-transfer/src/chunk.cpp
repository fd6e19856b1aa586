#include "heirloom/trim/chunk.hpp"

#include "heirloom/common/file.hpp"

#include <cstring>
#include <fmt/format.h>
#include <zstd.h>

namespace heirloom::trim {

namespace {
constexpr std::array<std::uint8_t, 8> chunk_magic{'H', 'L', 'M', 'C', 'H', 'N', 'K', '1'};
constexpr std::uint16_t chunk_format = 1;
constexpr int zstd_level = 3;

// Associated data of a record: binds it to its chunk, position, codec and content tag.
std::array<std::uint8_t, 57> record_aad(const ChunkId& id, std::uint32_t index, Codec codec,
                                        const BlockTag& tag) {
    std::array<std::uint8_t, 57> aad{};
    std::memcpy(aad.data(), "HLM1", 4);
    std::memcpy(aad.data() + 4, id.data(), id.size());
    for (int i = 0; i < 4; ++i)
        aad[36 + i] = static_cast<std::uint8_t>(index >> (8 * i));
    aad[40] = static_cast<std::uint8_t>(codec);
    std::memcpy(aad.data() + 41, tag.data(), tag.size());
    return aad;
}

Status check_entry(const BlockEntry& e, std::size_t index) {
    auto bad = [&](std::string_view what) {
        return fail(Errc::corrupt, fmt::format("chunk header: block {}: {}", index, what));
    };
    switch (e.codec) {
    case Codec::zero:
        if (e.record_size != 0 || e.tag != zero_tag)
            return bad("zero block with a record or a tag");
        return {};
    case Codec::raw:
        if (e.record_size != max_record_size)
            return bad(
                fmt::format("raw record of {} bytes (must be {})", e.record_size, max_record_size));
        break;
    case Codec::zstd:
        if (e.record_size <= record_overhead || e.record_size >= max_record_size)
            return bad(fmt::format("compressed record of {} bytes is out of range", e.record_size));
        break;
    default:
        return bad(fmt::format("unknown codec {}", static_cast<int>(e.codec)));
    }
    if (e.tag == zero_tag)
        return bad("data block with the zero tag");
    return {};
}
} // namespace

std::uint64_t ChunkHeader::object_size() const {
    std::uint64_t size = header_size();
    for (const auto& b : blocks)
        size += b.record_size;
    return size;
}

Result<ChunkHeader> parse_chunk_header(ByteView bytes, const FamilyKeys& keys,
                                       const ChunkId* expected) {
    Reader r(bytes);
    auto magic = HL_TRY_CTX(r.fixed<8>("magic"), "chunk header");
    if (magic != chunk_magic)
        return fail(Errc::corrupt, "chunk header: not a Heirloom chunk (bad magic)");
    auto format = HL_TRY_CTX(r.u16("format"), "chunk header");
    if (format != chunk_format)
        return fail(Errc::unsupported, fmt::format("chunk header: format {} is not supported "
                                                   "(this build reads format {})",
                                                   format, chunk_format));
    auto count = HL_TRY_CTX(r.u16("block count"), "chunk header");
    if (count == 0 || count > chunk_blocks)
        return fail(Errc::corrupt,
                    fmt::format("chunk header: block count {} is out of range", count));
    auto reserved = HL_TRY_CTX(r.u32("reserved"), "chunk header");
    if (reserved != 0)
        return fail(Errc::corrupt, "chunk header: reserved field is not zero");
    auto id = HL_TRY_CTX(r.fixed<32>("chunk id"), "chunk header");
    if (expected && id != *expected)
        return fail(Errc::corrupt, "chunk header: object holds chunk " + to_hex(id) +
                                       ", expected " + to_hex(*expected));
    std::vector<BlockEntry> entries(count);
    std::vector<BlockTag> tags(count);
    for (std::size_t i = 0; i < count; ++i) {
        auto& e = entries[i];
        e.codec = static_cast<Codec>(HL_TRY_CTX(r.u8("codec"), "chunk header"));
        e.record_size = HL_TRY_CTX(r.u16("record size"), "chunk header");
        e.tag = HL_TRY_CTX(r.fixed<16>("block tag"), "chunk header");
        HL_TRY(check_entry(e, i));
        tags[i] = e.tag;
    }
    if (keys.chunk_id(tags) != id)
        return fail(Errc::crypto, "chunk header: block table does not match chunk id " +
                                      to_hex(id) + " (tampered, or wrong image keys)");
    return header_from_entries(id, std::move(entries));
}

struct RecordCodec::State {
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    ZSTD_DCtx* dctx = ZSTD_createDCtx();
    Bytes scratch = Bytes(ZSTD_compressBound(block_size));
    Bytes plain = Bytes(block_size);
    crypto::AesGcm aes;
    ~State() {
        ZSTD_freeCCtx(cctx);
        ZSTD_freeDCtx(dctx);
    }
};

RecordCodec::RecordCodec() : state_(new State) {}
RecordCodec::~RecordCodec() {
    delete state_;
}

Result<Codec> RecordCodec::seal(const FamilyKeys& keys, const crypto::Key& chunk_key,
                                const ChunkId& id, std::uint32_t index, const BlockTag& tag,
                                ByteView block, Compress compress, Bytes& out) {
    if (block.size() != block_size)
        return fail(Errc::invalid_argument, "a block must be 4096 bytes");
    ByteView payload = block;
    Codec codec = Codec::raw;
    crypto::Digest digest{};
    ByteView digest_view = tag;
    if (compress == Compress::yes) {
        std::size_t n =
            ZSTD_compressCCtx(state_->cctx, state_->scratch.data(), state_->scratch.size(),
                              block.data(), block.size(), zstd_level);
        if (!ZSTD_isError(n) && n < block_size) {
            payload = ByteView(state_->scratch.data(), n);
            codec = Codec::zstd;
            // Compressed bytes may differ between zstd versions for the same block, so the
            // nonce covers the exact payload, not just the block's tag.
            digest = crypto::sha256(payload);
            digest_view = digest;
        }
    }
    crypto::Nonce nonce =
        keys.record_nonce(id, index, static_cast<std::uint8_t>(codec), digest_view);
    auto aad = record_aad(id, index, codec, tag);
    std::size_t start = out.size();
    out.resize(start + record_overhead + payload.size());
    std::memcpy(out.data() + start, nonce.data(), nonce.size());
    MutableByteView ct(out.data() + start + nonce.size(), payload.size());
    auto gcm = HL_TRY(state_->aes.seal(chunk_key, nonce, aad, payload, ct));
    std::memcpy(ct.data() + ct.size(), gcm.data(), gcm.size());
    return codec;
}

Status RecordCodec::open(const FamilyKeys& keys, const crypto::Key& chunk_key, const ChunkId& id,
                         std::uint32_t index, const BlockEntry& entry, ByteView record,
                         MutableByteView out) {
    if (out.size() != block_size)
        return fail(Errc::invalid_argument, "a block must be 4096 bytes");
    if (entry.codec == Codec::zero) {
        std::memset(out.data(), 0, out.size());
        return {};
    }
    if (record.size() != entry.record_size || record.size() <= record_overhead)
        return fail(Errc::corrupt, fmt::format("block {}: record is {} bytes, header says {}",
                                               index, record.size(), entry.record_size));
    crypto::Nonce nonce;
    std::memcpy(nonce.data(), record.data(), nonce.size());
    crypto::GcmTag gcm;
    std::memcpy(gcm.data(), record.data() + record.size() - gcm.size(), gcm.size());
    ByteView ct = record.subspan(nonce.size(), record.size() - record_overhead);
    auto aad = record_aad(id, index, entry.codec, entry.tag);
    Bytes& plain = state_->plain;
    if (entry.codec == Codec::raw) {
        HL_TRY_CTX(state_->aes.open(chunk_key, nonce, aad, ct, gcm, MutableByteView(plain)),
                   fmt::format("block {}", index));
    } else {
        MutableByteView compressed(state_->scratch.data(), ct.size());
        HL_TRY_CTX(state_->aes.open(chunk_key, nonce, aad, ct, gcm, compressed),
                   fmt::format("block {}", index));
        std::size_t n = ZSTD_decompressDCtx(state_->dctx, plain.data(), plain.size(),
                                            compressed.data(), compressed.size());
        if (ZSTD_isError(n) || n != block_size)
            return fail(Errc::corrupt, fmt::format("block {}: compressed data is damaged", index));
    }
    if (keys.block_tag(plain) != entry.tag)
        return fail(Errc::crypto, fmt::format("block {}: content does not match its tag", index));
    std::memcpy(out.data(), plain.data(), block_size);
    return {};
}

Bytes assemble_chunk(const ChunkId& id, std::span<const BlockEntry> entries,
                     std::span<const ByteView> records) {
    Writer w;
    w.raw(chunk_magic);
    w.u16(chunk_format);
    w.u16(static_cast<std::uint16_t>(entries.size()));
    w.u32(0);
    w.raw(id);
    std::size_t total = 0;
    for (const auto& e : entries) {
        w.u8(static_cast<std::uint8_t>(e.codec));
        w.u16(e.record_size);
        w.raw(e.tag);
        total += e.record_size;
    }
    w.bytes().reserve(w.bytes().size() + total);
    for (ByteView rec : records)
        w.raw(rec);
    return w.take();
}

void tag_blocks(const FamilyKeys& keys, ByteView blocks, std::span<BlockTag> tags) {
    for (std::size_t i = 0; i < tags.size(); ++i) {
        ByteView block = blocks.subspan(i * block_size, block_size);
        tags[i] = all_zero(block) ? zero_tag : keys.block_tag(block);
    }
}

Result<SealedChunk> seal_chunk(const FamilyKeys& keys, RecordCodec& codec,
                               std::span<const BlockTag> tags, ByteView blocks,
                               RecordCodec::Compress compress) {
    if (tags.empty() || tags.size() > chunk_blocks || blocks.size() != tags.size() * block_size)
        return fail(Errc::invalid_argument, "seal_chunk: bad block count");
    SealedChunk sealed;
    sealed.id = keys.chunk_id(tags);
    crypto::Key key = keys.chunk_key(sealed.id);
    Bytes records;
    records.reserve(tags.size() * max_record_size);
    std::vector<std::size_t> starts;
    sealed.entries.resize(tags.size());
    for (std::uint32_t i = 0; i < tags.size(); ++i) {
        std::size_t start = records.size();
        starts.push_back(start);
        if (tags[i] == zero_tag)
            continue;
        Codec c = HL_TRY(codec.seal(keys, key, sealed.id, i, tags[i],
                                    blocks.subspan(i * block_size, block_size), compress, records));
        sealed.entries[i] = {c, static_cast<std::uint16_t>(records.size() - start), tags[i]};
    }
    crypto::secure_wipe(key);
    std::vector<ByteView> views;
    for (std::size_t i = 0; i < tags.size(); ++i)
        views.emplace_back(records.data() + starts[i], sealed.entries[i].record_size);
    sealed.object = assemble_chunk(sealed.id, sealed.entries, views);
    return sealed;
}

Status open_chunk(const FamilyKeys& keys, RecordCodec& codec, const ChunkHeader& header,
                  ByteView object, MutableByteView out) {
    if (out.size() != header.blocks.size() * block_size)
        return fail(Errc::invalid_argument, "open_chunk: output has the wrong size");
    if (object.size() != header.object_size())
        return fail(Errc::corrupt,
                    fmt::format("chunk {}: object is {} bytes, header says {}", to_hex(header.id),
                                object.size(), header.object_size()));
    crypto::Key key = keys.chunk_key(header.id);
    for (std::uint32_t i = 0; i < header.blocks.size(); ++i) {
        const auto& e = header.blocks[i];
        auto ok = codec.open(keys, key, header.id, i, e,
                             object.subspan(header.record_offsets[i], e.record_size),
                             out.subspan(i * block_size, block_size));
        if (!ok) {
            crypto::secure_wipe(key);
            return std::unexpected(ok.error().context("chunk " + to_hex(header.id)));
        }
    }
    crypto::secure_wipe(key);
    return {};
}

ChunkHeader header_from_entries(const ChunkId& id, std::vector<BlockEntry> entries) {
    ChunkHeader header;
    header.id = id;
    header.blocks = std::move(entries);
    header.record_offsets.resize(header.blocks.size());
    std::uint32_t offset = header.header_size();
    for (std::size_t i = 0; i < header.blocks.size(); ++i) {
        header.record_offsets[i] = offset;
        offset += header.blocks[i].record_size;
    }
    return header;
}

Result<ChunkHeader> read_chunk_header_file(const fs::path& path, const FamilyKeys& keys,
                                           const ChunkId& id) {
    auto fd = HL_TRY(open_read(path));
    std::uint64_t size = HL_TRY(file_size(fd.get(), path));
    Bytes head(std::min<std::uint64_t>(chunk_header_size(chunk_blocks), size));
    HL_TRY(pread_exact(fd.get(), head, 0, path));
    auto header = HL_TRY_CTX(parse_chunk_header(head, keys, &id), path.string());
    if (header.object_size() != size)
        return fail(Errc::corrupt, fmt::format("{}: object is {} bytes, its header says {} "
                                               "(truncated or torn)",
                                               path.string(), size, header.object_size()));
    return header;
}

Status read_chunk_plaintext(const fs::path& path, const ChunkId& id, const FamilyKeys& keys,
                            RecordCodec& codec, Bytes& out, ChunkHeader* header_out) {
    auto header = HL_TRY(read_chunk_header_file(path, keys, id));
    Bytes object = HL_TRY(read_file(path, header.object_size()));
    out.resize(header.blocks.size() * block_size);
    HL_TRY(open_chunk(keys, codec, header, object, out));
    if (header_out)
        *header_out = std::move(header);
    return {};
}

Status read_block_from_object(const fs::path& path, const ChunkHeader& header, std::uint32_t block,
                              const FamilyKeys& keys, RecordCodec& codec, MutableByteView out) {
    auto fd = HL_TRY(open_read(path));
    return read_block_from_fd(fd.get(), path, header, block, keys, codec, out);
}

Status read_block_from_fd(int fd, const fs::path& path, const ChunkHeader& header,
                          std::uint32_t block, const FamilyKeys& keys, RecordCodec& codec,
                          MutableByteView out) {
    if (block >= header.blocks.size())
        return fail(Errc::invalid_argument, "block number out of range");
    const BlockEntry& entry = header.blocks[block];
    if (entry.codec == Codec::zero) {
        std::memset(out.data(), 0, out.size());
        return {};
    }
    std::array<std::uint8_t, max_record_size> record;
    MutableByteView rec(record.data(), entry.record_size);
    HL_TRY(pread_exact(fd, rec, header.record_offsets[block], path));
    crypto::Key key = keys.chunk_key(header.id);
    auto ok = codec.open(keys, key, header.id, block, entry, rec, out);
    crypto::secure_wipe(key);
    if (!ok)
        return std::unexpected(ok.error().context(path.string()));
    return {};
}

} // namespace heirloom::trim
