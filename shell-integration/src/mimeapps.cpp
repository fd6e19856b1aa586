#include "heirloom/shell/mimeapps.hpp"

#include <cstdlib>
#include <sstream>

namespace heirloom::shell {
namespace {

constexpr std::string_view group = "[Default Applications]";

std::string env_or(const char* name, const std::string& fallback) {
    const char* v = std::getenv(name);
    return v && *v && v[0] == '/' ? std::string(v) : fallback;
}

std::string home() {
    return env_or("HOME", "/");
}

std::vector<fs::path> split_dirs(const std::string& list) {
    std::vector<fs::path> out;
    std::stringstream in(list);
    for (std::string dir; std::getline(in, dir, ':');)
        if (!dir.empty() && dir.front() == '/')
            out.emplace_back(dir);
    return out;
}

std::vector<std::string_view> lines_of(std::string_view text) {
    std::vector<std::string_view> lines;
    while (!text.empty()) {
        auto nl = text.find('\n');
        lines.push_back(text.substr(0, nl));
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    }
    return lines;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
        s.remove_suffix(1);
    return s;
}

// The key of a "key=value" line, trimmed, or "" for other lines.
std::string_view key_of(std::string_view line) {
    auto eq = line.find('=');
    return eq == std::string_view::npos ? std::string_view() : trim(line.substr(0, eq));
}

std::optional<std::string> default_in_group(std::string_view text, std::string_view mime,
                                            std::string_view group_name) {
    bool in_group = false;
    for (auto line : lines_of(text)) {
        line = trim(line);
        if (line.starts_with('[')) {
            in_group = line == group_name;
            continue;
        }
        if (!in_group || key_of(line) != mime)
            continue;
        std::string_view value = trim(line.substr(line.find('=') + 1));
        std::string_view first = trim(value.substr(0, value.find(';')));
        if (!first.empty())
            return std::string(first);
    }
    return std::nullopt;
}

} // namespace

std::optional<std::string> default_in(std::string_view text, std::string_view mime) {
    return default_in_group(text, mime, group);
}

std::string with_default(std::string_view text, std::string_view mime,
                         std::string_view desktop_id) {
    std::string out;
    bool in_group = false, found_group = false, done = false;
    std::string line_to_add = std::string(mime) + "=" + std::string(desktop_id) + ";\n";
    for (auto line : lines_of(text)) {
        std::string_view t = trim(line);
        if (t.starts_with('[')) {
            if (in_group && !done && !desktop_id.empty()) {
                out += line_to_add;
                done = true;
            }
            in_group = t == group;
            found_group = found_group || in_group;
        } else if (in_group && key_of(t) == mime) {
            if (!done && !desktop_id.empty())
                out += line_to_add;
            done = true;
            continue;
        }
        out += line;
        out += '\n';
    }
    if (desktop_id.empty())
        return out;
    if (in_group && !done)
        out += line_to_add;
    else if (!found_group)
        out += std::string(out.empty() ? "" : "\n") + std::string(group) + "\n" + line_to_add;
    return out;
}

std::vector<fs::path> application_dirs() {
    std::vector<fs::path> dirs{fs::path(env_or("XDG_DATA_HOME", home() + "/.local/share")) /
                               "applications"};
    const char* data_dirs = std::getenv("XDG_DATA_DIRS");
    for (const auto& d :
         split_dirs(data_dirs && *data_dirs ? data_dirs : "/usr/local/share:/usr/share"))
        dirs.push_back(d / "applications");
    return dirs;
}

std::optional<std::string> current_default(std::string_view mime, std::string_view except) {
    fs::path config_home = env_or("XDG_CONFIG_HOME", home() + "/.config");
    const char* config_dirs = std::getenv("XDG_CONFIG_DIRS");
    std::vector<std::pair<fs::path, std::string_view>> files{
        {config_home / "mimeapps.list", group}};
    for (const auto& d : split_dirs(config_dirs && *config_dirs ? config_dirs : "/etc/xdg"))
        files.emplace_back(d / "mimeapps.list", group);
    auto apps = application_dirs();
    for (const auto& d : apps)
        files.emplace_back(d / "mimeapps.list", group);
    for (const auto& d : apps)
        files.emplace_back(d / "defaults.list", "[Default Applications]");
    for (const auto& [file, name] : files) {
        auto text = read_text_file(file, 1 << 20);
        if (!text)
            continue;
        auto id = default_in_group(*text, mime, name);
        if (id && *id != except && find_desktop_file(*id))
            return id;
    }
    return std::nullopt;
}

std::optional<fs::path> find_desktop_file(std::string_view desktop_id) {
    if (desktop_id.empty() || desktop_id.find('/') != std::string_view::npos ||
        desktop_id.starts_with('.') || !desktop_id.ends_with(".desktop"))
        return std::nullopt;
    for (const auto& dir : application_dirs()) {
        std::error_code ec;
        fs::path direct = dir / std::string(desktop_id);
        if (fs::is_regular_file(direct, ec))
            return direct;
        // "vendor-app.desktop" may live at vendor/app.desktop.
        std::string rest(desktop_id);
        for (auto dash = rest.find('-'); dash != std::string::npos;
             dash = rest.find('-', dash + 1)) {
            std::string nested = rest;
            nested[dash] = '/';
            if (fs::is_regular_file(dir / nested, ec))
                return dir / nested;
        }
    }
    return std::nullopt;
}

} // namespace heirloom::shell
