#include "heirloom/common/bytes.hpp"

#include <cstring>
#include <fmt/format.h>

namespace heirloom {

std::string to_hex(ByteView bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(bytes.size() * 2, '0');
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 0xf];
    }
    return out;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

Result<Bytes> from_hex(std::string_view hex) {
    if (hex.size() % 2 != 0)
        return fail(Errc::corrupt, "hex string has an odd number of digits");
    Bytes out(hex.size() / 2);
    for (std::size_t i = 0; i < out.size(); ++i) {
        int hi = hex_value(hex[2 * i]);
        int lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return fail(Errc::corrupt, "not a hex digit at position " + std::to_string(2 * i));
        out[i] = static_cast<std::uint8_t>((hi << 4) | lo);
    }
    return out;
}

bool all_zero(ByteView bytes) {
    const std::uint8_t* p = bytes.data();
    std::size_t n = bytes.size();
    while (n >= 8) {
        std::uint64_t w;
        std::memcpy(&w, p, 8);
        if (w != 0)
            return false;
        p += 8;
        n -= 8;
    }
    for (; n > 0; --n, ++p)
        if (*p != 0)
            return false;
    return true;
}

Result<ByteView> Reader::raw(std::string_view field, std::size_t n) {
    if (n > remaining())
        return fail(Errc::corrupt,
                    fmt::format("truncated at {} (offset {}, need {} bytes, {} left)", field, pos_,
                                n, remaining()));
    ByteView out = data_.subspan(pos_, n);
    pos_ += n;
    return out;
}

std::string format_bytes(std::uint64_t n) {
    static constexpr const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(n);
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        ++u;
    }
    if (u == 0)
        return fmt::format("{} B", n);
    return fmt::format("{:.1f} {}", v, units[u]);
}

} // namespace heirloom
