#pragma once

// The desktop side of Heirloom: an XDG application-menu entry for every app the user's policy
// publishes, inside a "Heirloom" submenu, with the icon its guest reported, its file types and,
// when an app has URL patterns, the link handler heirloom-open. See docs/shell-integration.md.
//
// Every string from the policy or a guest is hostile: names are cleaned and escaped, and an
// Exec= line only ever holds the path of our own program and policy ids (check_id). Every file
// written carries our marker, and only files with it, owned by this user, are ever removed.

#include "heirloom/common/error.hpp"
#include "heirloom/common/file.hpp"
#include "heirloom/policy/evaluate.hpp"

#include <span>
#include <string>
#include <vector>

namespace heirloom::shell {

// Where the entries go, for one user.
struct ShellPaths {
    fs::path applications; // $XDG_DATA_HOME/applications: the .desktop entries
    fs::path directories;  // $XDG_DATA_HOME/desktop-directories: heirloom.directory
    fs::path menus;        // $XDG_CONFIG_HOME/menus/applications-merged: heirloom.menu
    fs::path mimeapps;     // $XDG_CONFIG_HOME/mimeapps.list: the default link handler
    fs::path state;        // $XDG_DATA_HOME/heirloom/shell: icon cache, URL routes (private)
    fs::path desktop;      // XDG_DESKTOP_DIR: shortcuts the policy asks for ("": none)

    fs::path icons() const { return state / "icons"; }
    // The cached icon of an app: built from policy ids only, never from a name.
    fs::path icon_file(std::string_view workspace_id, std::string_view app_id) const;
    fs::path routes_file() const { return state / "url-routes.json"; }
};

// The paths under the given XDG data and config homes (and desktop folder, "" for none).
ShellPaths shell_paths(const fs::path& data_home, const fs::path& config_home,
                       const fs::path& desktop = {});
// The paths from $XDG_DATA_HOME and $XDG_CONFIG_HOME (or their defaults under $HOME), and the
// desktop folder from user-dirs.dirs (XDG_DESKTOP_DIR, else ~/Desktop).
Result<ShellPaths> default_shell_paths();

// The programs an entry runs: never anything a guest or a policy named.
struct Programs {
    fs::path heirloom;      // `heirloom launch APP`
    fs::path heirloom_open; // the link handler
};
// heirloom and heirloom-open in dir (the folder of the running program); refused unless the
// path is absolute and made of [A-Za-z0-9/._+-] only, so it needs no quoting in Exec=.
Result<Programs> programs_in(const fs::path& dir);

// What publish did, for logs and tests.
struct PublishReport {
    std::vector<fs::path> written;    // files (re)written
    std::vector<fs::path> removed;    // files of ours no longer wanted
    std::vector<std::string> skipped; // apps left out, with why
};

// Makes the menu match policy: an entry per app of a workspace the user has, the submenu, the
// link handler when some app has URL patterns; entries of ours for anything else are removed.
// Files are written atomically (temporary file and rename) and only when their content changes.
Result<PublishReport> publish(const ShellPaths& paths, const Programs& programs,
                              const policy::EffectivePolicy& policy);

// Removes every file of ours (at logout, revocation or wipe) and gives the link handler back to
// the browser that had it. Files without our marker, or owned by another user, stay.
Result<PublishReport> unpublish(const ShellPaths& paths);

// Checks, converts and caches the icon a guest reported for an app (see icon.hpp). An empty or
// refused PNG removes the cached icon, so the entry falls back to the generic one.
Status store_guest_icon(const ShellPaths& paths, std::string_view workspace_id,
                        std::string_view app_id, std::span<const std::uint8_t> png);

} // namespace heirloom::shell
