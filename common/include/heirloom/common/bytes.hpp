#pragma once

// Byte buffers, hex, and little-endian encoding for the binary wire formats.

#include "heirloom/common/error.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace heirloom {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;
using MutableByteView = std::span<std::uint8_t>;

std::string to_hex(ByteView bytes);
Result<Bytes> from_hex(std::string_view hex);

// Parses hex into a fixed-size array, failing unless the length matches exactly.
template <std::size_t N> Result<std::array<std::uint8_t, N>> from_hex_fixed(std::string_view hex) {
    auto bytes = from_hex(hex);
    if (!bytes)
        return std::unexpected(bytes.error());
    if (bytes->size() != N)
        return fail(Errc::corrupt, "expected " + std::to_string(N * 2) + " hex digits, got " +
                                       std::to_string(hex.size()));
    std::array<std::uint8_t, N> out{};
    std::copy(bytes->begin(), bytes->end(), out.begin());
    return out;
}

inline ByteView as_bytes(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// True when every byte is zero; fast on aligned blocks.
bool all_zero(ByteView bytes);

// Appends little-endian integers to a buffer.
class Writer {
  public:
    void u8(std::uint8_t v) { buf_.push_back(v); }
    void u16(std::uint16_t v) { put(v, 2); }
    void u32(std::uint32_t v) { put(v, 4); }
    void u64(std::uint64_t v) { put(v, 8); }
    void raw(ByteView v) { buf_.insert(buf_.end(), v.begin(), v.end()); }
    Bytes& bytes() { return buf_; }
    Bytes take() { return std::move(buf_); }

  private:
    void put(std::uint64_t v, int n) {
        for (int i = 0; i < n; ++i)
            buf_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    }
    Bytes buf_;
};

// Reads little-endian integers from a buffer with bounds checks; every read past the end
// fails with a message naming the field being read.
class Reader {
  public:
    explicit Reader(ByteView data) : data_(data) {}
    Result<std::uint8_t> u8(std::string_view field) { return get<std::uint8_t>(field, 1); }
    Result<std::uint16_t> u16(std::string_view field) { return get<std::uint16_t>(field, 2); }
    Result<std::uint32_t> u32(std::string_view field) { return get<std::uint32_t>(field, 4); }
    Result<std::uint64_t> u64(std::string_view field) { return get<std::uint64_t>(field, 8); }
    Result<ByteView> raw(std::string_view field, std::size_t n);
    template <std::size_t N> Result<std::array<std::uint8_t, N>> fixed(std::string_view field) {
        auto view = raw(field, N);
        if (!view)
            return std::unexpected(view.error());
        std::array<std::uint8_t, N> out{};
        std::copy(view->begin(), view->end(), out.begin());
        return out;
    }
    std::size_t offset() const { return pos_; }
    std::size_t remaining() const { return data_.size() - pos_; }

  private:
    template <class T> Result<T> get(std::string_view field, std::size_t n) {
        auto view = raw(field, n);
        if (!view)
            return std::unexpected(view.error());
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < n; ++i)
            v |= static_cast<std::uint64_t>((*view)[i]) << (8 * i);
        return static_cast<T>(v);
    }
    ByteView data_;
    std::size_t pos_ = 0;
};

// Big-endian helpers for formats that use network order (VHD).
inline std::uint32_t load_be32(const std::uint8_t* p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
           std::uint32_t{p[3]};
}
inline std::uint64_t load_be64(const std::uint8_t* p) {
    return (std::uint64_t{load_be32(p)} << 32) | load_be32(p + 4);
}
inline void store_be32(std::uint8_t* p, std::uint32_t v) {
    p[0] = static_cast<std::uint8_t>(v >> 24);
    p[1] = static_cast<std::uint8_t>(v >> 16);
    p[2] = static_cast<std::uint8_t>(v >> 8);
    p[3] = static_cast<std::uint8_t>(v);
}
inline void store_be64(std::uint8_t* p, std::uint64_t v) {
    store_be32(p, static_cast<std::uint32_t>(v >> 32));
    store_be32(p + 4, static_cast<std::uint32_t>(v));
}

// Human-readable size: "1.5 GiB".
std::string format_bytes(std::uint64_t n);

} // namespace heirloom
