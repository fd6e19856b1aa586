#include "guest/guest_agent.hpp"

#include "guest/guest_log.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <map>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef HEIRLOOM_GUEST_VERSION
#define HEIRLOOM_GUEST_VERSION "dev"
#endif

namespace heirloom::guest {

namespace {

constexpr std::size_t max_pending_output = 8u << 20;
constexpr auto reconnect_interval = std::chrono::milliseconds(250);

// Text from the system (strerror, file names) made fit for a message: valid UTF-8, no
// control characters, at most max_message_bytes.
std::string clean_message(std::string_view text) {
    std::string out;
    for (char c : text) {
        auto u = static_cast<unsigned char>(c);
        out += (u < 0x20 || u >= 0x7f) ? '?' : c;
        if (out.size() == max_message_bytes)
            break;
    }
    return out;
}

std::int64_t realtime_ms() {
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    return std::int64_t{now.tv_sec} * 1000 + now.tv_nsec / 1'000'000;
}

class Guest {
  public:
    Guest(const GuestOptions& options, HostPort control, std::optional<User> user,
          WineSettings wine, int signal_fd)
        : options_(options), control_(std::move(control)), user_(std::move(user)),
          wine_(std::move(wine)), signal_fd_(signal_fd) {}

    void enable_display(HostPort port) {
        server_.emplace(options_.xpra, user_ ? &*user_ : nullptr);
        relay_.emplace(std::move(port), options_.xpra.socket);
    }

    int run();

  private:
    void maintain_control(Clock::time_point now);
    void host_connected();
    void host_lost(std::string_view why);
    void read_control();
    void flush_control();
    void send(const GuestMessage& message);
    void handle_frame(const std::string& payload);
    void handle(const HostMessage& message);
    void list_apps();
    void launch(const Launch& launch);
    // Starts argv (plus the request's arguments) as the user, on the display.
    void run(const Launch& request, std::vector<std::string> argv);
    // How argv is started: as it is, or under Wine when it names a Windows program.
    Result<SpawnRequest> spawn_request_for(std::vector<std::string> argv) const;
    // Launches waiting for the display's X server: an app started before it exists could not
    // open its window. They start once it is up, or fail after display_wait.
    struct PendingLaunch {
        Launch request;
        SpawnRequest spawn;
        Clock::time_point deadline;
    };
    bool display_ready() const;
    void spawn_now(const Launch& request, const SpawnRequest& spawn);
    void start_pending(Clock::time_point now);
    void set_time(const SetTime& request);
    void apply_controls(const Controls& controls);
    // A part of a host file: stored in this session's folder, FileStored when whole.
    void receive_file(const FilePart& part);
    Result<std::string> start_file(const FilePart& part);
    void drop_incoming_file();
    void handle_signals();
    void reap_children();
    int poll_timeout(Clock::time_point now) const;
    const InstalledApp* find_app(std::string_view id) const;
    void rescan_apps();

