#include "guest/desktop_entry.hpp"

#include "guest/launcher.hpp"

#include <algorithm>
#include <fstream>
#include <map>
#include <set>

namespace heirloom::guest {

namespace {

constexpr std::size_t max_desktop_file_bytes = 64u << 10;

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
        text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t'))
        text.remove_suffix(1);
    return text;
}

std::unexpected<Error> bad_line(std::size_t line, std::string_view what) {
    return fail(Errc::corrupt, "line " + std::to_string(line) + ": " + std::string(what));
}

// Undoes the escapes of string values (\s \n \t \r \\); other backslashes stay for the Exec
// quoting rules, which the spec applies afterwards.
std::string unescape_string(std::string_view value) {
    std::string out;
    for (std::size_t i = 0; i < value.size(); ++i) {
        if (value[i] != '\\' || i + 1 == value.size()) {
            out += value[i];
            continue;
        }
        switch (value[i + 1]) {
        case 's':
            out += ' ';
            break;
        case 'n':
            out += '\n';
            break;
        case 't':
            out += '\t';
            break;
        case 'r':
            out += '\r';
            break;
        case '\\':
            out += '\\';
            break;
        default:
            out += '\\';
            out += value[i + 1];
            break;
        }
        ++i;
    }
    return out;
}

// A list value (MimeType=a;b;), with "\;" standing for a literal semicolon.
std::vector<std::string> split_list(std::string_view value) {
    std::vector<std::string> items;
    std::string current;
    for (std::size_t i = 0; i < value.size(); ++i) {
        if (value[i] == '\\' && i + 1 < value.size() && value[i + 1] == ';') {
            current += ';';
            ++i;
        } else if (value[i] == ';') {
            if (!current.empty())
                items.push_back(std::move(current));
            current.clear();
        } else {
            current += value[i];
        }
    }
    if (!current.empty())
        items.push_back(std::move(current));
    return items;
}

bool is_key_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

Result<bool> parse_bool(std::size_t line, std::string_view key, std::string_view value) {
    if (value == "true")
        return true;
    if (value == "false")
        return false;
    return bad_line(line, std::string(key) + " must be true or false");
}

// What a field code after '%' does: keep a literal '%', drop it, or fail.
enum class FieldCode { percent, drop, invalid };

FieldCode field_code(char c) {
    if (c == '%')
        return FieldCode::percent;
    if (std::string_view("fFuUickdDnNvm").find(c) != std::string_view::npos)
        return FieldCode::drop;
    return FieldCode::invalid;
}

bool is_separator(char c) {
    return c == ' ' || c == '\t';
}

// One argument of an Exec line, starting at exec[pos]; pos ends after it.
struct ExecWord {
    std::string text;
    bool keep = false; // quoted, or had characters of its own (not just field codes)
};

Result<ExecWord> exec_word(std::string_view exec, std::size_t& pos) {
    ExecWord word;
    char quote = 0;
    while (pos < exec.size()) {
        char c = exec[pos];
        if (quote == 0 && is_separator(c))
            break;
        if (quote == 0 && (c == '"' || c == '\'')) {
            if (!word.text.empty() || word.keep)
                return fail(Errc::corrupt, "a quote in the middle of an argument");
            quote = c;
            word.keep = true;
            ++pos;
            continue;
        }
        if (quote != 0 && c == quote) {
            ++pos;
            if (pos < exec.size() && !is_separator(exec[pos]))
                return fail(Errc::corrupt, "text right after a closing quote");
            return word;
        }
        if (c == '\\' && quote != '\'') {
            if (pos + 1 == exec.size())
                return fail(Errc::corrupt, "a backslash at the end");
            char next = exec[pos + 1];
            if (quote == '"' && std::string_view("\"`$\\").find(next) == std::string_view::npos)
                return fail(Errc::corrupt,
                            std::string("invalid escape \\") + next + " in a quoted argument");
            word.text += next;
            word.keep = true;
            pos += 2;
            continue;
        }
        if (c == '%') {
            if (pos + 1 == exec.size())
                return fail(Errc::corrupt, "a lone % at the end");
            switch (field_code(exec[pos + 1])) {
            case FieldCode::percent:
                word.text += '%';
                word.keep = true;
                break;
            case FieldCode::drop:
                break;
            case FieldCode::invalid:
                return fail(Errc::corrupt, std::string("unknown field code %") + exec[pos + 1]);
            }
            pos += 2;
            continue;
        }
        word.text += c;
        word.keep = true;
        ++pos;
    }
    if (quote != 0)
        return fail(Errc::corrupt, "an unterminated quote");
    return word;
}

bool has_control_character(std::string_view text) {
    return std::any_of(text.begin(), text.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7f;
    });
}

