#pragma once

// The roll-out of an image's versions over time, from the agents' sync-done events: after
// each event, how many endpoints hold each version. No Qt, so it is easy to check.

#include "admin_api.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace heirloom::console {

struct RolloutPoint {
    std::int64_t time = 0;
    std::map<std::uint64_t, int> endpoints_per_version; // version -> endpoints holding it
};

// The points for one image, in time order, from events in any order (other images and other
// event types are ignored). An endpoint counts for the last version it finished syncing.
std::vector<RolloutPoint> rollout(const std::vector<Event>& events, const std::string& image);

// The images named by sync-done events, sorted.
std::vector<std::string> rollout_images(const std::vector<Event>& events);

} // namespace heirloom::console
