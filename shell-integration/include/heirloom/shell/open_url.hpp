#pragma once

// heirloom-open, the link handler: a URL matching a published app's url_patterns opens with
// `heirloom launch APP URL` in that app's workspace; every other URL goes to the browser that
// was the user's default before Heirloom took http and https (through `gio launch`), or to
// $BROWSER when none was recorded.

#include "heirloom/shell/menu.hpp"

#include <string>
#include <vector>

namespace heirloom::shell {

// Set in the environment of the host browser we start: a heirloom-open that finds it refuses,
// so a handler loop (the previous default pointing back at us) ends at once.
inline constexpr const char* open_guard_variable = "HEIRLOOM_OPEN_ACTIVE";

// The command that opens url (argv; never run through a shell). browser is $BROWSER's value.
Result<std::vector<std::string>> open_command(const ShellPaths& paths, const Programs& programs,
                                              std::string_view url, std::string_view browser);

// heirloom-open's main: decides, then replaces itself with the command. Exit 2 on bad usage, 1
// when the URL cannot be opened (with a message saying why).
int open_main(int argc, char** argv);

} // namespace heirloom::shell
