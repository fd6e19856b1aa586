#pragma once

// Parsing of HTTP range answers: Content-Range values and multipart/byteranges bodies
// (RFC 9110 section 14 and RFC 2046). Pure functions over strings so they can be fuzzed.

#include "heirloom/common/error.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace heirloom::trim::multipart {

// "bytes FIRST-LAST/TOTAL": an inclusive byte range and the object size when the server knows it.
struct ContentRange {
    std::uint64_t first = 0;
    std::uint64_t last = 0;             // inclusive, first <= last
    std::optional<std::uint64_t> total; // absent for "/*"
    std::uint64_t length() const { return last - first + 1; }
};

// One part of a multipart/byteranges body: its range and where its data lies in the body.
struct Part {
    ContentRange range;
    std::size_t data_offset = 0; // offset of the part's data in the body
    std::size_t data_length = 0; // always range.length()
};

// Parses a Content-Range value such as "bytes 0-99/1234" (or "bytes 0-99/*"). Unsatisfied
// ranges ("bytes */1234") and anything malformed are Errc::corrupt.
Result<ContentRange> parse_content_range(std::string_view value);

// Returns the boundary of a "multipart/byteranges; boundary=…" Content-Type, or nullopt when
// the media type is something else. A multipart type without a usable boundary is
// Errc::corrupt.
Result<std::optional<std::string>> byteranges_boundary(std::string_view content_type);

// Splits a multipart/byteranges body into its parts, in the order the server sent them. Strict:
// every part needs exactly one Content-Range, its data must be exactly that long and be
// followed by a delimiter, and the body must end with the closing delimiter. Errors are
// Errc::corrupt and name the part and what was wrong.
Result<std::vector<Part>> parse_byteranges(std::string_view body, std::string_view boundary);

} // namespace heirloom::trim::multipart
