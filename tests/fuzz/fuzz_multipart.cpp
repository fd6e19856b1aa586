// libFuzzer target for the HTTP range answer parsers (multipart/byteranges bodies,
// Content-Range and Content-Type values). Input: one byte giving the boundary length, the
// boundary, then the body. Besides not crashing, every parsed part must lie inside the body,
// in order, and be exactly as long as its Content-Range says.

#include "../../trim-transfer/src/source/multipart.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mp = heirloom::trim::multipart;

namespace {

void check(bool ok) {
    if (!ok)
        __builtin_trap();
}

void check_range(const mp::ContentRange& r) {
    check(r.first <= r.last);
    check(r.length() == r.last - r.first + 1);
    check(!r.total || r.last < *r.total);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);

    // The whole input is also a fair header value.
    if (auto range = mp::parse_content_range(input))
        check_range(*range);
    if (auto boundary = mp::byteranges_boundary(input); boundary && *boundary)
        check(!(*boundary)->empty() && (*boundary)->size() <= 200);

    if (input.empty())
        return 0;
    std::size_t boundary_size = static_cast<std::uint8_t>(input[0]) % 72;
    input.remove_prefix(1);
    if (boundary_size > input.size())
        return 0;
    std::string_view boundary = input.substr(0, boundary_size);
    std::string_view body = input.substr(boundary_size);

    auto parts = mp::parse_byteranges(body, boundary);
    if (!parts) {
        check(!parts.error().message.empty());
        return 0;
    }
    check(!parts->empty());
    std::size_t previous_end = 0;
    for (const auto& part : *parts) {
        check_range(part.range);
        check(part.data_length == part.range.length());
        check(part.data_offset >= previous_end);
        check(part.data_offset <= body.size() &&
              part.data_length <= body.size() - part.data_offset);
        previous_end = part.data_offset + part.data_length;
    }
    return 0;
}