std::optional<std::vector<std::uint8_t>> read_png(const fs::path& path) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec))
        return std::nullopt;
    auto size = fs::file_size(path, ec);
    if (ec || size > max_icon_bytes)
        return std::nullopt;
    std::ifstream in(path, std::ios::binary);
    std::vector<std::uint8_t> bytes(size);
    if (!in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size)))
        return std::nullopt;
    if (!is_png(bytes))
        return std::nullopt;
    return bytes;
}

Result<std::string> read_small_file(const fs::path& path) {
    std::error_code ec;
    auto size = fs::file_size(path, ec);
    if (ec)
        return fail(Errc::io, "cannot read it: " + ec.message());
    if (size > max_desktop_file_bytes)
        return fail(Errc::corrupt,
                    "larger than " + std::to_string(max_desktop_file_bytes >> 10) + " KiB");
    std::ifstream in(path, std::ios::binary);
    std::string text(size, '\0');
    if (!in.read(text.data(), static_cast<std::streamsize>(size)))
        return fail(Errc::io, "cannot read it");
    return text;
}

// The desktop file id of a file under an applications folder: "kde/foo.desktop" -> "kde-foo".
std::string desktop_file_id(const fs::path& relative) {
    std::string id = relative.generic_string();
    std::replace(id.begin(), id.end(), '/', '-');
    return id;
}

// Builds the published app from one desktop file, or says why it is not published.
Result<InstalledApp> app_from_file(const fs::path& path, const std::string& id,
                                   const std::vector<fs::path>& icon_dirs) {
    auto text = HL_TRY(read_small_file(path));
    auto entry = HL_TRY(parse_desktop_entry(text));
    if (entry.type != "Application")
        return fail(Errc::unsupported, "not Type=Application");
    if (entry.no_display || entry.hidden)
        return fail(Errc::unsupported, "NoDisplay or Hidden");
    if (entry.exec.empty())
        return fail(Errc::corrupt, "no Exec line");
    if (entry.exec.size() > max_command_bytes)
        return fail(Errc::corrupt,
                    "Exec line longer than " + std::to_string(max_command_bytes) + " bytes");
    auto argv = HL_TRY_CTX(split_exec(entry.exec), "Exec");
    if (!entry.try_exec.empty() && !find_program(entry.try_exec))
        return fail(Errc::not_found, "TryExec program " + entry.try_exec + " is not installed");
    InstalledApp installed;
    installed.argv = std::move(argv);
    installed.app.id = id;
    installed.app.name = clean_app_name(entry.name);
    if (installed.app.name.empty())
        installed.app.name = id;
    installed.app.command = entry.exec;
    for (auto& type : entry.mime_types)
        if (installed.app.file_types.size() < max_file_types && type.size() <= max_name_bytes &&
            is_valid_mime_type(type))
            installed.app.file_types.push_back(std::move(type));
    if (!entry.icon.empty())
        installed.app.icon_png =
            find_icon(entry.icon, icon_dirs).value_or(std::vector<std::uint8_t>{});
    return installed;
}

// Desktop files under dir (one level of sub-folders, as some packages use), sorted.
std::vector<fs::path> desktop_files(const fs::path& dir) {
    std::vector<fs::path> files;
    std::error_code ec;
    fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
    for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it.depth() > 1) {
            it.disable_recursion_pending();
            continue;
        }
        if (it->path().extension() == ".desktop" && it->is_regular_file(ec))
            files.push_back(fs::relative(it->path(), dir, ec));
    }
    std::sort(files.begin(), files.end());
    return files;
}

} // namespace

