#include "reported_apps.hpp"

#include <algorithm>
#include <cctype>

namespace heirloom::console {
namespace {

bool is_space(char c) {
    return c == ' ' || c == '\t';
}

bool ends_with_program(std::string_view word) {
    if (word.size() < 4)
        return false;
    std::string tail(word.substr(word.size() - 4));
    std::transform(tail.begin(), tail.end(), tail.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return tail == ".exe" || tail == ".com" || tail == ".bat" || tail == ".cmd";
}

bool is_drive_path(std::string_view word) {
    return word.size() >= 3 && std::isalpha(static_cast<unsigned char>(word[0])) &&
           word[1] == ':' && word[2] == '\\';
}

// A desktop-entry field code standing alone (%f, %F, %u, %U, %i, %c, %k, ...).
bool is_field_code(std::string_view word) {
    return word.size() == 2 && word[0] == '%' &&
           std::string_view("fFuUdDnNickvm").find(word[1]) != std::string_view::npos;
}

struct Word {
    std::string text;
    bool quoted = false;
};

std::vector<Word> words(std::string_view command) {
    std::vector<Word> out;
    std::size_t i = 0;
    while (i < command.size()) {
        while (i < command.size() && is_space(command[i]))
            ++i;
        if (i == command.size())
            break;
        Word w;
        while (i < command.size() && !is_space(command[i])) {
            if (command[i] != '"') {
                w.text += command[i++];
                continue;
            }
            w.quoted = true;
            for (++i; i < command.size() && command[i] != '"'; ++i) {
                if (command[i] == '\\' && i + 1 < command.size() &&
                    std::string_view("\"`$\\").find(command[i + 1]) != std::string_view::npos)
                    ++i;
                w.text += command[i];
            }
            if (i < command.size())
                ++i; // the closing quote
        }
        out.push_back(std::move(w));
    }
    return out;
}

} // namespace

std::vector<std::string> split_guest_command(std::string_view command) {
    std::vector<Word> ws = words(command);
    // An unquoted Windows path with spaces in it: join words up to the one naming the program.
    if (!ws.empty() && !ws[0].quoted && is_drive_path(ws[0].text) &&
        !ends_with_program(ws[0].text)) {
        for (std::size_t end = 1; end < ws.size(); ++end) {
            if (ws[end].quoted)
                break;
            if (ends_with_program(ws[end].text)) {
                for (std::size_t k = 1; k <= end; ++k)
                    ws[0].text += " " + ws[k].text;
                ws.erase(ws.begin() + 1, ws.begin() + static_cast<std::ptrdiff_t>(end) + 1);
                break;
            }
        }
    }
    std::vector<std::string> out;
    for (auto& w : ws) {
        if (!w.quoted && is_field_code(w.text))
            continue;
        if (!w.quoted) {
            std::string text;
            for (std::size_t i = 0; i < w.text.size(); ++i) {
                text += w.text[i];
                if (w.text[i] == '%' && i + 1 < w.text.size() && w.text[i + 1] == '%')
                    ++i; // "%%" is a literal '%'
            }
            w.text = std::move(text);
        }
        out.push_back(std::move(w.text));
    }
    return out;
}

policy::PublishedApp suggested_app(const ReportedApp& reported, const std::string& workspace) {
    policy::PublishedApp app;
    app.id = reported.id;
    app.workspace_id = workspace;
    app.display_name = reported.name;
    app.command = split_guest_command(reported.command);
    app.icon = reported.id;
    app.file_types = reported.file_types;
    return app;
}

Result<ReportedApps> fetch_reported_apps(const Connection& c, const std::string& image) {
    auto api = HL_TRY(client::ApiClient::open(c.server));
    api->set_token(c.token);
    Json doc = HL_TRY(api->get("/v1/admin/images/" + client::url_encode(image) + "/apps"));
    ReportedApps out;
    out.image = image;
    std::vector<std::string> icon_urls;
    try {
        if (!doc.at("version").is_null())
            out.version = doc.at("version").get<std::uint64_t>();
        if (auto by = doc.find("reported_by"); by != doc.end()) {
            out.reported_by = by->at("user").get<std::string>();
            std::string host = by->value("hostname", "");
            if (!host.empty())
                out.reported_by += " on " + host;
            out.reported_at = doc.at("reported_at").get<std::int64_t>();
        }
        for (const auto& a : doc.at("apps")) {
            out.apps.push_back({a.at("id").get<std::string>(),
                                a.at("name").get<std::string>(),
                                a.at("command").get<std::string>(),
                                a.at("file_types").get<std::vector<std::string>>(),
                                {}});
            icon_urls.push_back(a.at("icon_url").is_string() ? a.at("icon_url").get<std::string>()
                                                             : std::string());
        }
    } catch (const Json::exception&) {
        return fail(Errc::corrupt, "the server's list of reported apps is malformed; is the "
                                   "console as new as the server?");
    }
    for (std::size_t i = 0; i < out.apps.size(); ++i) {
        if (icon_urls[i].empty())
            continue;
        // Only paths under the admin API are followed, never another server.
        if (!icon_urls[i].starts_with("/v1/admin/images/"))
            continue;
        auto icon = api->get_text(icon_urls[i]);
        if (icon)
            out.apps[i].icon_png = std::move(*icon);
    }
    return out;
}

} // namespace heirloom::console
