#include "heirloom/trim/delta.hpp"

#include <cstdio>
#include <cstring>
#include <fmt/format.h>
#include <librsync.h>
#include <memory>
#include <zstd.h>

namespace heirloom::trim {

namespace {

constexpr std::array<std::uint8_t, 8> delta_magic{'H', 'L', 'M', 'D', 'E', 'L', 'T', '1'};
constexpr std::uint16_t delta_format = 1;
// 256-byte blocks find edits inside a 4 KiB block; the signature stays small for 256 KiB.
constexpr std::size_t rsync_block = 256;

struct FileCloser {
    void operator()(FILE* f) const {
        if (f)
            std::fclose(f);
    }
};
using File = std::unique_ptr<FILE, FileCloser>;

File read_stream(ByteView data) {
    // fmemopen needs a writable pointer even for reading; nothing is written through it.
    return File(::fmemopen(const_cast<std::uint8_t*>(data.data()), data.size(), "rb"));
}

// A growable in-memory output stream.
struct MemoryOut {
    char* buffer = nullptr;
    std::size_t size = 0;
    File file{::open_memstream(&buffer, &size)};
    ~MemoryOut() {
        file.reset();
        std::free(buffer);
    }
    Bytes take() {
        std::fflush(file.get());
        return Bytes(buffer, buffer + size);
    }
};

// librsync reports errors on stderr by default; ours are reported as values instead.
void quiet(rs_loglevel, const char*) {}

std::array<std::uint8_t, 8 + 64> delta_aad(const ChunkId& from, const ChunkId& to) {
    std::array<std::uint8_t, 72> aad{};
    std::memcpy(aad.data(), delta_magic.data(), 8);
    std::memcpy(aad.data() + 8, from.data(), 32);
    std::memcpy(aad.data() + 40, to.data(), 32);
    return aad;
}

} // namespace

std::string delta_path(const ChunkId& from, const ChunkId& to) {
    std::string f = to_hex(from);
    return "deltas/" + f.substr(0, 2) + "/" + f + "-" + to_hex(to);
}

Result<Bytes> make_delta(ByteView old_plain, ByteView new_plain) {
    rs_trace_to(quiet);
    File old_file = read_stream(old_plain);
    File new_file = read_stream(new_plain);
    MemoryOut sig;
    MemoryOut delta;
    if (!old_file || !new_file || !sig.file || !delta.file)
        return fail(Errc::io, "cannot open memory streams for a delta");
    rs_magic_number magic = RS_RK_BLAKE2_SIG_MAGIC;
    std::size_t block = rsync_block;
    std::size_t strong = 0;
    if (rs_sig_args(static_cast<rs_long_t>(old_plain.size()), &magic, &block, &strong) != RS_DONE ||
        rs_sig_file(old_file.get(), sig.file.get(), block, strong, magic, nullptr) != RS_DONE)
        return fail(Errc::io, "librsync could not make a signature");
    Bytes sig_bytes = sig.take();
    File sig_in = read_stream(sig_bytes);
    rs_signature_t* sums = nullptr;
    if (!sig_in || rs_loadsig_file(sig_in.get(), &sums, nullptr) != RS_DONE)
        return fail(Errc::io, "librsync could not load a signature");
    std::unique_ptr<rs_signature_t, void (*)(rs_signature_t*)> owned(sums, rs_free_sumset);
    if (rs_build_hash_table(sums) != RS_DONE ||
        rs_delta_file(sums, new_file.get(), delta.file.get(), nullptr) != RS_DONE)
        return fail(Errc::io, "librsync could not make a delta");
    return delta.take();
}

Result<Bytes> apply_delta(ByteView old_plain, ByteView delta, std::size_t expected_size) {
    rs_trace_to(quiet);
    File basis = read_stream(old_plain);
    File delta_in = read_stream(delta);
    // One spare byte: output that reaches it is longer than expected, and output past it
    // fails to write, so a hostile delta cannot make us hold more than this buffer.
    Bytes out(expected_size + 1);
    File out_file(::fmemopen(out.data(), out.size(), "wb"));
    if (!basis || !delta_in || !out_file)
        return fail(Errc::io, "cannot open memory streams for a delta");
    std::setvbuf(out_file.get(), nullptr, _IONBF, 0);
    rs_result r = rs_patch_file(basis.get(), delta_in.get(), out_file.get(), nullptr);
    long written = std::ftell(out_file.get());
    if (r != RS_DONE)
        return fail(Errc::corrupt, fmt::format("the delta does not apply ({})", rs_strerror(r)));
    if (written < 0 || static_cast<std::size_t>(written) != expected_size)
        return fail(Errc::corrupt, fmt::format("the delta produced {} bytes, expected {}", written,
                                               expected_size));
    out.resize(expected_size);
    return out;
}

Result<Bytes> seal_delta(const FamilyKeys& keys, const ChunkId& from, const ChunkId& to,
                         ByteView delta) {
    Bytes payload(ZSTD_compressBound(delta.size()));
    std::size_t n = ZSTD_compress(payload.data(), payload.size(), delta.data(), delta.size(), 3);
    if (ZSTD_isError(n))
        return fail(Errc::io, "cannot compress a delta");
    payload.resize(n);
    Writer w;
    w.raw(delta_magic);
    w.u16(delta_format);
    w.u16(0);
    w.u32(static_cast<std::uint32_t>(payload.size()));
    w.raw(from);
    w.raw(to);
    crypto::Nonce nonce = keys.delta_nonce(from, to, payload);
    w.raw(nonce);
    Bytes& out = w.bytes();
    std::size_t start = out.size();
    out.resize(start + payload.size() + 16);
    crypto::Key key = keys.delta_key(from, to);
    auto tag = crypto::aes_gcm_seal(key, nonce, delta_aad(from, to), payload,
                                    MutableByteView(out.data() + start, payload.size()));
    crypto::secure_wipe(key);
    if (!tag)
        return std::unexpected(tag.error());
    std::memcpy(out.data() + start + payload.size(), tag->data(), tag->size());
    return w.take();
}

Result<Bytes> open_delta(const FamilyKeys& keys, const ChunkId& from, const ChunkId& to,
                         ByteView object) {
    if (object.size() > max_delta_object_size)
        return fail(Errc::corrupt, "delta object is too large");
    Reader r(object);
    auto magic = HL_TRY_CTX(r.fixed<8>("magic"), "delta");
    auto format = HL_TRY_CTX(r.u16("format"), "delta");
    auto reserved = HL_TRY_CTX(r.u16("reserved"), "delta");
    auto size = HL_TRY_CTX(r.u32("payload size"), "delta");
    auto f = HL_TRY_CTX(r.fixed<32>("from id"), "delta");
    auto t = HL_TRY_CTX(r.fixed<32>("to id"), "delta");
    auto nonce = HL_TRY_CTX(r.fixed<12>("nonce"), "delta");
    if (magic != delta_magic || format != delta_format || reserved != 0)
        return fail(Errc::corrupt, "delta: not a Heirloom delta object (bad magic or format)");
    if (f != from || t != to)
        return fail(Errc::corrupt, "delta: object is for other chunks");
    if (r.remaining() != std::uint64_t{size} + 16)
        return fail(Errc::corrupt, "delta: object is truncated or has trailing bytes");
    ByteView ct = HL_TRY(r.raw("payload", size));
    auto tag = HL_TRY(r.fixed<16>("tag"));
    Bytes payload(size);
    crypto::Key key = keys.delta_key(from, to);
    auto ok = crypto::aes_gcm_open(key, nonce, delta_aad(from, to), ct, tag, payload);
    crypto::secure_wipe(key);
    if (!ok)
        return std::unexpected(ok.error().context("delta"));
    unsigned long long plain = ZSTD_getFrameContentSize(payload.data(), payload.size());
    if (plain == ZSTD_CONTENTSIZE_ERROR || plain == ZSTD_CONTENTSIZE_UNKNOWN ||
        plain > 4 * chunk_bytes)
        return fail(Errc::corrupt, "delta: compressed payload has no or an impossible size");
    Bytes delta(plain);
    std::size_t n = ZSTD_decompress(delta.data(), delta.size(), payload.data(), payload.size());
    if (ZSTD_isError(n) || n != plain)
        return fail(Errc::corrupt, "delta: compressed payload is damaged");
    return delta;
}

} // namespace heirloom::trim
