#include "guest/display.hpp"

#include "guest/guest_log.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace heirloom::guest {

namespace {

constexpr auto reconnect_interval = std::chrono::milliseconds(250);
constexpr auto connect_retry_interval = std::chrono::milliseconds(200);

const char* yes_no(bool value) {
    return value ? "yes" : "no";
}

// The controls Xpra enforces; a change in the others needs no restart.
bool same_for_xpra(const DeviceControls& a, const DeviceControls& b) {
    return a.clipboard == b.clipboard &&
           (a.file_transfer == Direction::off) == (b.file_transfer == Direction::off) &&
           a.printing == b.printing;
}

bool would_block() {
    return errno == EAGAIN || errno == EWOULDBLOCK;
}

} // namespace

std::vector<std::string> xpra_command(const XpraSettings& settings,
                                      const DeviceControls& controls) {
    std::vector<std::string> argv = {settings.program,
                                     "start",
                                     settings.display,
                                     "--daemon=no",
                                     "--bind=" + settings.socket,
                                     "--start-via-proxy=no",
                                     "--systemd-run=no",
                                     "--mdns=no",
                                     "--html=off",
                                     "--pulseaudio=no",
                                     "--notifications=no",
                                     "--webcam=no",
                                     "--speaker=off",
                                     "--microphone=off",
                                     "--dbus-proxy=no",
                                     "--dbus-control=no",
                                     "--dbus-launch="};
    argv.push_back(std::string("--clipboard=") + yes_no(controls.clipboard != Direction::off));
    if (controls.clipboard == Direction::host_to_guest)
        argv.emplace_back("--clipboard-direction=to-server");
    else if (controls.clipboard == Direction::guest_to_host)
        argv.emplace_back("--clipboard-direction=to-client");
    else if (controls.clipboard == Direction::both)
        argv.emplace_back("--clipboard-direction=both");
    argv.push_back(std::string("--file-transfer=") +
                   yes_no(controls.file_transfer != Direction::off));
    argv.push_back(std::string("--printing=") + yes_no(controls.printing));
    return argv;
}

bool DisplayServer::apply(const DeviceControls& controls, Clock::time_point now) {
    bool first = !controls_;
    bool restart = !first && !same_for_xpra(*controls_, controls);
    controls_ = controls;
    if (first) {
        start(now);
        return true;
    }
    if (!restart)
        return false;
    if (pid_ > 0) {
        log_info("display: controls changed, restarting the Xpra server");
        ::kill(pid_, SIGTERM); // Xpra stops its X server itself; on_exit starts the new one
        restart_now_ = true;
        return true;
    }
    restart_at_.reset();
    start(now);
    return true;
}

bool DisplayServer::on_exit(pid_t pid, int wait_status, Clock::time_point now) {
    if (pid != pid_ || pid <= 0)
        return false;
    pid_ = -1;
    if (restart_now_) {
        restart_now_ = false;
        start(now);
        return true;
    }
    if (now - started_at_ > std::chrono::minutes(1))
        backoff_ = std::chrono::seconds(1);
    log_warn("display: the Xpra server exited with code " + std::to_string(exit_code(wait_status)) +
             "; starting it again in " + std::to_string(backoff_.count()) + " s");
    restart_at_ = now + backoff_;
    backoff_ = std::min(backoff_ * 2, std::chrono::seconds(30));
    return true;
}

void DisplayServer::tick(Clock::time_point now) {
    if (restart_at_ && now >= *restart_at_) {
        restart_at_.reset();
        start(now);
    }
}

void DisplayServer::prepare_socket_dir() const {
    namespace fs = std::filesystem;
    fs::path socket(settings_.socket);
    std::error_code ec;
    fs::create_directories(socket.parent_path(), ec);
    if (::geteuid() == 0 && user_) {
        if (::chown(socket.parent_path().c_str(), user_->uid, user_->gid) != 0)
            log_warn("display: cannot give " + socket.parent_path().string() + " to " +
                     user_->name + ": " + std::strerror(errno));
        ::chmod(socket.parent_path().c_str(), 0755);
    }
    struct stat st {};
    if (::lstat(socket.c_str(), &st) == 0 && S_ISSOCK(st.st_mode))
        ::unlink(socket.c_str());
}

void DisplayServer::start(Clock::time_point now) {
    stop_stray_x_server();
    prepare_socket_dir();
    auto argv = xpra_command(settings_, *controls_);
    SpawnRequest request;
    request.argv = argv;
    request.user = user_;
    auto pid = spawn(request);
    started_at_ = now;
    if (!pid) {
        log_error("display: cannot start the Xpra server: " + pid.error().message +
                  "; trying again in " + std::to_string(backoff_.count()) + " s");
        restart_at_ = now + backoff_;
        backoff_ = std::min(backoff_ * 2, std::chrono::seconds(30));
        return;
    }
    pid_ = *pid;
    std::string command;
    for (const auto& arg : argv)
        command += (command.empty() ? "" : " ") + arg;
    log_info("display: started the Xpra server (pid " + std::to_string(pid_) + "): " + command);
}

