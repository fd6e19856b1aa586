// heirloom-guest: the agent inside a workspace VM. It talks to the host's endpoint agent over
// a virtio-serial port (docs/guest-protocol.md) and relays the Xpra display over another.

#include "guest/guest_agent.hpp"
#include "guest/guest_log.hpp"
#include "guest/pe_icon.hpp"
#include "guest/port.hpp"

#include <CLI/CLI.hpp>
#include <unistd.h>

using namespace heirloom::guest;

namespace {

constexpr const char* control_port_name = "org.heirloom.control";
constexpr const char* display_port_name = "org.heirloom.xpra";

std::string own_hostname() {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0)
        return "unknown";
    std::string clean = clean_app_name(name);
    return clean.empty() ? "unknown" : clean;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"heirloom-guest: runs inside a Heirloom workspace VM. It answers the host's "
                 "endpoint agent on the control port (publishes the apps of "
                 "/usr/share/applications and the Windows programs of its Wine prefix, "
                 "launches them, reports their exits, sets the clock, "
                 "applies device controls) and relays the display port to the Xpra server it "
                 "runs. Logs go to stderr; SIGTERM stops it."};
    app.footer("Ports are found by name in /sys/class/virtio-ports/*/name: the control port is "
               "\"org.heirloom.control\", the display port \"org.heirloom.xpra\" (QEMU: -device "
               "virtserialport,name=...). --control and --display take a virtio-serial device "
               "or a Unix socket path instead. The protocol is in docs/guest-protocol.md.");
    GuestOptions options;
    std::string control;
    std::string display;
    bool no_display = false;
    bool no_clock = false;
    std::string user;
    std::vector<std::string> apps_dirs;
    app.add_option("--control", control,
                   "Control port: a virtio-serial device or a Unix socket to connect to "
                   "(default: the virtio port named org.heirloom.control)");
    app.add_option("--display", display,
                   "Display port relayed to Xpra: a virtio-serial device or a Unix socket "
                   "(default: the virtio port named org.heirloom.xpra)");
    app.add_flag("--no-display", no_display, "Run no Xpra server and relay no display");
    app.add_option("--user", user,
                   "Account that apps and the Xpra server run as (switched to when running as "
                   "root; otherwise everything runs as the current user)");
    app.add_option("--display-number", options.xpra.display,
                   "X display of the Xpra server, given to apps as DISPLAY")
        ->default_val(":10")
        ->check([](const std::string& value) {
            bool number = value.size() >= 2 && value.size() <= 5 && value[0] == ':' &&
                          value.find_first_not_of("0123456789", 1) == std::string::npos;
            return number ? std::string() : std::string("must look like :10");
        });
    app.add_option("--xpra", options.xpra.program, "The Xpra program")->default_val("xpra");
    app.add_option("--xpra-socket", options.xpra.socket,
                   "Unix socket the Xpra server listens on (its folder is created and given "
                   "to --user)")
        ->default_val("/run/heirloom/xpra.sock");
    app.add_option("--apps-dir", apps_dirs,
                   "Another folder of .desktop files to publish, after /usr/share/applications "
                   "(repeatable; its PNG files are icons too)");
    std::string wine_prefix;
    app.add_option("--wine-prefix", wine_prefix,
                   "Wine prefix of the Windows programs: C:\\Apps\\<folder>\\*.exe is "
                   "published and C: is its drive_c (default: ~/.wine of --user)");
    app.add_option("--wine", options.wine.wine,
                   "The wine program that runs Windows programs (when it is missing, launching "
                   "one fails and none is published)")
        ->default_val("/usr/bin/wine");
    app.add_flag("--no-clock", no_clock, "Refuse set_time (the guest keeps its own clock)");
    app.set_version_flag("--version", std::string(HEIRLOOM_GUEST_VERSION));
    CLI11_PARSE(app, argc, argv);

    if (control.empty()) {
        auto port = find_virtio_port(control_port_name);
        if (!port) {
            log_error(port.error().message);
            return 2;
        }
        control = *port;
    }
    options.control_path = control;
    if (!no_display) {
        if (display.empty()) {
            auto port = find_virtio_port(display_port_name);
            if (!port) {
                log_error(port.error().message + "; use --no-display to run without one");
                return 2;
            }
            display = *port;
        }
        options.display_path = display;
    }
    if (!user.empty())
        options.user = user;
    options.set_clock = !no_clock;
    if (!wine_prefix.empty()) {
        if (wine_prefix.front() != '/') {
            log_error("--wine-prefix must be an absolute path");
            return 2;
        }
        options.wine.prefix = wine_prefix;
    }
    options.windows_icon = [](std::span<const std::uint8_t> pe) {
        return pe_icon_png(pe);
    };
    options.hostname = own_hostname();
    options.apps.app_dirs.emplace_back("/usr/share/applications");
    options.apps.icon_dirs = default_icon_dirs();
    for (const auto& dir : apps_dirs) {
        options.apps.app_dirs.emplace_back(dir);
        options.apps.icon_dirs.emplace_back(dir);
    }
    return run_guest(options);
}
