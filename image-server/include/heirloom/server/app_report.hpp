#pragma once

// What a guest says it holds, as an agent reports it for one image version: the apps' ids,
// names, commands, file types and icons (PUT /v1/agent/images/NAME/versions/N/apps). The
// guest is the least trusted party in the system and the agent only relays it, so every field
// is held to tight rules before anything is stored or shown to an admin.

#include "heirloom/common/bytes.hpp"
#include "heirloom/common/error.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace heirloom::server {

// Limits of one report.
inline constexpr std::size_t max_reported_apps = 256;
inline constexpr std::size_t max_app_id_bytes = 64;
inline constexpr std::size_t max_app_name_bytes = 128;
inline constexpr std::size_t max_app_command_bytes = 4096;
inline constexpr std::size_t max_app_file_types = 64;
inline constexpr std::size_t max_mime_type_bytes = 127;
inline constexpr std::size_t max_app_icon_bytes = 256u << 10;
inline constexpr std::uint32_t max_app_icon_dimension = 256;
// The largest report body: the route is exempt from the 1 MiB JSON limit, as icons are large.
inline constexpr std::size_t max_app_report_body = 8u << 20;

struct ReportedApp {
    std::string id;      // [a-z0-9._-]{1,64}, starting with a letter or digit
    std::string name;    // printable UTF-8, no bidirectional or invisible formatting
    std::string command; // the guest's command line, for information only
    std::vector<std::string> file_types; // MIME types
    Bytes icon_png;                      // empty when the app has no icon
    bool operator==(const ReportedApp&) const = default;
};

// {"apps": [{"id", "name", "command", "file_types", "icon_png_base64"?}, ...]}: refuses
// unknown fields, wrong types, repeated ids and anything over the limits above.
Result<std::vector<ReportedApp>> parse_app_report(std::string_view body);

// Checks that bytes look like a small PNG: the signature, an IHDR chunk first with
// dimensions 1..max_app_icon_dimension and a valid bit depth and colour type, and an IEND
// chunk last. The server never decodes the pixels; this only keeps other files out.
Status check_icon_png(ByteView png);

// Checks a reported app id, name, command and MIME type; path prefixes the message.
Status check_app_id(std::string_view id, std::string_view path);
Status check_app_name(std::string_view name, std::string_view path);
Status check_app_command(std::string_view command, std::string_view path);
Status check_mime_type(std::string_view type, std::string_view path);

// Strict base64 (RFC 4648, standard alphabet, padded, no whitespace).
Result<Bytes> decode_base64(std::string_view text);

} // namespace heirloom::server
