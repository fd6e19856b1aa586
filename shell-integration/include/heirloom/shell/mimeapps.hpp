#pragma once

// The user's default handlers (mimeapps.list, XDG MIME Applications spec): read the default a
// MIME type has, and set or give back ours, keeping every other line of the file as it was.

#include "heirloom/common/error.hpp"
#include "heirloom/common/file.hpp"

#include <optional>
#include <string>
#include <vector>

namespace heirloom::shell {

// The first desktop id listed for mime under [Default Applications] in text.
std::optional<std::string> default_in(std::string_view text, std::string_view mime);
// text with mime's default set to desktop_id (value "" removes the key).
std::string with_default(std::string_view text, std::string_view mime, std::string_view desktop_id);

// The handler mime has for this user, looked up as the spec orders the files
// ($XDG_CONFIG_HOME, $XDG_CONFIG_DIRS, $XDG_DATA_HOME/applications, $XDG_DATA_DIRS/applications,
// then the older defaults.list), skipping the desktop id `except` (ours).
std::optional<std::string> current_default(std::string_view mime, std::string_view except);

// The folders holding applications: $XDG_DATA_HOME/applications then $XDG_DATA_DIRS'.
std::vector<fs::path> application_dirs();
// The file of a desktop id in application_dirs(), if any ("a-b.desktop" may be a/b.desktop).
std::optional<fs::path> find_desktop_file(std::string_view desktop_id);

} // namespace heirloom::shell
