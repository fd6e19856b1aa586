#pragma once

// JSON via nlohmann-json, with parsing that returns a Result instead of throwing: the one
// adapter where its exceptions stop.

#include "heirloom/common/error.hpp"

#include <nlohmann/json.hpp>
#include <string_view>

namespace heirloom {

using Json = nlohmann::json;

// Parses text as JSON, refusing input deeper than a sane nesting limit or larger than max_size.
Result<Json> parse_json(std::string_view text, std::size_t max_size = 16u << 20);

} // namespace heirloom
