#include "rollout.hpp"

#include <algorithm>
#include <set>

namespace heirloom::console {

std::vector<RolloutPoint> rollout(const std::vector<Event>& events, const std::string& image) {
    std::vector<const Event*> synced;
    for (const auto& e : events)
        if (e.type == "sync-done" && e.image == image)
            synced.push_back(&e);
    std::stable_sort(synced.begin(), synced.end(), [](const Event* a, const Event* b) {
        return a->time != b->time ? a->time < b->time : a->id < b->id;
    });
    std::map<std::string, std::uint64_t> holding; // endpoint -> version
    std::vector<RolloutPoint> points;
    for (const Event* e : synced) {
        holding[e->endpoint.empty() ? e->hostname : e->endpoint] = e->version;
        RolloutPoint point{e->time, {}};
        for (const auto& [endpoint, version] : holding)
            ++point.endpoints_per_version[version];
        if (!points.empty() && points.back().time == point.time)
            points.back() = std::move(point);
        else
            points.push_back(std::move(point));
    }
    return points;
}

std::vector<std::string> rollout_images(const std::vector<Event>& events) {
    std::set<std::string> names;
    for (const auto& e : events)
        if (e.type == "sync-done" && !e.image.empty())
            names.insert(e.image);
    return {names.begin(), names.end()};
}

} // namespace heirloom::console
