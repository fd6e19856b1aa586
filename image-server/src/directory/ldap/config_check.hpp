#pragma once

// Whether a directory configuration can work, checked before any connection.

#include "heirloom/server/directory.hpp"

#include <string>

namespace heirloom::server::ldap_backend {

// Why the configuration cannot work (a sentence naming the setting); empty when it can.
std::string config_problem(const DirectoryConfig& config);

} // namespace heirloom::server::ldap_backend
