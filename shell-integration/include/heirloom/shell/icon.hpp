#pragma once

// Icons from guests are hostile files. A guest's PNG is decoded with libpng under strict limits
// (size, dimensions, any warning or error refuses it) and a fresh PNG of a fixed size is
// encoded from its pixels: nothing of the original file reaches the host's desktop.

#include "heirloom/common/bytes.hpp"
#include "heirloom/common/error.hpp"

#include <span>

namespace heirloom::shell {

inline constexpr std::size_t max_icon_file_bytes = 256u << 10; // as the guest protocol allows
inline constexpr std::uint32_t max_icon_dimension = 1024;
inline constexpr std::uint32_t icon_size = 64; // the cached icon is icon_size × icon_size RGBA

// Decodes png (refusing anything malformed, truncated, oversized or with warnings) and returns
// a new PNG of icon_size × icon_size, scaled by area averaging, aspect kept, centred.
Result<Bytes> convert_icon(std::span<const std::uint8_t> png);

// Encodes width × height RGBA pixels (8 bits each, row after row) as a PNG.
Result<Bytes> encode_png(std::uint32_t width, std::uint32_t height,
                         std::span<const std::uint8_t> rgba);

} // namespace heirloom::shell
