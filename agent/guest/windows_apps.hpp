#pragma once

// Windows programs run under Wine in the guest's Wine prefix. An app whose command starts with
// a Windows path (C:\Apps\Payroll\PAY.EXE) is checked again here, mapped to the file it names
// under the prefix's drive_c (which must stay inside drive_c), and run as
// `wine C:\Apps\Payroll\PAY.EXE ARGS...`; files the host sent are given to it as Z: paths.

#include "guest/launcher.hpp"
#include "heirloom/common/windows_path.hpp"

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace heirloom::guest {

namespace fs = std::filesystem;

// Where Wine and its prefix are. An empty prefix means "the apps' user's ~/.wine".
struct WineSettings {
    fs::path prefix;                    // WINEPREFIX: drive C: is prefix/drive_c
    std::string wine = "/usr/bin/wine"; // the wine program
};

// The most entries read from one folder while looking a name up regardless of case.
inline constexpr std::size_t max_folder_entries = 4096;

// The entry of dir called name, or the one whose name matches it regardless of ASCII case (as
// Wine finds files), or an error when there is none or several.
Result<std::string> find_name_ignoring_case(const fs::path& dir, std::string_view name);

// The canonical drive_c of a prefix whose C: drive (dosdevices/c:) is that drive_c, as
// wineboot makes it. Wine finds C: through that link, so a link elsewhere would make Wine run
// a file other than the one checked here.
Result<fs::path> prefix_drive_c(const fs::path& prefix);

// Whether path (canonical) is root (canonical) or inside it.
bool is_inside(const fs::path& path, const fs::path& root);

// The regular file a Windows program path names in the prefix: the path is parsed strictly and
// must be on drive C:, the prefix's dosdevices\c: must be its drive_c, and every step is
// resolved (symlinks included) without leaving drive_c.
Result<fs::path> resolve_windows_program(const fs::path& prefix, std::string_view windows_path);

// The Windows path by which a program under Wine opens a Unix file through the Z: drive (which
// is / in a Wine prefix): "/tmp/heirloom-files-x/My File.txt" -> "Z:\tmp\heirloom-files-x\My
// File.txt". Refuses relative paths, empty, "." and ".." components, names with a backslash or
// a character Windows forbids, names ending in a dot or a space, and invalid UTF-8, all of
// which Windows would read as another file.
Result<std::string> wine_path_of_unix_file(std::string_view unix_path);

// The environment a Windows program runs with: WINEPREFIX, no debug output (WINEDEBUG=-all),
// no Mono or Gecko install prompt (WINEDLLOVERRIDES="mscoree,mshtml="), and a UTF-8 locale
// (lang when it is one, C.UTF-8 otherwise) so Unicode file names reach the program intact.
std::vector<std::string> wine_environment(const fs::path& prefix, std::string_view lang);

// How to start argv (a Windows program path and its arguments) under Wine: wine, the program's
// canonical Windows path and the arguments, the program's own folder to start in (as a
// Windows shortcut does), Wine's environment, and its output discarded. Arguments naming a
// file in files_dir (where files from the host are stored) become Z: paths. Fails with a
// message for the host when Wine is missing, the prefix is missing or the path is refused.
Result<SpawnRequest> wine_spawn_request(const WineSettings& settings,
                                        const std::vector<std::string>& argv,
                                        std::string_view files_dir, std::string_view lang);

} // namespace heirloom::guest
