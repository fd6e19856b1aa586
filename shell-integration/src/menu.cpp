#include "heirloom/shell/menu.hpp"

#include "heirloom/shell/desktop_entry.hpp"
#include "heirloom/shell/icon.hpp"
#include "heirloom/shell/mimeapps.hpp"
#include "heirloom/shell/url_route.hpp"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <fmt/format.h>
#include <map>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

namespace heirloom::shell {
namespace {

// The marker every file we write carries on a line of its own; only files with it (and owned
// by this user, and not symbolic links) are ever replaced or removed.
constexpr std::string_view marker = "X-Heirloom-Owner=heirloom-shell";
constexpr std::string_view entry_prefix = "heirloom-";
constexpr std::string_view handler_id = "heirloom-open.desktop";
constexpr std::string_view directory_file = "heirloom.directory";
constexpr std::string_view menu_file = "heirloom.menu";
constexpr std::string_view category = "X-Heirloom";
constexpr std::string_view generic_icon = "application-x-executable";
constexpr std::array<std::string_view, 2> url_schemes = {"x-scheme-handler/http",
                                                         "x-scheme-handler/https"};

std::string env_home(const char* name, const char* fallback_under_home) {
    if (const char* v = std::getenv(name); v && v[0] == '/')
        return v;
    const char* home = std::getenv("HOME");
    return std::string(home && home[0] == '/' ? home : "/") + "/" + fallback_under_home;
}

bool has_marker_line(std::string_view text) {
    while (!text.empty()) {
        auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        if (line == marker || line == fmt::format("<!-- {} -->", marker))
            return true;
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    }
    return false;
}

enum class Ownership { absent, ours, foreign };

// Whether path is a file we wrote: a regular file (not a link), this user's, with our marker.
Ownership ownership(const fs::path& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0)
        return errno == ENOENT ? Ownership::absent : Ownership::foreign;
    if (!S_ISREG(st.st_mode) || st.st_uid != ::geteuid() || st.st_size > (1 << 20))
        return Ownership::foreign;
    auto text = read_text_file(path, 1 << 20);
    return text && has_marker_line(*text) ? Ownership::ours : Ownership::foreign;
}

// Writes text at path atomically unless it is already there; refuses to replace a file that is
// not ours.
Status write_ours(const fs::path& path, const std::string& text, PublishReport& report) {
    switch (ownership(path)) {
    case Ownership::foreign:
        return fail(Errc::conflict, path.string() + " exists and was not written by Heirloom: "
                                                    "left as it is");
    case Ownership::ours:
        if (auto old = read_text_file(path, 1 << 20); old && *old == text)
            return {};
        break;
    case Ownership::absent:
        break;
    }
    HL_TRY(make_dirs(path.parent_path()));
    HL_TRY(write_file_atomic(path, as_bytes(text), Durability::none, FileMode::public_read));
    report.written.push_back(path);
    return {};
}

void remove_if_ours(const fs::path& path, PublishReport& report) {
    if (ownership(path) != Ownership::ours)
        return;
    std::error_code ec;
    if (fs::remove(path, ec))
        report.removed.push_back(path);
}

std::string desktop_file_name(const policy::PublishedApp& app) {
    return fmt::format("{}{}-{}.desktop", entry_prefix, app.workspace_id, app.id);
}

std::string workspace_label(const policy::Workspace& workspace) {
    std::string label = clean_name(workspace.display_name, 64);
    return label.empty() ? workspace.id : label;
}

bool takes_urls(const policy::PublishedApp& app) {
    return std::any_of(app.url_patterns.begin(), app.url_patterns.end(),
                       [](const std::string& p) { return parse_url_pattern(p).has_value(); });
}

std::string app_entry(const ShellPaths& paths, const Programs& programs,
                      const policy::PublishedApp& app, const policy::Workspace& workspace) {
    std::string icon;
    std::error_code ec;
    if (fs::path cached = paths.icon_file(app.workspace_id, app.id);
        fs::is_regular_file(cached, ec))
        icon = cached.string(); // built from ids under our own folder
    else if (auto name = theme_icon_name(app.icon))
        icon = *name;
    else
        icon = generic_icon;
    std::vector<std::string> types;
    for (const auto& t : app.file_types)
        if (is_mime_type(t) && !t.starts_with("x-scheme-handler/") &&
            std::find(types.begin(), types.end(), t) == types.end())
            types.push_back(t);
    std::string exec = fmt::format("{} launch {}", programs.heirloom.string(), app.id);
    if (!types.empty())
        exec += " --file %f";
    std::string name = entry_name(app.display_name, app.id, workspace.display_name, workspace.id);
    std::string text =
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Version=1.0\n"
        "Name=" +
        escape_value(name) +
        "\n"
        "Comment=" +
        escape_value("Runs in the Heirloom workspace " + workspace_label(workspace)) +
        "\n"
        "Icon=" +
        escape_value(icon) +
        "\n"
        "Exec=" +
        exec +
        "\n"
        "Terminal=false\n"
        "StartupNotify=false\n"
        "Categories=" +
        std::string(category) + ";\n";
    if (!types.empty()) {
        text += "MimeType=";
        for (const auto& t : types)
            text += t + ";";
        text += "\n";
    }
    text += "X-Heirloom-App=" + app.id + "\n";
    text += "X-Heirloom-Workspace=" + app.workspace_id + "\n";
    text += std::string(marker) + "\n";
    return text;
}

std::string directory_entry() {
    return "[Desktop Entry]\n"
           "Type=Directory\n"
           "Version=1.0\n"
           "Name=Heirloom\n"
           "Comment=Applications of your Heirloom workspaces\n"
           "Icon=folder\n" +
           std::string(marker) + "\n";
}

std::string menu_xml() {
    return fmt::format(
        "<!DOCTYPE Menu PUBLIC \"-//freedesktop//DTD Menu 1.0//EN\"\n"
        " \"http://www.freedesktop.org/standards/menu-spec/1.0/menu.dtd\">\n"
        "<!-- {} -->\n"
        "<!-- The Heirloom submenu: every entry in the {} category (docs/shell-integration.md) "
        "-->\n"
        "<Menu>\n"
        "  <Name>Applications</Name>\n"
        "  <Menu>\n"
        "    <Name>Heirloom</Name>\n"
        "    <Directory>{}</Directory>\n"
        "    <Include>\n"
        "      <Category>{}</Category>\n"
        "    </Include>\n"
        "  </Menu>\n"
        "</Menu>\n",
        marker, category, directory_file, category);
}

std::string handler_entry(const Programs& programs) {
    return "[Desktop Entry]\n"
           "Type=Application\n"
           "Version=1.0\n"
           "Name=Heirloom link handler\n"
           "Comment=Opens links of your Heirloom workspaces in their browser, others in yours\n"
           "Icon=" +
           std::string(generic_icon) +
           "\n"
           "Exec=" +
           programs.heirloom_open.string() +
           " %u\n"
           "Terminal=false\n"
           "NoDisplay=true\n"
           "MimeType=x-scheme-handler/http;x-scheme-handler/https;\n" +
           std::string(marker) + "\n";
}

// The desktop id that had http before we took it, as recorded when we did.
std::string recorded_previous_handler(const ShellPaths& paths) {
    auto text = read_text_file(paths.routes_file(), 1 << 20);
    if (!text)
        return {};
    auto doc = parse_json(*text);
    if (!doc)
        return {};
    auto routes = routes_from_json(*doc);
    return routes ? routes->previous_handler : std::string();
}

Status take_links(const ShellPaths& paths, const Programs& programs,
                  const policy::EffectivePolicy& policy, PublishReport& report) {
    // The first time, the browser that had http is recorded and our handler made the default;
    // later publishes keep the record and leave the user's choice alone if they changed it.
    bool first_time = !fs::exists(paths.routes_file());
    std::string previous = first_time ? current_default(url_schemes[0], handler_id).value_or("")
                                      : recorded_previous_handler(paths);
    HL_TRY(
        write_ours(paths.applications / std::string(handler_id), handler_entry(programs), report));
    HL_TRY(make_dirs(paths.state));
    std::string routes = routes_to_json(policy, previous).dump(2) + "\n";
    auto old = read_text_file(paths.routes_file(), 1 << 20);
    if (!old || *old != routes) {
        HL_TRY(write_file_atomic(paths.routes_file(), as_bytes(routes), Durability::none,
                                 FileMode::owner_only));
        report.written.push_back(paths.routes_file());
    }
    if (!first_time)
        return {};
    auto text = read_text_file(paths.mimeapps, 1 << 20);
    std::string list = text ? *text : std::string();
    std::string next = list;
    for (auto scheme : url_schemes)
        next = with_default(next, scheme, handler_id);
    if (next != list) {
        HL_TRY(make_dirs(paths.mimeapps.parent_path()));
        HL_TRY(write_file_atomic(paths.mimeapps, as_bytes(next), Durability::none,
                                 FileMode::public_read));
        report.written.push_back(paths.mimeapps);
    }
    return {};
}

// Gives http and https back to the handler they had, where they are still ours.
Status give_links_back(const ShellPaths& paths, PublishReport& report) {
    std::string previous = recorded_previous_handler(paths);
    auto text = read_text_file(paths.mimeapps, 1 << 20);
    if (text) {
        std::string next = *text;
        for (auto scheme : url_schemes)
            if (default_in(next, scheme) == handler_id)
                next = with_default(next, scheme, previous);
        if (next != *text) {
            HL_TRY(write_file_atomic(paths.mimeapps, as_bytes(next), Durability::none,
                                     FileMode::public_read));
            report.written.push_back(paths.mimeapps);
        }
    }
    remove_if_ours(paths.applications / std::string(handler_id), report);
    std::error_code ec;
    if (fs::remove(paths.routes_file(), ec))
        report.removed.push_back(paths.routes_file());
    return {};
}

// Our app entries in a folder (applications, or the desktop).
std::vector<fs::path> our_entries(const fs::path& folder) {
    std::vector<fs::path> out;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(folder, ec)) {
        std::string name = entry.path().filename().string();
        if (name.starts_with(entry_prefix) && name.ends_with(".desktop") && name != handler_id &&
            ownership(entry.path()) == Ownership::ours)
            out.push_back(entry.path());
    }
    return out;
}

