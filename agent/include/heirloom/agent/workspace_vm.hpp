#pragma once

// One running workspace: the decrypting export of its stored image, the VM on it, the guest
// channel to heirloom-guest and the seamless display on the host. The agent keeps one per
// started workspace. Everything the guest says is checked (guest_protocol.hpp) and a guest
// that breaks the protocol is disconnected and reported, never trusted. See docs/vm.md.

#include "heirloom/agent/guest_protocol.hpp"
#include "heirloom/agent/nbd_export.hpp"
#include "heirloom/agent/vm.hpp"

#include <functional>
#include <memory>
#include <set>

namespace heirloom::agent {

// ---- the guest channel ---------------------------------------------------------------------

class GuestChannel {
  public:
    using OnMessage = std::function<void(const guest::GuestMessage&)>;
    using OnClosed = std::function<void(const Error&)>;

    // Connects to the VM's control socket and reads guest messages on a thread of its own,
    // handing each (checked) to on_message; on a protocol violation or when the VM closes
    // the socket, on_closed is called once and reading stops.
    static Result<std::unique_ptr<GuestChannel>> connect(const fs::path& socket,
                                                         OnMessage on_message, OnClosed on_closed);
    ~GuestChannel();
    GuestChannel(const GuestChannel&) = delete;
    GuestChannel& operator=(const GuestChannel&) = delete;

    Status send(const guest::HostMessage& message);

  private:
    struct Impl;
    explicit GuestChannel(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// ---- the seamless display -----------------------------------------------------------------

struct DisplaySettings {
    std::string workspace_name;        // every window's title carries it
    std::optional<std::string> colour; // "#rrggbb": a frame of this colour around each window
    guest::DeviceControls controls;    // clipboard, file transfer, printing
    fs::path log_file;
};

// Shows the guest's windows on the user's desktop. Xpra is the Linux-guest backend; a FreeRDP
// RemoteApp backend for Windows guests would implement the same interface (docs/vm.md).
class DisplayBackend {
  public:
    virtual ~DisplayBackend() = default;
    virtual Status attach(const fs::path& channel, const DisplaySettings& settings) = 0;
    virtual bool attached() = 0; // false once the client has exited
    virtual void detach() = 0;
};

// `xpra attach` on the display channel, with the policy's controls on the client side.
std::unique_ptr<DisplayBackend> make_xpra_display();
// The xpra client's arguments for settings (exposed for tests).
std::vector<std::string> xpra_client_args(const fs::path& channel, const DisplaySettings& s);

// ---- the workspace ------------------------------------------------------------------------

struct WorkspaceVmConfig {
    std::string id;           // workspace id
    std::string display_name; // shown in window titles
    std::optional<std::string> colour;
    fs::path store_dir; // the image's store
    std::shared_ptr<trim::ImageReader> image;
    fs::path run_dir;        // private: sockets and logs
    fs::path overlay;        // the user's writes (made on first start)
    std::string overlay_key; // its key
    bool revertible = false; // discard the overlay when the workspace stops
    unsigned memory_mib = 1024;
    bool network = true;
    guest::DeviceControls controls;
    bool display = true;                 // attach the seamless display (tests may not)
    std::optional<fs::path> resume_from; // a state saved by suspend(): resume instead of boot
    crypto::Key state_key{};
    // Guest pids of the apps running when it was suspended (-1: unknown, never idle).
    std::set<std::int64_t> apps_running;
    std::optional<Accel> accel;
    // Things the user should hear of: "guest-ready", "app-exited", "vm-died", "guest-error".
    std::function<void(const std::string& event, const Json& detail)> on_event;
    // The guest's app list (with its icons), each time the guest sends one.
    std::function<void(const std::vector<guest::App>& apps)> on_apps;
};

class WorkspaceVm {
  public:
    // Starts the export and the VM; the guest then boots in the background (wait_ready).
    static Result<std::unique_ptr<WorkspaceVm>> start(WorkspaceVmConfig config);
    // Stops the VM (the guest gets a few seconds to power off) and the export.
    ~WorkspaceVm();
    WorkspaceVm(const WorkspaceVm&) = delete;
    WorkspaceVm& operator=(const WorkspaceVm&) = delete;

    // Waits until the guest agent said hello and sent its app list, and the display is
    // attached; fails early when the VM dies or the guest breaks the protocol.
    Status wait_ready(std::chrono::milliseconds timeout);
    // Starts an app in the guest: by the guest's app id, or (command not empty) with the
    // policy's command line. Returns the guest's pid.
    Result<std::int64_t> launch(const std::string& app_id, const std::vector<std::string>& command,
                                const std::vector<std::string>& args,
                                std::chrono::milliseconds timeout);
    // Sends a host file into the guest (parts of max_file_part bytes), for an app to open;
    // returns its path in the guest. The caller has checked the file transfer control (the
    // guest checks it again).
    Result<std::string> send_file(const fs::path& file, std::chrono::milliseconds timeout);
    std::vector<guest::App> apps();
    // running, booting, stopped, died
    std::string state();
    // How long no app launched through launch() has been running in a ready guest (nullopt
    // while one runs, or before the guest is ready).
    std::optional<std::chrono::seconds> idle_for();
    // Guest pids of launched apps still running.
    std::set<std::int64_t> apps_running();
    Accel accel() const;
    Vm& vm();
    Json status();
    // Powers the guest off (or kills it after timeout), detaches the display, stops the export,
    // and discards the overlay of a revertible workspace.
    void stop(std::chrono::milliseconds timeout);
    // Suspends to disk: the guest's memory and devices, encrypted under key, into
    // state_file; the overlay stays (even a revertible one) for the resume. Stopped after.
    Status suspend(const fs::path& state_file, const crypto::Key& key);

  private:
    struct Impl;
    explicit WorkspaceVm(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

} // namespace heirloom::agent
