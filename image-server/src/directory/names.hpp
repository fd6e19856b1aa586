#pragma once

// Rules for names that cross the directory boundary (login and group names), shared by the
// backends: what a caller may ask for, and what a directory answer must look like to be used.

#include <cstddef>
#include <string_view>

namespace heirloom::server {

// Names longer than this (login names, group names, display names) are refused or skipped.
inline constexpr std::size_t max_name_bytes = 256;

// The length of the well-formed UTF-8 sequence (RFC 3629: no overlong forms, no surrogates,
// nothing past U+10FFFF) that starts at text[at], or 0 when the bytes there are not one.
std::size_t utf8_sequence_length(std::string_view text, std::size_t at);

// True for 1 to max_name_bytes bytes of well-formed UTF-8 without control characters.
bool is_valid_name(std::string_view name);

} // namespace heirloom::server