Result<DesktopEntry> parse_desktop_entry(std::string_view text) {
    if (text.size() > max_desktop_file_bytes)
        return fail(Errc::corrupt, "larger than 64 KiB");
    if (text.find('\0') != std::string_view::npos)
        return fail(Errc::corrupt, "contains a NUL byte");
    if (!is_valid_utf8(text))
        return fail(Errc::corrupt, "not valid UTF-8");
    DesktopEntry entry;
    std::set<std::string, std::less<>> seen;
    bool in_entry_group = false;
    bool seen_group = false;
    std::size_t line_number = 0;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        std::size_t end = std::min(text.find('\n', pos), text.size());
        std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        ++line_number;
        if (!line.empty() && line.back() == '\r')
            line.remove_suffix(1);
        line = trim(line);
        if (line.empty() || line.front() == '#')
            continue;
        if (line.front() == '[') {
            if (line.back() != ']' || line.size() < 3)
                return bad_line(line_number, "malformed group header");
            std::string_view group = line.substr(1, line.size() - 2);
            if (!seen_group && group != "Desktop Entry")
                return bad_line(line_number, "the first group must be [Desktop Entry]");
            if (seen_group && group == "Desktop Entry")
                return bad_line(line_number, "a second [Desktop Entry] group");
            in_entry_group = !seen_group;
            seen_group = true;
            continue;
        }
        auto equals = line.find('=');
        if (equals == std::string_view::npos)
            return bad_line(line_number, "neither a group, a key nor a comment");
        if (!seen_group)
            return bad_line(line_number, "a key before the [Desktop Entry] group");
        std::string_view key = trim(line.substr(0, equals));
        std::string_view value = trim(line.substr(equals + 1));
        std::string_view base = key.substr(0, key.find('['));
        if (base.empty() || !std::all_of(base.begin(), base.end(), is_key_char))
            return bad_line(line_number, "malformed key");
        if (!in_entry_group)
            continue;
        if (!seen.insert(std::string(key)).second)
            return bad_line(line_number, "duplicate key " + std::string(key));
        if (base.size() != key.size())
            continue; // a localized value; the untranslated one is published
        if (key == "Type")
            entry.type = unescape_string(value);
        else if (key == "Name")
            entry.name = unescape_string(value);
        else if (key == "Exec")
            entry.exec = unescape_string(value);
        else if (key == "TryExec")
            entry.try_exec = unescape_string(value);
        else if (key == "Icon")
            entry.icon = unescape_string(value);
        else if (key == "MimeType")
            entry.mime_types = split_list(value);
        else if (key == "NoDisplay")
            entry.no_display = HL_TRY(parse_bool(line_number, key, value));
        else if (key == "Hidden")
            entry.hidden = HL_TRY(parse_bool(line_number, key, value));
    }
    if (!seen_group)
        return fail(Errc::corrupt, "no [Desktop Entry] group");
    return entry;
}

Result<std::vector<std::string>> split_exec(std::string_view exec) {
    if (has_control_character(exec))
        return fail(Errc::corrupt, "a control character in the command");
    std::vector<std::string> argv;
    std::size_t pos = 0;
    while (pos < exec.size()) {
        if (is_separator(exec[pos])) {
            ++pos;
            continue;
        }
        auto word = HL_TRY(exec_word(exec, pos));
        if (word.keep)
            argv.push_back(std::move(word.text));
    }
    if (argv.empty() || argv.front().empty())
        return fail(Errc::corrupt, "no program to run");
    return argv;
}

std::optional<std::string> app_id_from_file_name(std::string_view file_name) {
    if (file_name.ends_with(".desktop"))
        file_name.remove_suffix(8);
    return app_id_from_text(file_name);
}

