#include "heirloom/agent/tray_model.hpp"

#include "heirloom/common/bytes.hpp"

#include <fmt/core.h>

namespace heirloom::agent {

std::string tray_text(std::string_view text) {
    std::string out;
    for (unsigned char c : text.substr(0, 300))
        out += c < 0x20 || c == 0x7f ? ' ' : static_cast<char>(c);
    return out;
}

TrayModel tray_model(const Json& status, const std::string& agent_error) {
    TrayModel m;
    if (!agent_error.empty()) {
        m.state = TrayState::offline;
        m.summary = "Heirloom: the agent is not running";
        m.lines.push_back(tray_text(agent_error));
        return m;
    }
    if (!status.is_object() || !status.value("enrolled", false)) {
        m.state = TrayState::offline;
        m.summary = "Heirloom: not logged in";
        m.lines.push_back("Not logged in: heirloom login --server URL --user NAME");
        return m;
    }
    m.can_sync = true;
    m.state = TrayState::ok;
    int syncing = 0, warnings = 0, errors = 0;
    const Json empty = Json::array();
    const Json& list = status.contains("workspaces") ? status["workspaces"] : empty;
    for (const auto& w : list) {
        std::string name = tray_text(w.value("display_name", w.value("id", std::string())));
        std::string id = w.value("id", std::string());
        std::string state = w.value("state", std::string());
        std::string lease = w.value("lease_state", std::string());
        std::string line = name + ": ";
        if (state == "syncing" && w.contains("progress")) {
            auto done = w["progress"].value("done", 0ull);
            auto total = w["progress"].value("total", 0ull);
            line += fmt::format("syncing {}%", total ? done * 100 / total : 0);
            ++syncing;
        } else if (state == "ready") {
            line += w["current_version"].is_number()
                        ? fmt::format("ready (v{})", w["current_version"].get<std::uint64_t>())
                        : std::string("ready");
        } else {
            line += tray_text(state);
        }
        if (lease == "warning") {
            ++warnings;
            line += ", lease ending";
            m.notices.push_back({id + ":warning", name + ": connect to the server soon",
                                 "The offline lease of " + name +
                                     " ends soon; connect to the network to renew it."});
        } else if (lease == "expired" || state == "wiped" || state == "revoked") {
            ++warnings;
            m.notices.push_back({id + ":" + state, name + " is no longer available",
                                 tray_text(w.value("last_error", std::string()))});
        }
        if (state == "error") {
            ++errors;
            line += " - " + tray_text(w.value("last_error", std::string()));
        }
        m.lines.push_back(line);
    }
    if (list.empty())
        m.lines.push_back("No workspaces assigned");
    std::string user = tray_text(status["enrolment"].value("user", std::string()));
    if (errors)
        m.state = TrayState::error;
    else if (warnings)
        m.state = TrayState::warning;
    else if (syncing)
        m.state = TrayState::syncing;
    m.summary = fmt::format("Heirloom ({}): {} workspace{}", user, list.size(),
                            list.size() == 1 ? "" : "s");
    if (syncing)
        m.summary += fmt::format(", {} syncing", syncing);
    if (warnings)
        m.summary += fmt::format(", {} need attention", warnings);
    if (errors)
        m.summary += fmt::format(", {} failed", errors);
    if (auto problem = status.value("trust_problem", std::string()); !problem.empty()) {
        m.state = TrayState::error;
        m.lines.push_back("Refused: " + tray_text(problem));
    }
    return m;
}

} // namespace heirloom::agent
