#include "guest/windows_apps.hpp"

#include <sys/stat.h>

namespace heirloom::guest {

namespace {

using windows_path_detail::iequals_ascii;

std::string lower_ascii(std::string_view text) {
    std::string out(text);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z')
            c = static_cast<char>(c - 'A' + 'a');
    return out;
}

bool is_utf8_locale(std::string_view lang) {
    std::string lower = lower_ascii(lang);
    return lower.find(".utf-8") != std::string::npos || lower.find(".utf8") != std::string::npos;
}

// Why a Unix file name cannot be written in a Windows path, or nothing when it can.
std::optional<std::string> unix_name_problem(std::string_view name) {
    if (name.empty())
        return "an empty component";
    if (name == "." || name == "..")
        return "a \"" + std::string(name) + "\" component";
    if (name.find('\\') != std::string_view::npos)
        return "a backslash in a name, which Windows reads as a folder separator";
    for (char c : name) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f)
            return "a control character in a name";
        if (std::string_view("<>:\"|?*").find(c) != std::string_view::npos)
            return std::string("'") + c + "' in a name, which Windows forbids";
    }
    if (name.back() == '.' || name.back() == ' ')
        return "a name ending with a dot or a space, which Windows drops";
    return std::nullopt;
}

} // namespace

Result<std::string> find_name_ignoring_case(const fs::path& dir, std::string_view name) {
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos)
        return fail(Errc::invalid_argument, "not a file name: " + std::string(name));
    struct stat st {};
    if (::lstat((dir / std::string(name)).c_str(), &st) == 0)
        return std::string(name);
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    if (ec)
        return fail(Errc::not_found, dir.string() + " is not a folder that can be read");
    std::optional<std::string> found;
    std::size_t seen = 0;
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
        if (++seen > max_folder_entries)
            return fail(Errc::unsupported, dir.string() + " holds more than " +
                                               std::to_string(max_folder_entries) + " entries");
        std::string entry = it->path().filename().string();
        if (!iequals_ascii(entry, name))
            continue;
        if (found)
            return fail(Errc::conflict, "both " + *found + " and " + entry + " in " + dir.string() +
                                            " match " + std::string(name) +
                                            ": Windows cannot tell them apart");
        found = std::move(entry);
    }
    if (!found)
        return fail(Errc::not_found, dir.string() + " holds nothing called " + std::string(name));
    return *found;
}

Result<fs::path> prefix_drive_c(const fs::path& prefix) {
    if (!prefix.is_absolute())
        return fail(Errc::invalid_argument,
                    "the Wine prefix must be an absolute path, not \"" + prefix.string() + "\"");
    std::error_code ec;
    fs::path drive_c = fs::canonical(prefix / "drive_c", ec);
    if (ec || !fs::is_directory(drive_c, ec))
        return fail(Errc::not_found, "there is no Wine prefix at " + prefix.string() +
                                         ": rebuild this workspace's image with --windows-apps");
    fs::path linked = fs::canonical(prefix / "dosdevices" / "c:", ec);
    if (ec || linked != drive_c)
        return fail(Errc::denied, "the Wine prefix's C: drive (" +
                                      (prefix / "dosdevices" / "c:").string() +
                                      ") is not its drive_c: rebuild this workspace's image");
    return drive_c;
}

bool is_inside(const fs::path& path, const fs::path& root) {
    const std::string& p = path.native();
    const std::string& r = root.native();
    if (p == r)
        return true;
    if (!p.starts_with(r))
        return false;
    return r.ends_with('/') || p[r.size()] == '/';
}

