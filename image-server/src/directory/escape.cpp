// RFC 4515 escaping of values placed inside LDAP search filters.

#include "heirloom/server/directory.hpp"
#include "names.hpp"

#include <cstdint>

namespace heirloom::server {

namespace {

// Bytes that may stand for themselves: printable ASCII other than the filter's own syntax.
bool plain_ascii(std::uint8_t c) {
    return c >= 0x20 && c < 0x7F && c != '*' && c != '(' && c != ')' && c != '\\';
}

void append_escaped(std::string& out, std::uint8_t c) {
    static constexpr char hex[] = "0123456789abcdef";
    out += '\\';
    out += hex[c >> 4];
    out += hex[c & 0x0F];
}

} // namespace

// Besides the five characters RFC 4515 requires, control characters and bytes that are not
// well-formed UTF-8 are escaped too (the RFC allows escaping any octet), so the filter is
// always valid UTF-8 and safe to log; well-formed non-ASCII characters pass through.
std::string escape_filter_value(std::string_view value) {
    std::string out;
    out.reserve(value.size() + value.size() / 4);
    for (std::size_t at = 0; at < value.size();) {
        const auto c = static_cast<std::uint8_t>(value[at]);
        if (plain_ascii(c)) {
            out += static_cast<char>(c);
            ++at;
            continue;
        }
        const std::size_t length = c >= 0x80 ? utf8_sequence_length(value, at) : 0;
        if (length > 0) {
            out.append(value.substr(at, length));
            at += length;
            continue;
        }
        append_escaped(out, c);
        ++at;
    }
    return out;
}

} // namespace heirloom::server
