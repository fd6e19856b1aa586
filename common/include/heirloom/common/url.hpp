#pragma once

// URLs of servers and repositories ("https://host:port/prefix"), parsed strictly, and small
// text helpers for what servers send back.

#include "heirloom/common/error.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace heirloom {

struct Url {
    bool https = false;
    std::string host; // without the brackets of an IPv6 literal
    int port = 0;
    std::string prefix;  // "" or "/repo", never ending in '/'
    std::string display; // "https://host:port/repo", for messages
};

// Parses an http:// or https:// URL with an optional path prefix; user names, queries and
// fragments are refused.
Result<Url> parse_url(std::string_view text);

// ASCII case-insensitive comparisons.
bool iequals(std::string_view a, std::string_view b);
bool starts_with_nocase(std::string_view s, std::string_view prefix);

// A decimal number with nothing else around it.
std::optional<std::uint64_t> parse_u64(std::string_view s);

// Shows untrusted text from a server in a message without control characters or unbounded
// length.
std::string printable(std::string_view s);

} // namespace heirloom