Result<fs::path> resolve_windows_program(const fs::path& prefix, std::string_view windows_path) {
    auto parsed = HL_TRY(parse_windows_program_path(windows_path));
    if (parsed.drive != windows_program_drive)
        return fail(Errc::invalid_argument,
                    std::string("a Windows program must be on drive ") + windows_program_drive +
                        ": (the guest's Wine prefix), not " + parsed.drive + ":");
    fs::path drive_c = HL_TRY(prefix_drive_c(prefix));
    fs::path at = drive_c;
    std::string shown = std::string(1, parsed.drive) + ":";
    for (const auto& component : parsed.components) {
        shown += "\\" + component;
        auto name = find_name_ignoring_case(at, component);
        if (!name)
            return fail(name.error().code, shown + " is not in the guest: " + name.error().message);
        std::error_code ec;
        fs::path next = fs::canonical(at / *name, ec);
        if (ec)
            return fail(Errc::not_found, shown + " cannot be resolved: " + ec.message());
        if (!is_inside(next, drive_c))
            return fail(Errc::denied, shown + " leads out of drive C: (to " + next.string() +
                                          "); only files inside the Wine prefix run");
        at = std::move(next);
    }
    struct stat st {};
    if (::stat(at.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
        return fail(Errc::invalid_argument, shown + " is not a program file");
    return at;
}

Result<std::string> wine_path_of_unix_file(std::string_view unix_path) {
    auto refuse = [&](std::string_view why) {
        std::string shown;
        for (char c : unix_path.substr(0, 200)) {
            auto u = static_cast<unsigned char>(c);
            shown += u < 0x20 || u == 0x7f ? '?' : c;
        }
        return fail(Errc::invalid_argument,
                    "cannot give " + shown + " to a Windows program: " + std::string(why));
    };
    if (!unix_path.starts_with('/') || unix_path.size() == 1)
        return refuse("not an absolute path to a file");
    if (!windows_path_detail::utf16_units(unix_path))
        return refuse("not valid UTF-8");
    std::string out = "Z:";
    std::string_view rest = unix_path.substr(1);
    while (true) {
        auto slash = rest.find('/');
        std::string_view name = rest.substr(0, slash);
        if (auto problem = unix_name_problem(name))
            return refuse(*problem);
        out += '\\';
        out += name;
        if (slash == std::string_view::npos)
            break;
        rest.remove_prefix(slash + 1);
    }
    return out;
}

std::vector<std::string> wine_environment(const fs::path& prefix, std::string_view lang) {
    return {"WINEPREFIX=" + prefix.string(), "WINEDEBUG=-all", "WINEDLLOVERRIDES=mscoree,mshtml=",
            "LANG=" + (is_utf8_locale(lang) ? std::string(lang) : std::string("C.UTF-8"))};
}

Result<SpawnRequest> wine_spawn_request(const WineSettings& settings,
                                        const std::vector<std::string>& argv,
                                        std::string_view files_dir, std::string_view lang) {
    if (argv.empty())
        return fail(Errc::invalid_argument, "no program to run");
    auto wine = find_program(settings.wine);
    if (!wine)
        return fail(Errc::not_found,
                    "this workspace's image has no Wine: rebuild it with --windows-apps (" +
                        settings.wine + " is missing)");
    fs::path program = HL_TRY(resolve_windows_program(settings.prefix, argv.front()));
    SpawnRequest request;
    request.argv = {*wine, HL_TRY(parse_windows_program_path(argv.front())).text()};
    std::string files_prefix = files_dir.empty() ? std::string() : std::string(files_dir) + "/";
    bool z_checked = false;
    for (std::size_t i = 1; i < argv.size(); ++i) {
        const std::string& arg = argv[i];
        if (files_prefix.empty() || !arg.starts_with(files_prefix)) {
            request.argv.push_back(arg);
            continue;
        }
        if (!z_checked) {
            // Wine's Z: drive is / unless the prefix was changed; the file must be reachable.
            std::error_code ec;
            if (fs::canonical(settings.prefix / "dosdevices" / "z:", ec) != "/" || ec)
                return fail(Errc::unsupported,
                            "the Wine prefix has no Z: drive for /, so a Windows program "
                            "cannot open files from the host: rebuild this workspace's image");
            z_checked = true;
        }
        request.argv.push_back(HL_TRY(wine_path_of_unix_file(arg)));
    }
    request.environment = wine_environment(settings.prefix, lang);
    request.working_dir = program.parent_path().string();
    request.output = Output::discard;
    return request;
}

} // namespace heirloom::guest
