#include "heirloom/common/url.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace heirloom {
namespace {

char lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool is_host_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

// RFC 3986 path characters; '%' must start an escape.
bool valid_url_path(std::string_view path) {
    for (std::size_t i = 0; i < path.size(); ++i) {
        char c = path[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            continue;
        if (std::string_view("-._~!$&'()*+,;=:@/").find(c) != std::string_view::npos)
            continue;
        if (c == '%' && i + 2 < path.size() &&
            std::isxdigit(static_cast<unsigned char>(path[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(path[i + 2]))) {
            i += 2;
            continue;
        }
        return false;
    }
    return true;
}

} // namespace

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [](char x, char y) { return lower(x) == lower(y); });
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::optional<std::uint64_t> parse_u64(std::string_view s) {
    std::uint64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty())
        return std::nullopt;
    return v;
}

std::string printable(std::string_view s) {
    constexpr std::size_t limit = 80;
    std::string out;
    for (char c : s.substr(0, limit))
        out += (c >= 0x20 && c < 0x7f) ? c : '?';
    if (s.size() > limit)
        out += "…";
    return out;
}

Result<Url> parse_url(std::string_view text) {
    auto bad = [&](std::string_view why) {
        return fail(Errc::invalid_argument,
                    "invalid URL \"" + printable(text) + "\": " + std::string(why));
    };
    Url url;
    std::string_view rest = text;
    if (starts_with_nocase(rest, "https://")) {
        url.https = true;
        rest.remove_prefix(8);
    } else if (starts_with_nocase(rest, "http://")) {
        rest.remove_prefix(7);
    } else {
        return bad("expected http:// or https://");
    }
    if (rest.find_first_of("?#") != std::string_view::npos)
        return bad("queries and fragments are not supported; give the repository's base URL");

    std::size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    std::string_view path =
        slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
    if (authority.find('@') != std::string_view::npos)
        return bad("user names and passwords in URLs are not supported");

    std::string_view port_text;
    if (authority.starts_with('[')) {
        std::size_t close = authority.find(']');
        if (close == std::string_view::npos)
            return bad("unterminated IPv6 address");
        url.host = authority.substr(1, close - 1);
        std::string_view after = authority.substr(close + 1);
        if (!after.empty() && !after.starts_with(':'))
            return bad("unexpected characters after the IPv6 address");
        if (!after.empty())
            port_text = after.substr(1);
        bool ok = !url.host.empty() && std::all_of(url.host.begin(), url.host.end(), [](char c) {
            return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
        });
        if (!ok)
            return bad("malformed IPv6 address");
    } else {
        std::size_t colon = authority.find(':');
        url.host = authority.substr(0, colon);
        if (colon != std::string_view::npos)
            port_text = authority.substr(colon + 1);
        if (url.host.empty() || !std::all_of(url.host.begin(), url.host.end(), is_host_char))
            return bad("missing or malformed host name");
    }
    url.port = url.https ? 443 : 80;
    if (authority.ends_with(':') || !port_text.empty()) {
        auto port = parse_u64(port_text);
        if (!port || *port == 0 || *port > 65535)
            return bad("the port must be a number from 1 to 65535");
        url.port = static_cast<int>(*port);
    }

    while (path.ends_with('/'))
        path.remove_suffix(1);
    if (!valid_url_path(path))
        return bad("the path has characters that must be percent-encoded");
    url.prefix = path;

    std::string host_display =
        url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
    url.display = std::string(url.https ? "https://" : "http://") + host_display;
    if (url.port != (url.https ? 443 : 80))
        url.display += ":" + std::to_string(url.port);
    url.display += url.prefix;
    return url;
}

} // namespace heirloom