std::optional<std::string> app_id_from_text(std::string_view text) {
    std::string id;
    for (char c : text) {
        if (c >= 'A' && c <= 'Z')
            c = static_cast<char>(c - 'A' + 'a');
        bool allowed =
            (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (id.empty() && !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            continue;
        id += allowed ? c : '-';
        if (id.size() == max_id_bytes)
            break;
    }
    if (!is_valid_app_id(id))
        return std::nullopt;
    return id;
}

std::string clean_app_name(std::string_view name) {
    std::string out;
    std::size_t i = 0;
    while (i < name.size()) {
        auto b0 = static_cast<unsigned char>(name[i]);
        std::size_t len = b0 < 0x80 ? 1 : b0 < 0xe0 ? 2 : b0 < 0xf0 ? 3 : 4;
        len = std::min(len, name.size() - i);
        std::string_view ch = name.substr(i, len);
        i += len;
        bool clean = is_clean_name(ch);
        if (out.size() + (clean ? ch.size() : 1) > max_name_bytes)
            break;
        out += clean ? std::string(ch) : std::string(" ");
    }
    return std::string(trim(out));
}

std::vector<fs::path> default_icon_dirs() {
    return {"/usr/share/icons/hicolor/48x48/apps", "/usr/share/icons/hicolor/32x32/apps",
            "/usr/share/icons/hicolor/64x64/apps", "/usr/share/pixmaps"};
}

std::optional<std::vector<std::uint8_t>> find_icon(std::string_view icon,
                                                   const std::vector<fs::path>& icon_dirs) {
    if (icon.empty() || icon.find('\0') != std::string_view::npos)
        return std::nullopt;
    if (icon.front() == '/')
        return icon.ends_with(".png") ? read_png(fs::path(icon)) : std::nullopt;
    if (icon.find('/') != std::string_view::npos || icon == "." || icon == "..")
        return std::nullopt;
    std::string file(icon);
    if (!icon.ends_with(".png"))
        file += ".png";
    for (const auto& dir : icon_dirs)
        if (auto png = read_png(dir / file))
            return png;
    return std::nullopt;
}

std::vector<InstalledApp> scan_apps(const AppSources& sources,
                                    const std::function<void(std::string_view)>& warn) {
    std::map<std::string, InstalledApp> apps;
    for (const auto& dir : sources.app_dirs) {
        for (const auto& relative : desktop_files(dir)) {
            std::string file_id = desktop_file_id(relative);
            auto id = app_id_from_file_name(file_id);
            if (!id) {
                warn(file_id + ": skipped: no usable app id in the file name");
                continue;
            }
            if (apps.contains(*id))
                continue;
            auto app = app_from_file(dir / relative, *id, sources.icon_dirs);
            if (!app) {
                if (app.error().code != Errc::unsupported)
                    warn((dir / relative).string() + ": skipped: " + app.error().message);
                continue;
            }
            if (auto checked = encode(GuestMessage(AppList{{app->app}})); !checked) {
                warn((dir / relative).string() + ": skipped: " + checked.error().message);
                continue;
            }
            apps.emplace(*id, std::move(*app));
        }
    }
    std::vector<InstalledApp> out;
    for (auto& [id, app] : apps) {
        if (out.size() == max_apps) {
            warn("more than " + std::to_string(max_apps) + " apps: publishing the first ones");
            break;
        }
        out.push_back(std::move(app));
    }
    return out;
}

std::pair<std::size_t, std::size_t> fit_into_frame(std::vector<App>& apps) {
    // Sizes are estimated from each app's own JSON, with room for the envelope and commas;
    // the final encode decides.
    auto app_size = [](const App& app) {
        return to_json(GuestMessage(AppList{{app}})).dump().size();
    };
    std::size_t budget = max_frame_size - 64;
    std::size_t total = 0;
    for (const auto& app : apps)
        total += app_size(app);
    std::vector<std::size_t> by_icon(apps.size());
    for (std::size_t i = 0; i < apps.size(); ++i)
        by_icon[i] = i;
    std::sort(by_icon.begin(), by_icon.end(), [&](std::size_t a, std::size_t b) {
        return apps[a].icon_png.size() > apps[b].icon_png.size();
    });
    std::size_t icons_dropped = 0;
    for (std::size_t index : by_icon) {
        if (total <= budget || apps[index].icon_png.empty())
            break;
        std::size_t before = app_size(apps[index]);
        apps[index].icon_png.clear();
        total -= before - app_size(apps[index]);
        ++icons_dropped;
    }
    std::size_t apps_dropped = 0;
    while (!apps.empty() && (total > budget || !encode(GuestMessage(AppList{apps})))) {
        total -= std::min(total, app_size(apps.back()));
        apps.pop_back();
        ++apps_dropped;
    }
    return {icons_dropped, apps_dropped};
}

} // namespace heirloom::guest
