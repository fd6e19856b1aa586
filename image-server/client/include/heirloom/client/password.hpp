#pragma once

#include "heirloom/common/error.hpp"

#include <string>

namespace heirloom::client {

// The password from HEIRLOOM_PASSWORD (then removed from the environment, so no child process
// inherits it), or asked on the terminal without echo. Never from the command line.
Result<std::string> read_password(const std::string& prompt);

} // namespace heirloom::client
