#pragma once

// The apps a workspace's guest holds, reported to the server for the image version the VM
// runs, so the console can offer them when an admin publishes an app. A report goes only when
// it differs from the last one sent for that version (a ledger of digests remembers them across
// restarts), so starting a VM does not send it again.

#include "heirloom/agent/guest_protocol.hpp"
#include "heirloom/common/file.hpp"
#include "heirloom/common/json.hpp"

#include <map>
#include <string>
#include <vector>

namespace heirloom::agent {

// Apps one report may carry (the server's limit).
inline constexpr std::size_t max_reported_apps = 256;

struct AppReport {
    std::string workspace; // whose VM listed them, for events
    std::string image;
    std::uint64_t version = 0;
    Json body;                         // {"apps": [...]} as the server takes it
    std::string digest;                // SHA-256 of the body, hex
    std::vector<std::string> problems; // icons left out, apps beyond the limit
};

// Builds the report of what a guest listed: each icon decoded and encoded afresh
// (shell::convert_icon), never the guest's bytes; an icon that is refused is left out and named
// in problems, and so are apps beyond max_reported_apps.
AppReport make_app_report(const std::string& workspace, const std::string& image,
                          std::uint64_t version, const std::vector<guest::App>& apps);

// The API path a report goes to.
std::string app_report_path(const AppReport& report);

// The digests of the reports a server accepted, by server and image version, in a small file.
class AppReportLedger {
  public:
    // Reads file; a missing or damaged file is an empty ledger (the reports go again).
    static AppReportLedger load(fs::path file);
    // Whether the server has this report for its image version already.
    bool sent(const std::string& server, const AppReport& report) const;
    // Remembers that the server accepted report, and saves the ledger.
    Status record(const std::string& server, const AppReport& report);

  private:
    explicit AppReportLedger(fs::path file) : file_(std::move(file)) {}
    fs::path file_;
    std::map<std::string, std::string> digests_; // "server image/version" -> digest
};

} // namespace heirloom::agent
