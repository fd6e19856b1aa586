#pragma once

// The guest's display: an Xpra server started with the workspace's device controls, and a
// relay that joins the display virtio-serial port to the server's Unix socket, so the host's
// `xpra attach` reaches it with no TCP port anywhere. The relay copies bytes; it never reads
// them.

#include "guest/launcher.hpp"
#include "guest/port.hpp"
#include "heirloom/agent/guest_protocol.hpp"

#include <chrono>
#include <optional>
#include <poll.h>
#include <string>
#include <vector>

namespace heirloom::guest {

using Clock = std::chrono::steady_clock;

struct XpraSettings {
    std::string program = "xpra";
    std::string display = ":10";
    std::string socket = "/run/heirloom/xpra.sock";
};

// The argv that starts the Xpra server (3.1) for these controls. Clipboard direction maps to
// Xpra's view from the server: host-to-guest is "to-server". Xpra has no direction for file
// transfer, so any direction but off enables it here and the host's client enforces the rest.
std::vector<std::string> xpra_command(const XpraSettings& settings, const DeviceControls& controls);

// Runs the Xpra server: started on the first controls, restarted when controls that it
// enforces change, and after it dies (with a growing delay).
class DisplayServer {
  public:
    DisplayServer(XpraSettings settings, const User* user)
        : settings_(std::move(settings)), user_(user) {}
    DisplayServer(const DisplayServer&) = delete;
    DisplayServer& operator=(const DisplayServer&) = delete;
    ~DisplayServer() { stop(); }

    // Starts the server, or restarts it when the controls differ from those it runs with.
    // True when a server is (re)starting, so connections to the old one are stale.
    bool apply(const DeviceControls& controls, Clock::time_point now);
    // Called for every child that exits; true when it was the server.
    bool on_exit(pid_t pid, int wait_status, Clock::time_point now);
    // Restarts a server that died, once its delay has passed.
    void tick(Clock::time_point now);
    std::optional<Clock::time_point> next_wakeup() const { return restart_at_; }
    // True once controls have been applied: apps have a display to open windows on.
    bool configured() const { return controls_.has_value(); }
    const XpraSettings& settings() const { return settings_; }
    // Stops the server (SIGTERM, then SIGKILL to its process group after 5 s) and the X
    // server it ran.
    void stop();

  private:
    void start(Clock::time_point now);
    void prepare_socket_dir() const;
    void stop_stray_x_server() const;

    XpraSettings settings_;
    const User* user_;
    std::optional<DeviceControls> controls_;
    pid_t pid_ = -1;
    bool restart_now_ = false;
    Clock::time_point started_at_{};
    std::optional<Clock::time_point> restart_at_;
    std::chrono::seconds backoff_{1};
};

// Copies bytes between the display port and a connection to the Xpra socket, with bounded
// buffers. A connection is opened when the host sends something and none is open (retrying
// until the socket accepts), and closed when either side goes away.
class DisplayRelay {
  public:
    DisplayRelay(HostPort port, std::string socket_path)
        : port_(std::move(port)), socket_path_(std::move(socket_path)) {}
    DisplayRelay(const DisplayRelay&) = delete;
    DisplayRelay& operator=(const DisplayRelay&) = delete;
    ~DisplayRelay() { close_xpra(); }

    // Adds what to wait for; remembers where, for handle().
    void add_poll_fds(std::vector<pollfd>& fds, Clock::time_point now);
    void handle(const std::vector<pollfd>& fds, Clock::time_point now);
    std::optional<Clock::time_point> next_wakeup() const;
    // Drops the connection to Xpra (the server is restarting).
    void close_xpra();

  private:
    void host_lost(const char* why);
    void xpra_lost(const char* why);
    void read_port(Clock::time_point now);
    void write_port();
    void read_xpra();
    void write_xpra();

    static constexpr std::size_t buffer_limit = 256u << 10;
    HostPort port_;
    std::string socket_path_;
    int xpra_ = -1;
    std::string to_xpra_;
    std::string to_host_;
    int port_index_ = -1;
    int xpra_index_ = -1;
    Clock::time_point retry_at_{};
    Clock::time_point reconnect_check_at_{};
    bool told_waiting_ = false;
};

} // namespace heirloom::guest
