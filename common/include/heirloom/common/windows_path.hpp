#pragma once

// Windows program paths ("C:\Apps\Payroll\PAY.EXE"), as an admin publishes a Windows app and
// as the guest runs it under Wine. One strict parser serves the policy, the guest channel and
// heirloom-guest, so a path the policy accepts is exactly one the guest will run. Header-only
// on purpose: the static guest takes common's headers by include path and links no
// heirloom_common.
//
// Only the plain form is accepted: a drive letter, ':', '\' and components separated by single
// backslashes, the last one an .exe. Everything Windows itself would reinterpret is refused
// (https://learn.microsoft.com/windows/win32/fileio/naming-a-file): UNC and device paths
// (\\server\share, \\?\, \\.\, \??\), drive-relative and rooted-relative paths (C:x.exe,
// \x.exe), forward slashes, "." and "..", empty components, the characters <>:"/|?* and
// control characters, names ending in a dot or a space, and the reserved device names.

#include "heirloom/common/error.hpp"
#include "heirloom/common/utf8.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace heirloom {

// The drive of the guest's Wine prefix (its drive_c): the only drive a published Windows
// program may be on.
inline constexpr char windows_program_drive = 'C';

// MAX_PATH less its terminating NUL: legacy programs cannot start from a longer path.
inline constexpr std::size_t max_windows_path_units = 259;
// The longest component NTFS allows, in UTF-16 units.
inline constexpr std::size_t max_windows_component_units = 255;

// A parsed program path: drive 'A'..'Z' (upper case) and at least one component, the last one
// the program's file name ending in ".exe" in any case.
struct WindowsPath {
    char drive = windows_program_drive;
    std::vector<std::string> components;

    // The path as Windows writes it: "C:\Apps\Payroll\PAY.EXE".
    std::string text() const {
        std::string out{drive, ':'};
        for (const auto& component : components)
            out += '\\' + component;
        return out;
    }
    friend bool operator==(const WindowsPath&, const WindowsPath&) = default;
};

namespace windows_path_detail {

inline bool is_ascii_letter(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

inline char ascii_upper(char c) {
    return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}

inline bool iequals_ascii(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return ascii_upper(x) == ascii_upper(y);
           });
}

// The number of UTF-16 units of strict UTF-8 text (no overlong forms, no surrogates, nothing
// above U+10FFFF), or nothing when it is not valid UTF-8.
inline std::optional<std::size_t> utf16_units(std::string_view s) {
    std::size_t units = 0;
    if (!for_each_code_point(s, [&](std::uint32_t cp) { units += cp >= 0x10000 ? 2 : 1; }))
        return std::nullopt;
    return units;
}

// CON, PRN, AUX, NUL, COM0-9, LPT0-9 (and the superscript digits ¹²³ Windows also treats as
// digits there), CONIN$ and CONOUT$: device names in every folder, with any extension.
inline bool is_reserved_device_name(std::string_view component) {
    std::string_view stem = component.substr(0, component.find('.'));
    while (!stem.empty() && stem.back() == ' ')
        stem.remove_suffix(1);
    for (std::string_view name : {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"})
        if (iequals_ascii(stem, name))
            return true;
    if (stem.size() < 4)
        return false;
    std::string_view head = stem.substr(0, 3);
    if (!iequals_ascii(head, "COM") && !iequals_ascii(head, "LPT"))
        return false;
    std::string_view digit = stem.substr(3);
    if (digit.size() == 1 && digit[0] >= '0' && digit[0] <= '9')
        return true;
    return digit == "\u00b9" || digit == "\u00b2" || digit == "\u00b3";
}

inline std::unexpected<Error> refuse(std::string_view path, std::string_view why) {
    std::string shown;
    for (char c : path.substr(0, 80)) {
        auto u = static_cast<unsigned char>(c);
        shown += u < 0x20 || u == 0x7f ? '?' : c;
    }
    if (path.size() > 80)
        shown += "...";
    return fail(Errc::invalid_argument,
                "\"" + shown + "\" is not a Windows program path: " + std::string(why));
}

// Why one component is refused, or nothing when it is fine.
inline std::optional<std::string> component_problem(std::string_view component) {
    if (component.empty())
        return "it has an empty component (two backslashes in a row, or one at the end)";
    if (component == "." || component == "..")
        return "it has a \"" + std::string(component) + "\" component";
    for (char c : component) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f)
            return "it holds a control character";
        if (std::string_view("<>:\"/|?*").find(c) != std::string_view::npos)
            return std::string("it holds '") + c + "', which Windows forbids in names";
    }
    if (component.front() == ' ')
        return "a name starts with a space";
    if (component.back() == '.' || component.back() == ' ')
        return "a name ends with a dot or a space, which Windows drops";
    if (is_reserved_device_name(component))
        return "\"" + std::string(component) + "\" is a reserved device name";
    auto units = utf16_units(component);
    if (!units)
        return "it is not valid UTF-8";
    if (*units > max_windows_component_units)
        return "a name is longer than 255 characters";
    return std::nullopt;
}

} // namespace windows_path_detail

// Whether argv[0] is meant as a Windows path: it starts with a drive letter and ':' or with a
// backslash. Such a string must go through parse_windows_program_path, never be taken as a
// Unix program name.
inline bool looks_like_windows_path(std::string_view text) {
    if (text.size() >= 2 && windows_path_detail::is_ascii_letter(text[0]) && text[1] == ':')
        return true;
    return !text.empty() && text[0] == '\\';
}

// Parses an absolute Windows path to a program (see the top of this file); the error says
// what is wrong and quotes the path (control characters shown as '?').
inline Result<WindowsPath> parse_windows_program_path(std::string_view text) {
    using namespace windows_path_detail;
    if (text.starts_with("\\\\"))
        return refuse(text, "UNC and device paths (\\\\server\\share, \\\\?\\, \\\\.\\) are "
                            "refused; use a path on drive C:");
    if (text.starts_with("\\"))
        return refuse(text, "it has no drive letter; write it as C:\\folder\\program.exe");
    if (text.size() < 2 || !is_ascii_letter(text[0]) || text[1] != ':')
        return refuse(text, "it must start with a drive letter, as in C:\\folder\\program.exe");
    if (text.size() == 2 || text[2] != '\\')
        return refuse(text, text.size() > 2 && text[2] == '/'
                                ? "use backslashes, as in C:\\folder\\program.exe"
                                : "it is relative to the drive's current folder; write "
                                  "C:\\folder\\program.exe");
    auto units = utf16_units(text);
    if (!units)
        return refuse(text, "it is not valid UTF-8");
    if (*units > max_windows_path_units)
        return refuse(text, "it is longer than 259 characters (MAX_PATH)");
    WindowsPath path;
    path.drive = ascii_upper(text[0]);
    std::string_view rest = text.substr(3);
    while (true) {
        auto slash = rest.find('\\');
        std::string_view component = rest.substr(0, slash);
        if (auto problem = component_problem(component))
            return refuse(text, *problem);
        path.components.emplace_back(component);
        if (slash == std::string_view::npos)
            break;
        rest.remove_prefix(slash + 1);
    }
    const std::string& file = path.components.back();
    if (file.size() <= 4 || !iequals_ascii(std::string_view(file).substr(file.size() - 4), ".exe"))
        return refuse(text, "it must name a program ending in .exe");
    return path;
}

} // namespace heirloom