// Removes cached icons of apps that are no longer published (the cache is ours alone).
void prune_icons(const ShellPaths& paths, const std::map<std::string, std::set<std::string>>& keep,
                 PublishReport& report) {
    std::error_code ec;
    for (const auto& ws : fs::directory_iterator(paths.icons(), ec)) {
        auto apps = keep.find(ws.path().filename().string());
        for (const auto& icon : fs::directory_iterator(ws.path(), ec)) {
            std::string app = icon.path().stem().string();
            if (apps != keep.end() && apps->second.contains(app))
                continue;
            if (fs::remove(icon.path(), ec))
                report.removed.push_back(icon.path());
        }
        if (apps == keep.end())
            fs::remove(ws.path(), ec);
    }
}

// XDG_DESKTOP_DIR from user-dirs.dirs ("$HOME/Desktop" form, as xdg-user-dirs writes it), or
// HOME/Desktop.
fs::path desktop_folder(const fs::path& user_dirs, const fs::path& home) {
    auto text = read_text_file(user_dirs, 1 << 16);
    std::string_view rest = text ? std::string_view(*text) : std::string_view();
    while (!rest.empty()) {
        auto nl = rest.find('\n');
        std::string_view line = rest.substr(0, nl);
        rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
        constexpr std::string_view key = "XDG_DESKTOP_DIR=\"";
        if (!line.starts_with(key) || !line.ends_with('"'))
            continue;
        std::string_view value = line.substr(key.size(), line.size() - key.size() - 1);
        if (value.starts_with("$HOME/") && value.find("..") == std::string_view::npos)
            return home / std::string(value.substr(6));
        if (value.starts_with('/') && value.find("..") == std::string_view::npos)
            return std::string(value);
    }
    return home / "Desktop";
}

} // namespace

