#pragma once

// heirloom-guest's event loop: the control port (hello, app list, launches, exits, time,
// device controls), the display relay and the Xpra server, and the children it started.
// Single-threaded, driven by poll(); signals arrive through a signalfd.

#include "guest/desktop_entry.hpp"
#include "guest/display.hpp"
#include "guest/windows_app_scan.hpp"
#include "guest/windows_apps.hpp"

#include <optional>
#include <string>
#include <vector>

namespace heirloom::guest {

struct GuestOptions {
    std::string control_path;                // a virtio-serial port device, or a Unix socket
    std::optional<std::string> display_path; // the display port; no display when empty
    std::optional<std::string> user;         // the account apps and Xpra run as (when root)
    XpraSettings xpra;                       // display number, socket, program
    AppSources apps;                         // where .desktop files and icons are
    WineSettings wine;                       // Windows programs; prefix empty: the user's ~/.wine
    IconExtractor windows_icon;              // icons of Windows programs; empty: none
    bool set_clock = true;                   // false: set_time is refused
    std::string hostname;                    // sent in hello
};

// Runs until SIGTERM or SIGINT; returns the process exit code.
int run_guest(const GuestOptions& options);

} // namespace heirloom::guest
