#pragma once

// What the tray shows, from the agent's status (no Qt here, so it is tested on its own): a
// one-line summary for the tooltip, one line per workspace for the menu, the overall state
// for the icon, and the notifications to raise (lease warnings and expiries, once each).

#include "heirloom/common/json.hpp"

#include <set>
#include <string>
#include <vector>

namespace heirloom::agent {

enum class TrayState { ok, syncing, warning, error, offline };

struct TrayModel {
    TrayState state = TrayState::offline;
    std::string summary;            // tooltip
    std::vector<std::string> lines; // menu lines (not actions)
    bool can_sync = false;
    struct Notice {
        std::string key; // workspace id + what, to raise each once
        std::string title;
        std::string message;
    };
    std::vector<Notice> notices;
};

// status: the "status" object of the agent's answer; agent_error: why the agent could not be
// asked (empty when it answered).
TrayModel tray_model(const Json& status, const std::string& agent_error);

// Renders a line for menus and logs, with control characters from the server replaced.
std::string tray_text(std::string_view text);

} // namespace heirloom::agent