fs::path ShellPaths::icon_file(std::string_view workspace_id, std::string_view app_id) const {
    return icons() / std::string(workspace_id) / (std::string(app_id) + ".png");
}

ShellPaths shell_paths(const fs::path& data_home, const fs::path& config_home,
                       const fs::path& desktop) {
    return ShellPaths{data_home / "applications",
                      data_home / "desktop-directories",
                      config_home / "menus" / "applications-merged",
                      config_home / "mimeapps.list",
                      data_home / "heirloom" / "shell",
                      desktop};
}

Result<ShellPaths> default_shell_paths() {
    fs::path config = env_home("XDG_CONFIG_HOME", ".config");
    return shell_paths(env_home("XDG_DATA_HOME", ".local/share"), config,
                       desktop_folder(config / "user-dirs.dirs", env_home("HOME", "")));
}

Result<Programs> programs_in(const fs::path& dir) {
    std::string text = dir.lexically_normal().string();
    if (text.empty() || text.front() != '/')
        return fail(Errc::invalid_argument, "the programs' folder must be an absolute path");
    for (char c : text) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  std::string_view("/._+-").find(c) != std::string_view::npos;
        if (!ok)
            return fail(Errc::unsupported,
                        "menu entries need Heirloom installed in a folder whose path has only "
                        "letters, digits and /._+- (it is " +
                            text + ")");
    }
    fs::path clean = dir.lexically_normal();
    return Programs{clean / "heirloom", clean / "heirloom-open"};
}

