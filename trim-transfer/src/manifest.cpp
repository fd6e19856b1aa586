#include "heirloom/trim/manifest.hpp"

#include "heirloom/trim/chunk.hpp"

#include <fmt/format.h>

namespace heirloom::trim {

namespace {
constexpr std::array<std::uint8_t, 8> manifest_magic{'H', 'L', 'M', 'M', 'A', 'N', 'I', '1'};
constexpr std::uint16_t manifest_format = 1;
constexpr std::uint64_t max_virtual_size = 2040ull << 30;
constexpr std::size_t signature_size = 64;

Result<ManifestEntry> read_entry(Reader& r, const Manifest& m, std::int64_t previous) {
    ManifestEntry e;
    e.index = HL_TRY(r.u32("chunk index"));
    e.id = HL_TRY(r.fixed<32>("chunk id"));
    e.object_size = HL_TRY(r.u32("object size"));
    if (static_cast<std::int64_t>(e.index) <= previous)
        return fail(Errc::corrupt, fmt::format("chunk index {} is out of order", e.index));
    if (e.index >= m.chunk_count())
        return fail(Errc::corrupt, fmt::format("chunk index {} lies beyond the disk", e.index));
    std::uint32_t blocks = m.blocks_in_chunk(e.index);
    if (e.object_size < chunk_header_size(blocks) + record_overhead ||
        e.object_size > chunk_header_size(blocks) + blocks * max_record_size)
        return fail(Errc::corrupt,
                    fmt::format("chunk {}: object size {} is impossible", e.index, e.object_size));
    return e;
}
} // namespace

std::uint32_t Manifest::chunk_count() const {
    return static_cast<std::uint32_t>((virtual_size + chunk_bytes - 1) / chunk_bytes);
}

std::uint32_t Manifest::blocks_in_chunk(std::uint32_t index) const {
    std::uint64_t start = std::uint64_t{index} * chunk_bytes;
    std::uint64_t left = virtual_size > start ? virtual_size - start : 0;
    std::uint64_t blocks =
        (std::min<std::uint64_t>(left, chunk_bytes) + block_size - 1) / block_size;
    return static_cast<std::uint32_t>(blocks);
}

Bytes encode_manifest(const Manifest& m, const crypto::SigningSecretKey& key) {
    Writer w;
    w.raw(manifest_magic);
    w.u16(manifest_format);
    w.u16(static_cast<std::uint16_t>(m.image.size()));
    w.u32(block_size);
    w.u32(chunk_blocks);
    w.u64(m.virtual_size);
    w.u64(m.version);
    w.u64(static_cast<std::uint64_t>(m.created));
    w.u64(static_cast<std::uint64_t>(m.expires));
    w.raw(m.family);
    w.raw(m.disk_uuid);
    w.raw(as_bytes(m.image));
    w.u32(static_cast<std::uint32_t>(m.chunks.size()));
    for (const auto& e : m.chunks) {
        w.u32(e.index);
        w.raw(e.id);
        w.u32(e.object_size);
    }
    w.u32(static_cast<std::uint32_t>(m.deltas.size()));
    for (const auto& d : m.deltas) {
        w.u32(d.index);
        w.raw(d.from);
        w.u32(d.object_size);
    }
    crypto::Signature sig = crypto::sign(key, w.bytes());
    w.raw(sig);
    return w.take();
}

Result<Manifest> parse_manifest(ByteView bytes, const crypto::SigningPublicKey& key) {
    if (bytes.size() < signature_size + manifest_magic.size())
        return fail(Errc::corrupt, "manifest is truncated");
    ByteView body = bytes.first(bytes.size() - signature_size);
    crypto::Signature sig;
    std::copy(bytes.end() - signature_size, bytes.end(), sig.begin());
    if (!crypto::verify(key, body, sig))
        return fail(Errc::crypto, "manifest signature does not verify with the pinned server key "
                                  "(tampered, truncated, or signed by another server)");
    return parse_manifest_unverified(bytes);
}

Result<Manifest> parse_manifest_unverified(ByteView bytes) {
    if (bytes.size() > max_manifest_size)
        return fail(Errc::corrupt, "manifest is too large");
    if (bytes.size() < signature_size)
        return fail(Errc::corrupt, "manifest is truncated");
    Reader r(bytes.first(bytes.size() - signature_size));
    auto magic = HL_TRY_CTX(r.fixed<8>("magic"), "manifest");
    if (magic != manifest_magic)
        return fail(Errc::corrupt, "manifest: not a Heirloom manifest (bad magic)");
    auto format = HL_TRY_CTX(r.u16("format"), "manifest");
    if (format != manifest_format)
        return fail(Errc::unsupported, fmt::format("manifest: format {} is not supported", format));
    auto name_len = HL_TRY_CTX(r.u16("name length"), "manifest");
    auto bsize = HL_TRY_CTX(r.u32("block size"), "manifest");
    auto cblocks = HL_TRY_CTX(r.u32("chunk blocks"), "manifest");
    if (bsize != block_size || cblocks != chunk_blocks)
        return fail(Errc::unsupported,
                    fmt::format("manifest: block size {} × {} is not supported", bsize, cblocks));
    Manifest m;
    m.virtual_size = HL_TRY_CTX(r.u64("virtual size"), "manifest");
    if (m.virtual_size == 0 || m.virtual_size % 512 != 0 || m.virtual_size > max_virtual_size)
        return fail(Errc::corrupt,
                    fmt::format("manifest: virtual size {} is invalid", m.virtual_size));
    m.version = HL_TRY_CTX(r.u64("version"), "manifest");
    if (m.version == 0)
        return fail(Errc::corrupt, "manifest: version 0 is invalid");
    m.created = static_cast<std::int64_t>(HL_TRY_CTX(r.u64("created"), "manifest"));
    m.expires = static_cast<std::int64_t>(HL_TRY_CTX(r.u64("expires"), "manifest"));
    if (m.expires < 0)
        return fail(Errc::corrupt, "manifest: negative expiry");
    m.family = HL_TRY_CTX(r.fixed<16>("family id"), "manifest");
    m.disk_uuid = HL_TRY_CTX(r.fixed<16>("disk uuid"), "manifest");
    auto name = HL_TRY_CTX(r.raw("image name", name_len), "manifest");
    m.image.assign(name.begin(), name.end());
    if (!valid_image_name(m.image))
        return fail(Errc::corrupt, "manifest: invalid image name");
    auto count = HL_TRY_CTX(r.u32("entry count"), "manifest");
    if (count > m.chunk_count() || r.remaining() < std::uint64_t{count} * 40 + 4)
        return fail(Errc::corrupt, fmt::format("manifest: {} entries do not fit the disk or the "
                                               "file ({} bytes left)",
                                               count, r.remaining()));
    m.chunks.reserve(count);
    std::int64_t previous = -1;
    for (std::uint32_t i = 0; i < count; ++i) {
        m.chunks.push_back(HL_TRY_CTX(read_entry(r, m, previous), "manifest"));
        previous = m.chunks.back().index;
    }
    auto deltas = HL_TRY_CTX(r.u32("delta count"), "manifest");
    if (deltas > count || r.remaining() != std::uint64_t{deltas} * 40)
        return fail(Errc::corrupt, fmt::format("manifest: {} delta entries do not fit ({} bytes "
                                               "left)",
                                               deltas, r.remaining()));
    // Each delta must name a chunk of this version, in increasing order.
    std::size_t cursor = 0;
    for (std::uint32_t i = 0; i < deltas; ++i) {
        DeltaEntry d;
        d.index = HL_TRY_CTX(r.u32("delta index"), "manifest");
        d.from = HL_TRY_CTX(r.fixed<32>("delta source"), "manifest");
        d.object_size = HL_TRY_CTX(r.u32("delta size"), "manifest");
        while (cursor < m.chunks.size() && m.chunks[cursor].index < d.index)
            ++cursor;
        if (cursor == m.chunks.size() || m.chunks[cursor].index != d.index ||
            (!m.deltas.empty() && m.deltas.back().index >= d.index))
            return fail(Errc::corrupt,
                        fmt::format("manifest: delta for chunk {} has no chunk or is out of order",
                                    d.index));
        if (d.object_size == 0 || d.object_size > 2 * chunk_bytes)
            return fail(Errc::corrupt,
                        fmt::format("manifest: delta size {} is impossible", d.object_size));
        m.deltas.push_back(d);
    }
    return m;
}

Status check_manifest(const Manifest& m, const ManifestExpectations& expect) {
    if (m.image != expect.image)
        return fail(Errc::crypto, fmt::format("the repository served the manifest of image '{}' "
                                              "when '{}' was asked for",
                                              m.image, expect.image));
    if (m.family != expect.family)
        return fail(Errc::crypto, "the manifest belongs to another image family: the keys given "
                                  "do not match this image");
    if (m.version <= expect.newer_than)
        return fail(Errc::conflict,
                    fmt::format("the repository offers version {} but version {} is already "
                                "current here; refusing to go back (a replayed or stale manifest)",
                                m.version, expect.newer_than));
    if (m.expires != 0 && m.expires <= expect.now)
        return fail(Errc::crypto, fmt::format("manifest of '{}' v{} expired; the repository is "
                                              "stale and must be refreshed by its server",
                                              m.image, m.version));
    return {};
}

} // namespace heirloom::trim
