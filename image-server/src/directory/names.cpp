#include "names.hpp"

#include <cstdint>

namespace heirloom::server {

std::size_t utf8_sequence_length(std::string_view text, std::size_t at) {
    const auto byte = [&](std::size_t i) {
        return static_cast<std::uint8_t>(text[at + i]);
    };
    const auto continuation = [&](std::size_t i) {
        return at + i < text.size() && (byte(i) & 0xC0) == 0x80;
    };
    const std::uint8_t lead = byte(0);
    if (lead < 0x80)
        return 1;
    if (lead >= 0xC2 && lead <= 0xDF)
        return continuation(1) ? 2 : 0;
    if (lead >= 0xE0 && lead <= 0xEF) {
        if (!continuation(1) || !continuation(2))
            return 0;
        if ((lead == 0xE0 && byte(1) < 0xA0) || (lead == 0xED && byte(1) > 0x9F))
            return 0;
        return 3;
    }
    if (lead >= 0xF0 && lead <= 0xF4) {
        if (!continuation(1) || !continuation(2) || !continuation(3))
            return 0;
        if ((lead == 0xF0 && byte(1) < 0x90) || (lead == 0xF4 && byte(1) > 0x8F))
            return 0;
        return 4;
    }
    return 0;
}

bool is_valid_name(std::string_view name) {
    if (name.empty() || name.size() > max_name_bytes)
        return false;
    for (std::size_t at = 0; at < name.size();) {
        const auto c = static_cast<std::uint8_t>(name[at]);
        if (c < 0x20 || c == 0x7F)
            return false;
        const std::size_t length = utf8_sequence_length(name, at);
        if (length == 0)
            return false;
        at += length;
    }
    return true;
}

} // namespace heirloom::server
