#pragma once

// One strict UTF-8 decoder for every parser that takes text from outside (guest messages,
// policies, app reports, Windows paths). Header-only, so the static guest agent can use it.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

namespace heirloom {

// Walks the code points of strict UTF-8 (no overlong forms, no surrogates, nothing above
// U+10FFFF), calling visit(code_point) for each. visit may return bool: false stops the walk
// early (the text read so far was valid). Returns false when the text is not such UTF-8.
template <class Visit> constexpr bool for_each_code_point(std::string_view text, Visit&& visit) {
    std::size_t i = 0;
    while (i < text.size()) {
        auto b0 = static_cast<unsigned char>(text[i]);
        std::uint32_t cp = 0;
        std::size_t len = 1;
        if (b0 < 0x80) {
            cp = b0;
        } else if (b0 >= 0xc2 && b0 <= 0xdf) {
            cp = b0 & 0x1fu;
            len = 2;
        } else if (b0 >= 0xe0 && b0 <= 0xef) {
            cp = b0 & 0x0fu;
            len = 3;
        } else if (b0 >= 0xf0 && b0 <= 0xf4) {
            cp = b0 & 0x07u;
            len = 4;
        } else {
            return false;
        }
        if (text.size() - i < len)
            return false;
        for (std::size_t k = 1; k < len; ++k) {
            auto b = static_cast<unsigned char>(text[i + k]);
            if ((b & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (b & 0x3fu);
        }
        bool overlong = (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
        if (overlong || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        if constexpr (std::is_same_v<std::invoke_result_t<Visit&, std::uint32_t>, bool>) {
            if (!visit(cp))
                return true;
        } else {
            visit(cp);
        }
        i += len;
    }
    return true;
}

// Whether text is strict UTF-8.
constexpr bool is_utf8(std::string_view text) {
    return for_each_code_point(text, [](std::uint32_t) {});
}

} // namespace heirloom