    const GuestOptions& options_;
    HostPort control_;
    std::optional<User> user_;
    WineSettings wine_; // its prefix filled in
    int signal_fd_;
    FrameReader reader_;
    std::string out_;
    bool greeted_ = false;
    bool broken_ = false;
    bool stop_ = false;
    Clock::time_point reconnect_check_at_{};
    std::vector<InstalledApp> apps_;
    std::map<pid_t, std::uint64_t> children_; // launched apps, by pid, with their request
    std::optional<DisplayServer> server_;
    std::optional<DisplayRelay> relay_;
    std::vector<PendingLaunch> pending_;
    DeviceControls controls_; // as the host last set them
    // The file the host is sending (one at a time), and this session's folder for them.
    struct IncomingFile {
        std::uint64_t req = 0;
        std::string path;
        int fd = -1;
        std::uint64_t size = 0;
        std::uint64_t received = 0;
    };
    std::optional<IncomingFile> incoming_;
    std::string files_dir_;
};

constexpr auto display_wait = std::chrono::seconds(60);

int Guest::run() {
    log_info("started (protocol " + std::to_string(protocol_version) + ", control port " +
             control_.path() + (relay_ ? ", display " + options_.xpra.display : ", no display") +
             ")");
    while (!stop_) {
        auto now = Clock::now();
        maintain_control(now);
        if (server_)
            server_->tick(now);
        std::vector<pollfd> fds = {{signal_fd_, POLLIN, 0}};
        int control_index = -1;
        if (control_.connected()) {
            control_index = static_cast<int>(fds.size());
            fds.push_back(
                {control_.fd(), static_cast<short>(POLLIN | (out_.empty() ? 0 : POLLOUT)), 0});
        }
        if (relay_)
            relay_->add_poll_fds(fds, now);
        if (::poll(fds.data(), fds.size(), poll_timeout(now)) < 0) {
            if (errno == EINTR)
                continue;
            log_error(std::string("poll failed: ") + std::strerror(errno));
            return 1;
        }
        now = Clock::now();
        if (fds[0].revents & POLLIN)
            handle_signals();
        if (control_index >= 0 && control_.connected()) {
            short revents = fds[static_cast<std::size_t>(control_index)].revents;
            if (revents & POLLOUT)
                flush_control();
            if (control_.connected() && (revents & (POLLIN | POLLHUP | POLLERR)))
                read_control();
        }
        if (relay_)
            relay_->handle(fds, now);
        start_pending(now);
    }
    log_info("stopping");
    relay_.reset();
    server_.reset();
    return 0;
}

int Guest::poll_timeout(Clock::time_point now) const {
    std::optional<Clock::time_point> wake;
    auto earliest = [&](std::optional<Clock::time_point> at) {
        if (at && (!wake || *at < *wake))
            wake = at;
    };
    if (!control_.connected())
        earliest(reconnect_check_at_);
    if (server_)
        earliest(server_->next_wakeup());
    if (relay_)
        earliest(relay_->next_wakeup());
    if (!pending_.empty())
        earliest(now + std::chrono::milliseconds(100)); // look for the X server again soon
    if (!wake)
        return -1;
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(*wake - now).count();
    return static_cast<int>(std::clamp<std::int64_t>(ms, 0, 60'000));
}

void Guest::maintain_control(Clock::time_point now) {
    if (control_.connected() || now < reconnect_check_at_)
        return;
    reconnect_check_at_ = now + reconnect_interval;
    if (control_.try_connect())
        host_connected();
}

void Guest::host_connected() {
    log_info("the host is connected to " + control_.path());
    reader_ = FrameReader();
    out_.clear();
    greeted_ = false;
    broken_ = false;
    send(GuestHello{HEIRLOOM_GUEST_VERSION, options_.hostname});
}

void Guest::host_lost(std::string_view why) {
    log_info("the host went away (" + std::string(why) + ")");
    control_.lost();
    out_.clear();
}

void Guest::read_control() {
    char buffer[65536];
    // A bounded number of reads per wake-up, so the display relay is never starved.
    for (int round = 0; round < 16 && control_.connected(); ++round) {
        ssize_t n = control_.read(buffer, sizeof buffer);
        if (n == 0)
            return host_lost("end of stream");
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                host_lost(std::strerror(errno));
            return;
        }
        if (broken_)
            continue;
        auto frames = reader_.feed(std::string_view(buffer, static_cast<std::size_t>(n)));
        if (!frames) {
            broken_ = true;
            log_error("control stream: " + frames.error().message);
            send(GuestError{clean_message("control stream: " + frames.error().message +
                                          "; ignoring everything until the host reconnects")});
            continue;
        }
        for (const auto& payload : *frames)
            handle_frame(payload);
    }
}

void Guest::flush_control() {
    while (!out_.empty() && control_.connected()) {
        ssize_t n = control_.write(out_.data(), out_.size());
        if (n > 0) {
            out_.erase(0, static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            host_lost(std::strerror(errno));
        return;
    }
}

void Guest::send(const GuestMessage& message) {
    if (!control_.connected()) {
        log_line(LogLevel::debug,
                 "no host connected: not sending " + std::string(message_type(message)));
        return;
    }
    auto bytes = encode(message);
    if (!bytes) {
        log_error(bytes.error().message);
        return;
    }
    if (out_.size() + bytes->size() > max_pending_output) {
        log_warn("the host is not reading: dropping " + std::string(message_type(message)));
        return;
    }
    out_.append(reinterpret_cast<const char*>(bytes->data()), bytes->size());
    flush_control();
}

void Guest::handle_frame(const std::string& payload) {
    auto message = parse_host_message(payload);
    if (!message) {
        log_warn("refused a message from the host: " + message.error().message);
        send(GuestError{clean_message(message.error().message)});
        return;
    }
    handle(*message);
}

void Guest::handle(const HostMessage& message) {
    if (std::holds_alternative<HostHello>(message)) {
        greeted_ = true;
        log_info("the host said hello (protocol " + std::to_string(protocol_version) + ")");
        return;
    }
    if (!greeted_) {
        send(GuestError{"expected hello before " + std::string(message_type(message))});
        return;
    }
    if (std::holds_alternative<ListApps>(message))
        return list_apps();
    if (const auto* request = std::get_if<Launch>(&message))
        return launch(*request);
    if (const auto* request = std::get_if<SetTime>(&message))
        return set_time(*request);
    if (const auto* request = std::get_if<Controls>(&message))
        return apply_controls(*request);
    if (const auto* ping = std::get_if<Ping>(&message))
        return send(Pong{ping->seq});
    if (const auto* part = std::get_if<FilePart>(&message))
        return receive_file(*part);
}

void Guest::drop_incoming_file() {
    if (!incoming_)
        return;
    ::close(incoming_->fd);
    ::unlink(incoming_->path.c_str());
    incoming_.reset();
}

Result<std::string> Guest::start_file(const FilePart& part) {
    if (files_dir_.empty()) {
        // One folder per session of the guest agent, private to the user apps run as.
        char dir[] = "/tmp/heirloom-files-XXXXXX";
        if (!::mkdtemp(dir))
            return fail(Errc::io,
                        std::string("cannot make a folder for files: ") + std::strerror(errno));
        if (user_ && ::chown(dir, user_->uid, user_->gid) != 0)
            return fail(Errc::io, "cannot give the files folder to the user");
        files_dir_ = dir;
    }
    std::string name = safe_file_name(part.name);
    for (int n = 1; n < 1000; ++n) {
        std::string path = files_dir_ + "/" + (n == 1 ? "" : std::to_string(n) + "-") + name;
        int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno == EEXIST)
            continue;
        if (fd < 0)
            return fail(Errc::io, std::string("cannot create the file: ") + std::strerror(errno));
        if (user_ && ::fchown(fd, user_->uid, user_->gid) != 0) {
            ::close(fd);
            ::unlink(path.c_str());
            return fail(Errc::io, "cannot give the file to the user");
        }
        incoming_ = IncomingFile{part.req, path, fd, part.size, 0};
        return path;
    }
    return fail(Errc::conflict, "too many files of that name");
}

void Guest::receive_file(const FilePart& part) {
    auto refuse = [&](const std::string& why) {
        if (incoming_ && incoming_->req == part.req)
            drop_incoming_file();
        log_warn("refused a file from the host: " + why);
        send(FileFailed{part.req, clean_message(why)});
    };
    auto flow = controls_.file_transfer;
    if (flow != Direction::host_to_guest && flow != Direction::both)
        return refuse("file transfer from the host is off in this workspace");
    if (part.offset == 0) {
        drop_incoming_file(); // a new file replaces one left unfinished
        if (auto started = start_file(part); !started)
            return refuse(started.error().message);
    } else if (!incoming_ || incoming_->req != part.req || incoming_->received != part.offset ||
               incoming_->size != part.size) {
        return refuse("a part of a file out of order");
    }
    std::size_t done = 0;
    while (done < part.data.size()) {
        ssize_t n = ::write(incoming_->fd, part.data.data() + done, part.data.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return refuse(std::string("cannot write the file: ") + std::strerror(errno));
        done += static_cast<std::size_t>(n);
    }
    incoming_->received += part.data.size();
    if (incoming_->received < incoming_->size)
        return;
    ::close(incoming_->fd);
    std::string path = incoming_->path;
    incoming_.reset();
    log_info("stored a file from the host (" + std::to_string(part.size) + " bytes)");
    send(FileStored{part.req, path});
}

void Guest::rescan_apps() {
    auto warn = [](std::string_view warning) {
        log_warn(warning);
    };
    auto desktop_apps = scan_apps(options_.apps, warn);
    std::vector<InstalledApp> windows_apps;
    std::error_code ec;
    if (wine_.prefix.is_absolute() && fs::exists(wine_.prefix / "drive_c", ec)) {
        if (find_program(wine_.wine))
            windows_apps = scan_windows_apps({wine_.prefix, options_.windows_icon}, warn);
        else
            log_warn("the Windows programs in " + wine_.prefix.string() +
                     " are not published: this image has no Wine (" + wine_.wine + ")");
    }
    apps_ = merge_apps(std::move(desktop_apps), std::move(windows_apps), warn);
}

const InstalledApp* Guest::find_app(std::string_view id) const {
    auto it = std::find_if(apps_.begin(), apps_.end(),
                           [&](const InstalledApp& app) { return app.app.id == id; });
    return it == apps_.end() ? nullptr : &*it;
}

void Guest::list_apps() {
    rescan_apps();
    AppList list;
    for (const auto& app : apps_)
        list.apps.push_back(app.app);
    auto [icons, apps] = fit_into_frame(list.apps);
    if (icons > 0 || apps > 0)
        log_warn("the app list is too large for one message: left out " + std::to_string(icons) +
                 " icons and " + std::to_string(apps) + " apps");
    log_info("publishing " + std::to_string(list.apps.size()) + " apps");
    send(list);
}

void Guest::launch(const Launch& request) {
    if (!request.command.empty())
        return run(request, request.command);
    const InstalledApp* app = find_app(request.app_id);
    if (!app) {
        rescan_apps(); // it may have been installed since the last list
        app = find_app(request.app_id);
    }
    if (!app) {
        log_warn("launch " + request.app_id + ": no such app");
        return send(LaunchFailed{request.req, "no app called " + request.app_id + " here"});
    }
    run(request, app->argv);
}

void Guest::run(const Launch& request, std::vector<std::string> argv) {
    if (server_ && !server_->configured())
        return send(LaunchFailed{request.req, "the display is not set up yet: the host must send "
                                              "controls before launching apps"});
    argv.insert(argv.end(), request.args.begin(), request.args.end());
    auto spawn_request = spawn_request_for(std::move(argv));
    if (!spawn_request) {
        log_warn("launch " + request.app_id + ": " + spawn_request.error().message);
        return send(LaunchFailed{request.req, clean_message(spawn_request.error().message)});
    }
    if (server_ && !display_ready()) {
        log_info("launch " + request.app_id + ": waiting for the display to start");
        pending_.push_back({request, std::move(*spawn_request), Clock::now() + display_wait});
        return;
    }
    spawn_now(request, *spawn_request);
}

Result<SpawnRequest> Guest::spawn_request_for(std::vector<std::string> argv) const {
    SpawnRequest request;
    if (!argv.empty() && looks_like_windows_path(argv.front())) {
        const char* lang = std::getenv("LANG");
        request = HL_TRY(wine_spawn_request(wine_, argv, files_dir_, lang ? lang : ""));
    } else {
        request.argv = std::move(argv);
    }
    request.user = user_ ? &*user_ : nullptr;
    request.display = options_.xpra.display;
    return request;
}

void Guest::spawn_now(const Launch& request, const SpawnRequest& spawn_request) {
    auto pid = spawn(spawn_request);
    if (!pid) {
        log_warn("launch " + request.app_id + ": " + pid.error().message);
        return send(LaunchFailed{request.req, clean_message(pid.error().message)});
    }
    children_[*pid] = request.req;
    log_info("launched " + request.app_id + " as pid " + std::to_string(*pid));
    send(Launched{request.req, *pid});
}

bool Guest::display_ready() const {
    // The X server of display ":N" listens on /tmp/.X11-unix/XN.
    std::string number = options_.xpra.display.substr(options_.xpra.display.find(':') + 1);
    number = number.substr(0, number.find('.'));
    return ::access(("/tmp/.X11-unix/X" + number).c_str(), F_OK) == 0;
}

void Guest::start_pending(Clock::time_point now) {
    if (pending_.empty())
        return;
    bool ready = display_ready();
    auto waiting = std::move(pending_);
    pending_.clear();
    for (auto& p : waiting) {
        if (ready)
            spawn_now(p.request, p.spawn);
        else if (now >= p.deadline)
            send(LaunchFailed{p.request.req, "the display did not start within 60 s"});
        else
            pending_.push_back(std::move(p));
    }
}

void Guest::set_time(const SetTime& request) {
    if (!options_.set_clock)
        return send(GuestError{"cannot set the clock: it is turned off here (--no-clock)"});
    if (::geteuid() != 0)
        return send(GuestError{"cannot set the clock: heirloom-guest does not run as root"});
    timespec when{};
    when.tv_sec = static_cast<time_t>(request.unix_ms / 1000);
    when.tv_nsec = static_cast<long>(request.unix_ms % 1000) * 1'000'000;
    if (::clock_settime(CLOCK_REALTIME, &when) != 0)
        return send(GuestError{
            clean_message(std::string("cannot set the clock: ") + std::strerror(errno))});
    log_info("set the clock to " + std::to_string(request.unix_ms) + " ms");
    send(TimeSet{realtime_ms()});
}

void Guest::apply_controls(const Controls& request) {
    const auto& c = request.controls;
    controls_ = c;
    log_info(std::string("controls: clipboard ") + std::string(direction_name(c.clipboard)) +
             ", file transfer " + std::string(direction_name(c.file_transfer)) + ", printing " +
             (c.printing ? "on" : "off") + ", removable media " +
             (c.removable_media ? "on" : "off"));
    if (server_ && server_->apply(c, Clock::now()) && relay_)
        relay_->close_xpra();
    send(ControlsApplied{c});
}

void Guest::handle_signals() {
    signalfd_siginfo info{};
    while (::read(signal_fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        if (info.ssi_signo == SIGCHLD) {
            reap_children();
        } else if (info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT) {
            log_info(std::string("got ") + (info.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT"));
            stop_ = true;
        }
    }
}

void Guest::reap_children() {
    int status = 0;
    pid_t pid = 0;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
        if (server_ && server_->on_exit(pid, status, Clock::now())) {
            if (relay_)
                relay_->close_xpra();
            continue;
        }
        auto it = children_.find(pid);
        if (it == children_.end())
            continue; // not ours to report (an orphan, when we are init)
        children_.erase(it);
        int code = exit_code(status);
        log_info("pid " + std::to_string(pid) + " exited with code " + std::to_string(code));
        send(Exited{pid, code});
    }
}

} // namespace

int run_guest(const GuestOptions& options) {
    std::signal(SIGPIPE, SIG_IGN);
    sigset_t signals;
    sigemptyset(&signals);
    for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP})
        sigaddset(&signals, sig);
    ::sigprocmask(SIG_BLOCK, &signals, nullptr);
    int signal_fd = ::signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
    if (signal_fd < 0) {
        log_error(std::string("cannot make a signalfd: ") + std::strerror(errno));
        return 1;
    }

    std::optional<User> user;
    if (options.user) {
        auto found = lookup_user(*options.user);
        if (!found) {
            log_error(found.error().message);
            return 2;
        }
        user = std::move(*found);
        if (::geteuid() != 0 && user->uid != ::geteuid())
            log_warn("not running as root: apps run as this process's user, not " + user->name);
    } else if (::geteuid() == 0) {
        log_warn("running as root with no --user: apps will run as root");
    }

    auto control = HostPort::open(options.control_path);
    if (!control) {
        log_error("control port: " + control.error().message);
        return 2;
    }
    WineSettings wine = options.wine;
    if (wine.prefix.empty()) {
        auto owner = user ? Result<User>(*user) : current_user();
        if (owner)
            wine.prefix = fs::path(owner->home) / ".wine";
    }
    Guest guest(options, std::move(*control), std::move(user), std::move(wine), signal_fd);
    if (options.display_path) {
        auto display = HostPort::open(*options.display_path);
        if (!display) {
            log_error("display port: " + display.error().message);
            return 2;
        }
        guest.enable_display(std::move(*display));
    }
    int code = guest.run();
    ::close(signal_fd);
    return code;
}

} // namespace heirloom::guest
