// Fuzzes the icon reader of Windows programs (agent/guest/pe_icon.hpp): any bytes, read as a
// PE file, give an icon or an error, never a crash, a hang or an outsized allocation. An icon
// returned must be a PNG the guest protocol allows: the PNG signature, an IHDR chunk first, at
// most 256 KiB, and no wider or taller than the size asked for. Seeds: small mingw-w64 programs
// with icons (tests/fuzz/seeds/pe_icon).
#include "guest/pe_icon.hpp"
#include "heirloom/agent/guest_protocol.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

namespace {

std::uint32_t be32(std::span<const std::uint8_t> bytes, std::size_t at) {
    return std::uint32_t(bytes[at]) << 24 | std::uint32_t(bytes[at + 1]) << 16 |
           std::uint32_t(bytes[at + 2]) << 8 | bytes[at + 3];
}

void check_icon(std::span<const std::uint8_t> pe, int max_pixels) {
    constexpr std::array<std::uint8_t, 16> start = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
                                                    0,    0,   0,   13,  'I',  'H',  'D',  'R'};
    auto png = heirloom::guest::pe_icon_png(pe, max_pixels);
    if (!png)
        return;
    if (png->size() > heirloom::guest::max_icon_bytes || png->size() < 33 ||
        !std::equal(start.begin(), start.end(), png->begin()))
        std::abort();
    std::uint32_t width = be32(*png, 16);
    std::uint32_t height = be32(*png, 20);
    if (width == 0 || height == 0 || width > std::uint32_t(max_pixels) ||
        height > std::uint32_t(max_pixels))
        std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::span<const std::uint8_t> pe(data, size);
    check_icon(pe, 256);
    check_icon(pe, 1 + static_cast<int>(size % 256)); // another choice of image, by the size
    return 0;
}
