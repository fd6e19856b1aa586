#include "heirloom/common/json.hpp"

namespace heirloom {

namespace {
// Deepest bracket nesting in text, ignoring brackets inside strings.
std::size_t nesting_depth(std::string_view text) {
    std::size_t depth = 0;
    std::size_t deepest = 0;
    bool in_string = false;
    bool escaped = false;
    for (char c : text) {
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"')
            in_string = true;
        else if (c == '[' || c == '{')
            deepest = std::max(deepest, ++depth);
        else if ((c == ']' || c == '}') && depth > 0)
            --depth;
    }
    return deepest;
}
} // namespace

Result<Json> parse_json(std::string_view text, std::size_t max_size) {
    constexpr std::size_t max_depth = 64;
    if (text.size() > max_size)
        return fail(Errc::corrupt, "JSON document is too large");
    if (nesting_depth(text) > max_depth)
        return fail(Errc::corrupt, "JSON document is nested too deeply");
    try {
        return Json::parse(text);
    } catch (const Json::exception& e) {
        return fail(Errc::corrupt, std::string("malformed JSON: ") + e.what());
    }
}

} // namespace heirloom
