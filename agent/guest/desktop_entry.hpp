#pragma once

// The guest's published apps, read from freedesktop.org Desktop Entry files
// (https://specifications.freedesktop.org/desktop-entry-spec/latest/): which files count, how
// an Exec line becomes an argv without a shell, and where an app's icon is.

#include "heirloom/agent/guest_protocol.hpp"

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace heirloom::guest {

namespace fs = std::filesystem;

// The keys of a file's [Desktop Entry] group that matter here, string escapes undone.
struct DesktopEntry {
    std::string type;
    std::string name;
    std::string exec;
    std::string try_exec;
    std::string icon;
    std::vector<std::string> mime_types;
    bool no_display = false;
    bool hidden = false;
};

// Parses a .desktop file's text. Fails on anything the spec calls invalid that could hide
// a different meaning: NUL bytes, invalid UTF-8, a first group other than [Desktop Entry],
// malformed lines and duplicate keys.
Result<DesktopEntry> parse_desktop_entry(std::string_view text);

// Splits an Exec value (string escapes already undone) into argv per the spec's quoting
// rules, with the field codes removed (%f %F %u %U %i %c %k and the deprecated ones) and %%
// made %. Also accepts GLib's single-quoted arguments, which real files use.
Result<std::vector<std::string>> split_exec(std::string_view exec);

// An app id from a desktop file id ("org.gnome.Calculator.desktop" -> "org.gnome.calculator"),
// or nothing when no usable character is left.
std::optional<std::string> app_id_from_file_name(std::string_view file_name);
// An app id made of any text: lower-cased, leading characters other than letters and digits
// dropped, others outside [a-z0-9._-] made '-', cut to max_id_bytes; nothing when empty.
std::optional<std::string> app_id_from_text(std::string_view text);

// A display name fit for the protocol: control and formatting characters become spaces and
// the text is cut to max_name_bytes on a character boundary.
std::string clean_app_name(std::string_view name);

// Where icons are looked for, in order: the hicolor theme's 48, 32 and 64 pixel apps folders
// and /usr/share/pixmaps.
std::vector<fs::path> default_icon_dirs();

// The PNG an Icon= value names: an absolute path to a .png, or a name looked up as NAME.png
// (or NAME when it already ends in .png) in icon_dirs. Nothing when it is missing, not a PNG
// or over max_icon_bytes.
std::optional<std::vector<std::uint8_t>> find_icon(std::string_view icon,
                                                   const std::vector<fs::path>& icon_dirs);

// A published app with the argv its Exec line gives.
struct InstalledApp {
    App app;
    std::vector<std::string> argv;
};

struct AppSources {
    std::vector<fs::path> app_dirs;  // scanned in order; the first file with an id wins
    std::vector<fs::path> icon_dirs; // see find_icon
};

// Every app the sources publish (Type=Application, not NoDisplay or Hidden, a usable Exec and
// TryExec), at most max_apps, sorted by id. Files that are skipped are reported to warn.
std::vector<InstalledApp> scan_apps(const AppSources& sources,
                                    const std::function<void(std::string_view)>& warn);

// Drops icons (largest first), then apps (last first), until an AppList of apps fits in one
// frame. Returns how many icons and apps were dropped, for the log.
std::pair<std::size_t, std::size_t> fit_into_frame(std::vector<App>& apps);

} // namespace heirloom::guest