void DisplayServer::stop() {
    if (pid_ <= 0)
        return;
    ::kill(pid_, SIGTERM);
    auto deadline = Clock::now() + std::chrono::seconds(5);
    while (Clock::now() < deadline && ::waitpid(pid_, nullptr, WNOHANG) != pid_)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (Clock::now() >= deadline) {
        log_warn("display: the Xpra server did not stop in 5 s; killing it");
        ::kill(-pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    pid_ = -1;
    stop_stray_x_server();
}

void DisplayServer::stop_stray_x_server() const {
    // Xpra runs its X server in a session of its own and, when it dies badly, leaves it
    // behind holding the display. The X server's lock file names it.
    std::string lock = "/tmp/.X" + settings_.display.substr(1) + "-lock";
    std::ifstream in(lock);
    long pid = 0;
    if (!(in >> pid) || pid <= 1)
        return;
    std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
    std::string name;
    if (!std::getline(comm, name) || !name.starts_with("Xvfb"))
        return;
    log_info("display: stopping the X server Xpra left behind (pid " + std::to_string(pid) + ")");
    auto x_server = static_cast<pid_t>(pid);
    ::kill(x_server, SIGTERM);
    auto deadline = Clock::now() + std::chrono::seconds(3);
    while (Clock::now() < deadline && std::filesystem::exists(lock))
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (std::filesystem::exists(lock))
        ::kill(x_server, SIGKILL);
}

void DisplayRelay::add_poll_fds(std::vector<pollfd>& fds, Clock::time_point now) {
    port_index_ = xpra_index_ = -1;
    if (!port_.connected())
        return;
    short port_events = 0;
    if (xpra_ >= 0 ? to_xpra_.size() < buffer_limit : now >= retry_at_)
        port_events |= POLLIN;
    if (!to_host_.empty())
        port_events |= POLLOUT;
    if (port_events != 0) {
        port_index_ = static_cast<int>(fds.size());
        fds.push_back({port_.fd(), port_events, 0});
    }
    if (xpra_ < 0)
        return;
    short xpra_events = 0;
    if (to_host_.size() < buffer_limit)
        xpra_events |= POLLIN;
    if (!to_xpra_.empty())
        xpra_events |= POLLOUT;
    xpra_index_ = static_cast<int>(fds.size());
    fds.push_back({xpra_, xpra_events, 0});
}

void DisplayRelay::handle(const std::vector<pollfd>& fds, Clock::time_point now) {
    if (xpra_index_ >= 0 && xpra_ >= 0) {
        short revents = fds[static_cast<std::size_t>(xpra_index_)].revents;
        if (revents & POLLOUT)
            write_xpra();
        if (xpra_ >= 0 && (revents & (POLLIN | POLLHUP | POLLERR)))
            read_xpra();
    }
    if (port_index_ >= 0 && port_.connected()) {
        short revents = fds[static_cast<std::size_t>(port_index_)].revents;
        if (revents & POLLOUT)
            write_port();
        if (port_.connected() && (revents & POLLIN))
            read_port(now);
        else if (port_.connected() && (revents & (POLLHUP | POLLERR)))
            host_lost("it hung up");
    }
    port_index_ = xpra_index_ = -1;
    if (!port_.connected() && now >= reconnect_check_at_) {
        reconnect_check_at_ = now + reconnect_interval;
        if (port_.try_connect())
            log_info("display: the host is connected to " + port_.path());
    }
}

std::optional<Clock::time_point> DisplayRelay::next_wakeup() const {
    if (!port_.connected())
        return reconnect_check_at_;
    if (xpra_ < 0)
        return retry_at_;
    return std::nullopt;
}

void DisplayRelay::close_xpra() {
    if (xpra_ >= 0)
        ::close(xpra_);
    xpra_ = -1;
    to_xpra_.clear();
}

void DisplayRelay::host_lost(const char* why) {
    log_info(std::string("display: the host went away (") + why + ")" +
             (xpra_ >= 0 ? "; closing its Xpra connection" : ""));
    close_xpra();
    to_host_.clear();
    port_.lost();
}

void DisplayRelay::xpra_lost(const char* why) {
    log_info(std::string("display: the Xpra connection ended (") + why + ")");
    close_xpra();
}

void DisplayRelay::read_port(Clock::time_point now) {
    if (xpra_ < 0) {
        xpra_ = connect_unix_socket(socket_path_);
        if (xpra_ < 0) {
            if (!told_waiting_)
                log_info("display: waiting for the Xpra server to accept on " + socket_path_);
            told_waiting_ = true;
            retry_at_ = now + connect_retry_interval;
            return;
        }
        told_waiting_ = false;
        log_info("display: relaying " + port_.path() + " to " + socket_path_);
    }
    char buffer[65536];
    std::size_t room = std::min(sizeof buffer, buffer_limit - to_xpra_.size());
    ssize_t n = port_.read(buffer, room);
    if (n > 0)
        to_xpra_.append(buffer, static_cast<std::size_t>(n));
    else if (n == 0)
        host_lost("end of stream");
    else if (!would_block())
        host_lost(std::strerror(errno));
}

void DisplayRelay::write_port() {
    ssize_t n = port_.write(to_host_.data(), to_host_.size());
    if (n > 0)
        to_host_.erase(0, static_cast<std::size_t>(n));
    else if (n < 0 && !would_block())
        host_lost(std::strerror(errno));
}

void DisplayRelay::read_xpra() {
    char buffer[65536];
    std::size_t room = std::min(sizeof buffer, buffer_limit - to_host_.size());
    ssize_t n = 0;
    do
        n = ::read(xpra_, buffer, room);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        to_host_.append(buffer, static_cast<std::size_t>(n));
    else if (n == 0)
        xpra_lost("the server closed it");
    else if (!would_block())
        xpra_lost(std::strerror(errno));
}

void DisplayRelay::write_xpra() {
    ssize_t n = 0;
    do
        n = ::send(xpra_, to_xpra_.data(), to_xpra_.size(), MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        to_xpra_.erase(0, static_cast<std::size_t>(n));
    else if (n < 0 && !would_block())
        xpra_lost(std::strerror(errno));
}

} // namespace heirloom::guest
