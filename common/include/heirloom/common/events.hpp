#pragma once

// The events an endpoint agent reports to the server (POST /v1/agent/events, docs/api.md):
// one list, so the agent never sends a type the server refuses (which would hold back every
// event queued behind it) and the server's report knows every type an agent sends.

#include <algorithm>
#include <array>
#include <string_view>

namespace heirloom {

inline constexpr auto agent_event_types = std::to_array<std::string_view>({
    "sync-started",     "sync-done",      "sync-failed",
    "launch",           "launch-failed",  "exit",
    "app-exited",       "policy-refused", "lease-warning",
    "lease-expired",    "wiped",          "error",
    "guest-hello",      "guest-error",    "guest-channel-closed",
    "image-read-error", "menu-failed",    "vm-died",
    "overlay-kept",     "suspended",      "idle-suspended",
    "suspend-failed",   "resume-failed",
});

// Whether type is one of agent_event_types.
constexpr bool is_agent_event_type(std::string_view type) {
    return std::find(agent_event_types.begin(), agent_event_types.end(), type) !=
           agent_event_types.end();
}

} // namespace heirloom
