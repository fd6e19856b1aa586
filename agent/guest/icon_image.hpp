#pragma once

// One image of a Windows icon (an RT_ICON resource, or an entry of a .ico file): either a PNG
// file or a device-independent bitmap (BITMAPINFOHEADER, colour rows, then the AND mask).
// Used by pe_icon.cpp; the image bytes are hostile and checked against the size its icon
// group states.

#include "heirloom/common/error.hpp"

#include <cstdint>
#include <span>
#include <vector>

namespace heirloom::guest {

inline constexpr int max_icon_pixels = 256; // the largest width or height of an icon image

// The image as a PNG file: a PNG image is checked (signature, IHDR, size, IEND) and returned
// as it is; a bitmap is decoded to RGBA and encoded. width and height are what the icon group
// says the image is; an image of another size is refused.
Result<std::vector<std::uint8_t>> icon_image_png(std::span<const std::uint8_t> image, int width,
                                                 int height);

// Encodes width × height RGBA pixels (row after row, top first) as a PNG file.
Result<std::vector<std::uint8_t>> encode_rgba_png(int width, int height,
                                                  std::span<const std::uint8_t> rgba);

} // namespace heirloom::guest
