#include "heirloom/agent/app_report.hpp"

#include "heirloom/common/crypto.hpp"
#include "heirloom/shell/icon.hpp"

namespace heirloom::agent {
namespace {

// Entries the ledger keeps: a few per image version ever run is plenty.
constexpr std::size_t max_ledger_entries = 1024;

std::string ledger_key(const std::string& server, const AppReport& report) {
    return server + " " + report.image + "/" + std::to_string(report.version);
}

} // namespace

AppReport make_app_report(const std::string& workspace, const std::string& image,
                          std::uint64_t version, const std::vector<guest::App>& apps) {
    AppReport report{workspace, image, version, {{"apps", Json::array()}}, {}, {}};
    for (const auto& app : apps) {
        if (report.body["apps"].size() == max_reported_apps) {
            report.problems.push_back("the guest lists " + std::to_string(apps.size()) +
                                      " apps; only the first " + std::to_string(max_reported_apps) +
                                      " are reported");
            break;
        }
        Json entry = {{"id", app.id},
                      {"name", app.name},
                      {"command", app.command},
                      {"file_types", app.file_types}};
        if (!app.icon_png.empty()) {
            auto icon = shell::convert_icon(app.icon_png);
            if (icon)
                entry["icon_png_base64"] = guest::base64_encode(*icon);
            else
                report.problems.push_back("the icon of '" + app.id +
                                          "' was refused: " + icon.error().message);
        }
        report.body["apps"].push_back(std::move(entry));
    }
    report.digest = to_hex(crypto::sha256(as_bytes(report.body.dump())));
    return report;
}

std::string app_report_path(const AppReport& report) {
    // Image names are [A-Za-z0-9._-]: nothing to escape.
    return "/v1/agent/images/" + report.image + "/versions/" + std::to_string(report.version) +
           "/apps";
}

AppReportLedger AppReportLedger::load(fs::path file) {
    AppReportLedger ledger(std::move(file));
    auto text = read_text_file(ledger.file_, 1 << 20);
    if (!text)
        return ledger;
    auto doc = parse_json(*text);
    if (!doc || !doc->is_object())
        return ledger;
    for (const auto& [key, value] : doc->items())
        if (value.is_string() && ledger.digests_.size() < max_ledger_entries)
            ledger.digests_[key] = value.get<std::string>();
    return ledger;
}

bool AppReportLedger::sent(const std::string& server, const AppReport& report) const {
    auto it = digests_.find(ledger_key(server, report));
    return it != digests_.end() && it->second == report.digest;
}

Status AppReportLedger::record(const std::string& server, const AppReport& report) {
    std::string key = ledger_key(server, report);
    if (!digests_.contains(key) && digests_.size() >= max_ledger_entries)
        digests_.erase(digests_.begin());
    digests_[key] = report.digest;
    Json doc = digests_;
    return write_file_atomic(file_, as_bytes(doc.dump()), Durability::fsync, FileMode::owner_only);
}

} // namespace heirloom::agent
