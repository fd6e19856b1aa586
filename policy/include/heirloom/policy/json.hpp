#pragma once

// The JSON form of a policy set, as stored by the server and edited by admins. Parsing is
// strict: unknown fields, wrong types and bad values are refused with the JSON path at fault
// ("assignments[2].controls.clipboard: expected one of off, host-to-guest, ...").

#include "heirloom/common/json.hpp"
#include "heirloom/policy/model.hpp"

#include <string_view>

namespace heirloom::policy {

// Largest policy set document accepted; far above any real deployment.
inline constexpr std::size_t max_policy_document = 8u << 20;

// The JSON form of a set; parse_policy_set(to_json(set).dump()) gives back an equal set.
Json to_json(const PolicySet& set);

// Parses and validates a policy set document.
Result<PolicySet> parse_policy_set(std::string_view json);

// The JSON spellings of the enums, for messages and tools.
std::string_view to_string(DataFlow flow);
std::string_view to_string(Printing printing);
std::string_view to_string(RemovableMedia media);
std::string_view to_string(OnExpiry on_expiry);

} // namespace heirloom::policy