Result<PublishReport> publish(const ShellPaths& paths, const Programs& programs,
                              const policy::EffectivePolicy& policy) {
    PublishReport report;
    std::map<std::string, const policy::Workspace*> workspaces;
    for (const auto& w : policy.workspaces)
        if (is_safe_id(w.workspace.id))
            workspaces[w.workspace.id] = &w.workspace;

    std::map<std::string, std::string> wanted; // file name → content
    std::map<std::string, std::set<std::string>> icons_kept;
    std::set<std::string> shortcuts; // file names also wanted on the desktop
    bool links = false;
    for (const auto& app : policy.apps) {
        auto ws = workspaces.find(app.workspace_id);
        if (!is_safe_id(app.id) || ws == workspaces.end()) {
            report.skipped.push_back("an app with a bad id or no workspace of yours");
            continue;
        }
        std::string file = desktop_file_name(app);
        if (wanted.contains(file)) {
            report.skipped.push_back(app.id + ": its entry's file name " + file +
                                     " is taken by another app");
            continue;
        }
        wanted[file] = app_entry(paths, programs, app, *ws->second);
        if (app.desktop_shortcut)
            shortcuts.insert(file);
        icons_kept[app.workspace_id].insert(app.id);
        links = links || takes_urls(app);
    }

    Status first;
    // A file of someone else's where ours would go is left alone and reported; other errors
    // (a full disk) fail the whole publish after everything else was tried.
    auto note = [&](Status s) {
        if (s)
            return;
        report.skipped.push_back(s.error().message);
        if (first && s.error().code != Errc::conflict)
            first = std::move(s);
    };
    for (const auto& existing : our_entries(paths.applications))
        if (!wanted.contains(existing.filename().string()))
            remove_if_ours(existing, report);
    for (const auto& [file, text] : wanted)
        note(write_ours(paths.applications / file, text, report));
    // Shortcuts: the same entries, on the desktop, executable as desktops want launchers.
    if (!paths.desktop.empty()) {
        for (const auto& existing : our_entries(paths.desktop))
            if (!shortcuts.contains(existing.filename().string()))
                remove_if_ours(existing, report);
        for (const auto& file : shortcuts) {
            fs::path path = paths.desktop / file;
            auto written = write_ours(path, wanted[file], report);
            if (written && ownership(path) == Ownership::ours)
                ::chmod(path.c_str(), 0755);
            note(std::move(written));
        }
    }
    prune_icons(paths, icons_kept, report);
    if (wanted.empty()) {
        remove_if_ours(paths.menus / std::string(menu_file), report);
        remove_if_ours(paths.directories / std::string(directory_file), report);
    } else {
        note(
            write_ours(paths.directories / std::string(directory_file), directory_entry(), report));
        note(write_ours(paths.menus / std::string(menu_file), menu_xml(), report));
    }
    note(links ? take_links(paths, programs, policy, report) : give_links_back(paths, report));
    if (!first)
        return std::unexpected(first.error());
    return report;
}

Result<PublishReport> unpublish(const ShellPaths& paths) {
    PublishReport report = HL_TRY(publish(paths, Programs{}, policy::EffectivePolicy{}));
    std::error_code ec;
    fs::remove_all(paths.icons(), ec);
    return report;
}

Status store_guest_icon(const ShellPaths& paths, std::string_view workspace_id,
                        std::string_view app_id, std::span<const std::uint8_t> png) {
    if (!is_safe_id(workspace_id) || !is_safe_id(app_id))
        return fail(Errc::invalid_argument, "icon: not a workspace and app id");
    fs::path file = paths.icon_file(workspace_id, app_id);
    std::error_code ec;
    if (png.empty()) {
        fs::remove(file, ec);
        return {};
    }
    auto converted = convert_icon(png);
    if (!converted) {
        fs::remove(file, ec);
        return std::unexpected(converted.error());
    }
    HL_TRY(make_dirs(file.parent_path()));
    if (auto old = read_file(file, 1 << 20); old && *old == *converted)
        return {};
    return write_file_atomic(file, *converted, Durability::none, FileMode::public_read);
}

} // namespace heirloom::shell
