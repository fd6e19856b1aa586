#pragma once

// The icon of a Windows program, read from the resources of its .exe (PE32 or PE32+) the way
// Explorer finds it: the first icon group (RT_GROUP_ICON), then one of the images it lists
// (RT_ICON). Every byte of the file is hostile: offsets, sizes and counts are checked against
// the file and bounded, so a malformed program gives an error naming what is wrong, never a
// crash, a loop or an outsized allocation (docs/guest-protocol.md, "Icons of Windows programs").

#include "heirloom/common/error.hpp"

#include <cstdint>
#include <span>
#include <vector>

namespace heirloom::guest {

// The icon a Windows program carries in its resources, as a PNG file: from the first
// RT_GROUP_ICON, the largest image whose width and height are at most max_pixels.
Result<std::vector<std::uint8_t>> pe_icon_png(std::span<const std::uint8_t> pe,
                                              int max_pixels = 256);

} // namespace heirloom::guest
