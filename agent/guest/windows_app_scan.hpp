#pragma once

// The Windows programs a guest publishes, found in its Wine prefix: every .exe directly inside
// C:\Apps\<folder>\ and Wine's own Notepad. Each becomes an app like a .desktop one, with the
// Windows path as its command and the icon from the .exe's resources.

#include "guest/desktop_entry.hpp"

#include <cstdint>
#include <functional>
#include <span>

namespace heirloom::guest {

// Turns a PE file's bytes into a PNG of its icon (heirloom-guest gives it pe_icon_png).
using IconExtractor =
    std::function<Result<std::vector<std::uint8_t>>(std::span<const std::uint8_t> pe)>;

struct WindowsAppSources {
    fs::path prefix;    // the Wine prefix; C: is its drive_c
    IconExtractor icon; // empty: the programs are published without icons
    std::size_t max_apps = 128;
    // An .exe larger than this is published without an icon rather than read whole.
    std::uint64_t max_exe_bytes = 64ull << 20;
    // All .exe files read for icons in one scan, together.
    std::uint64_t max_read_bytes = 256ull << 20;
};

// The folder programs are published from, under drive C:.
inline constexpr std::string_view windows_apps_folder = "Apps";
// Wine's Notepad, published when the prefix has it.
inline constexpr std::string_view wine_notepad_path = "C:\\windows\\notepad.exe";
inline constexpr std::string_view wine_notepad_id = "wine-notepad";

// The Windows programs of a prefix, sorted by id, at most sources.max_apps. The id comes from
// the folder's name ("Payroll" -> "payroll"), or from folder and program when a folder holds
// several ("payroll-paysetup"); the name is the folder's. Nothing leaves drive_c: folders and
// programs whose links point out of it are skipped, as are names a Windows path cannot hold,
// .exe entries that are not regular files, and everything past the bounds. A prefix that does
// not exist gives no apps and no warning; everything skipped is reported to warn.
std::vector<InstalledApp> scan_windows_apps(const WindowsAppSources& sources,
                                            const std::function<void(std::string_view)>& warn);

// The .desktop apps and the Windows programs as one list sorted by id, at most max_apps. When
// both have an id, the .desktop app is kept and the clash reported to warn.
std::vector<InstalledApp> merge_apps(std::vector<InstalledApp> desktop_apps,
                                     std::vector<InstalledApp> windows_apps,
                                     const std::function<void(std::string_view)>& warn);

} // namespace heirloom::guest
