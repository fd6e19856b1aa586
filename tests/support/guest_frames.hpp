#pragma once

// Helpers the guest-channel tests share: bytes as text, a PNG-looking icon of any size, and a
// frame around any payload with any length field (for malformed frames).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace heirloom::test {

inline std::string as_text(const std::vector<std::uint8_t>& bytes) {
    return std::string(bytes.begin(), bytes.end());
}

inline std::vector<std::uint8_t> fake_png(std::size_t size) {
    std::vector<std::uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    for (std::size_t i = png.size(); i < size; ++i)
        png.push_back(static_cast<std::uint8_t>(i * 7));
    return png;
}

inline std::string raw_frame(std::string_view payload, std::optional<std::uint32_t> length = {}) {
    std::uint32_t n = length.value_or(static_cast<std::uint32_t>(payload.size()));
    std::string out = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                       static_cast<char>(n >> 8), static_cast<char>(n)};
    return out + std::string(payload);
}

} // namespace heirloom::test
