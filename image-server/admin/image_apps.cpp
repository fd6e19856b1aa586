#include "image_apps.hpp"

#include <algorithm>
#include <ctime>
#include <fmt/format.h>
#include <vector>

namespace heirloom::admin {
namespace {

std::string utc(std::int64_t t) {
    std::time_t tt = t;
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%d %H:%M", &tm);
    return text;
}

// Columns padded to the widest cell; the last column is not padded.
std::string table(const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> width;
    for (const auto& r : rows) {
        width.resize(std::max(width.size(), r.size()));
        for (std::size_t i = 0; i < r.size(); ++i)
            width[i] = std::max(width[i], r[i].size());
    }
    std::string out;
    for (const auto& r : rows) {
        for (std::size_t i = 0; i < r.size(); ++i)
            out += i + 1 < r.size() ? fmt::format("{:<{}}  ", r[i], width[i]) : r[i];
        out += "\n";
    }
    return out;
}

} // namespace

Result<std::string> format_image_apps(const Json& answer) {
    try {
        std::string image = answer.at("image").get<std::string>();
        if (answer.at("version").is_null() || answer.at("apps").empty()) {
            std::string which = answer.at("version").is_null()
                                    ? image
                                    : fmt::format("{} version {}", image,
                                                  answer.at("version").get<std::uint64_t>());
            return "no guest has reported apps for " + which +
                   " yet; they are reported when a workspace on it starts\n";
        }
        const Json& by = answer.at("reported_by");
        std::string host = by.value("hostname", "");
        std::string out = fmt::format(
            "{} version {}: reported {} UTC by {} ({}{})\n", image,
            answer.at("version").get<std::uint64_t>(),
            utc(answer.at("reported_at").get<std::int64_t>()), by.at("user").get<std::string>(),
            by.at("agent").get<std::string>(), host.empty() ? "" : ", " + host);
        std::vector<std::vector<std::string>> rows = {
            {"ID", "NAME", "ICON", "FILE TYPES", "COMMAND"}};
        for (const auto& app : answer.at("apps")) {
            std::string types;
            for (const auto& t : app.at("file_types"))
                types += (types.empty() ? "" : ",") + t.get<std::string>();
            rows.push_back({app.at("id").get<std::string>(), app.at("name").get<std::string>(),
                            app.at("icon_url").is_null() ? "no" : "yes",
                            types.empty() ? "-" : types, app.at("command").get<std::string>()});
        }
        return out + table(rows);
    } catch (const std::exception&) {
        return fail(Errc::corrupt, "the server's list of reported apps is not what this "
                                   "heirloom-admin understands; update heirloom-admin");
    }
}

} // namespace heirloom::admin
