#pragma once

// Writing values of the Desktop Entry Specification (1.5) safely: every string that reaches a
// .desktop file from a policy or a guest goes through one of these.

#include <optional>
#include <string>
#include <string_view>

namespace heirloom::shell {

// The longest display name kept (bytes, cut at a character boundary), before the workspace label.
inline constexpr std::size_t max_name_bytes = 96;

// A display name made harmless: invalid UTF-8 replaced, control characters (C0, C1, DEL) and
// bidirectional or zero-width formatting characters turned into spaces, runs of spaces
// collapsed, trimmed, and cut to max_bytes. May return "" (the caller then uses an id).
std::string clean_name(std::string_view name, std::size_t max_bytes = max_name_bytes);

// The name shown in the menu: "App name (Workspace name)" — the workspace label always there,
// so a guest's "Firefox" can never pass for the host's.
std::string entry_name(std::string_view app_name, std::string_view app_id,
                       std::string_view workspace_name, std::string_view workspace_id);

// Escapes a string value for a .desktop file: \ \n \t \r as the spec says.
std::string escape_value(std::string_view value);

// A bare icon-theme name from a policy ("payroll", "accessories-calculator"), or nothing when
// it is not one: only [A-Za-z0-9_-], 1-64 characters, no dots, slashes or absolute paths.
std::optional<std::string> theme_icon_name(std::string_view icon);

// True for a MIME type the spec accepts in MimeType= (type/subtype, RFC 6838 characters).
bool is_mime_type(std::string_view type);

// True for an id that may appear in a file name and an Exec= line: policy::check_id's rules.
bool is_safe_id(std::string_view id);

} // namespace heirloom::shell
