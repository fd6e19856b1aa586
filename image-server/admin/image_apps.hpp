#pragma once

// heirloom-admin image apps: the apps guests reported for an image version, as a table.

#include "heirloom/common/json.hpp"

#include <string>

namespace heirloom::admin {

// The answer of GET /v1/admin/images/NAME/apps as lines for a terminal: who reported which
// version when, then one row per app (id, name, command, file types, whether it has an icon).
Result<std::string> format_image_apps(const Json& answer);

} // namespace heirloom::admin
