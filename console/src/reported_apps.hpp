#pragma once

// The apps guests reported for an image (GET /v1/admin/images/NAME/apps), and how one becomes
// a published app: the console offers them when an admin publishes an app, so ids, commands,
// icons and file types are picked rather than typed. No Qt here.

#include "admin_api.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace heirloom::console {

struct ReportedApp {
    std::string id;
    std::string name;
    std::string command; // the guest's command line, as one string
    std::vector<std::string> file_types;
    std::string icon_png; // the PNG's bytes; empty when the app has no icon
};

struct ReportedApps {
    std::string image;
    std::optional<std::uint64_t> version; // none: no guest reported anything yet
    std::string reported_by;              // "alice on pc-alice"
    std::int64_t reported_at = 0;
    std::vector<ReportedApp> apps;
};

// The apps of image's newest version with a report, with their icons.
Result<ReportedApps> fetch_reported_apps(const Connection& c, const std::string& image);

// A guest's command line as arguments, one per line of the app form: words split at spaces
// and tabs, double quotes group (and inside them \" \` \$ \\ are escapes), other backslashes
// are kept (C:\Apps\Payroll\PAYROLL.EXE stays one argument, and so does an unquoted
// C:\Program Files\Pay\PAY.EXE up to its .exe), and desktop-entry field codes (%f, %U, …) go.
std::vector<std::string> split_guest_command(std::string_view command);

// The published app a reported one suggests for workspace: its id, name, command, icon (the
// reported id, which is how the host finds the icon the guest reports) and file types.
policy::PublishedApp suggested_app(const ReportedApp& reported, const std::string& workspace);

} // namespace heirloom::console
