#include "heirloom/agent/control.hpp"

#include "heirloom/agent/paths.hpp"

#include <chrono>
#include <cstring>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

namespace heirloom::agent {
namespace {

using Clock = std::chrono::steady_clock;

// Reads one line (without its newline) before the deadline; fails on a longer line.
Result<std::string> read_line(int fd, Clock::time_point deadline) {
    std::string line;
    char buffer[4096];
    for (;;) {
        auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        pollfd p{fd, POLLIN, 0};
        if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0)
            return fail(Errc::network, "no complete message in time");
        ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0)
            return fail(Errc::io, "connection closed before a complete message");
        line.append(buffer, static_cast<std::size_t>(n));
        if (auto newline = line.find('\n'); newline != std::string::npos) {
            line.resize(newline);
            return line;
        }
        if (line.size() > max_control_message)
            return fail(Errc::invalid_argument, "message too long");
    }
}

bool write_all_to(int fd, std::string_view text, Clock::time_point deadline) {
    while (!text.empty()) {
        auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        pollfd p{fd, POLLOUT, 0};
        if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0)
            return false;
        ssize_t n = ::send(fd, text.data(), text.size(), MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        text.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

Json error_answer(std::string message) {
    return {{"ok", false}, {"error", std::move(message)}};
}

} // namespace

Result<sockaddr_un> unix_address(const fs::path& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.string().size() >= sizeof addr.sun_path)
        return fail(Errc::invalid_argument, "socket path too long: " + path.string());
    std::memcpy(addr.sun_path, path.c_str(), path.string().size());
    return addr;
}

Result<ControlServer> ControlServer::listen(const fs::path& path) {
    HL_TRY(ensure_private_dir(path.parent_path()));
    sockaddr_un addr = HL_TRY(unix_address(path));
    if (fs::exists(path)) {
        if (call_agent(path, {{"command", "ping"}}, 2))
            return fail(Errc::conflict,
                        "an agent is already running for this user (" + path.string() + ")");
        std::error_code ec;
        fs::remove(path, ec);
    }
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail_errno("socket", path.string());
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 16) != 0) {
        auto e = fail_errno("listen on", path.string());
        ::close(fd);
        return e;
    }
    ::chmod(path.c_str(), 0600);
    return ControlServer(fd, path);
}

ControlServer::ControlServer(ControlServer&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}

ControlServer::~ControlServer() {
    if (fd_ >= 0) {
        ::close(fd_);
        std::error_code ec;
        fs::remove(path_, ec);
    }
}

void ControlServer::run(const Handler& handler, const std::atomic<bool>& stop) {
    while (!stop) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 200) <= 0)
            continue;
        int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client < 0)
            continue;
        // Each request on its own thread: `sync --wait` must not hold up `status`.
        ++active_;
        std::thread([this, client, &handler] {
            serve(client, handler);
            ::close(client);
            --active_;
        }).detach();
    }
    while (active_ > 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

void ControlServer::serve(int client, const Handler& handler) {
    auto deadline = Clock::now() + std::chrono::seconds(5);
    ucred peer{};
    socklen_t len = sizeof peer;
    if (::getsockopt(client, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0 || peer.uid != ::getuid()) {
        write_all_to(client, error_answer("this agent belongs to another user").dump() + "\n",
                     deadline);
        return;
    }
    auto line = read_line(client, deadline);
    Json answer;
    if (!line) {
        answer = error_answer("bad request: " + line.error().message);
    } else {
        auto request = parse_json(*line, max_control_message);
        if (!request || !request->is_object() || !request->contains("command") ||
            !(*request)["command"].is_string())
            answer = error_answer("bad request: expected {\"command\": ...}");
        else
            answer = handler(*request);
    }
    // Answers may take long to compute (sync --wait); the client waits for them.
    write_all_to(client, answer.dump() + "\n", Clock::now() + std::chrono::seconds(5));
}

Result<Json> call_agent(const fs::path& path, const Json& request, int timeout_seconds) {
    sockaddr_un addr = HL_TRY(unix_address(path));
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail_errno("socket", path.string());
    Fd owner(fd);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        return fail(Errc::network, "the agent is not running (no answer on " + path.string() +
                                       "): start it with `systemctl --user start "
                                       "heirloom-agent` or `heirloom-agent &`");
    auto deadline = Clock::now() + std::chrono::seconds(timeout_seconds);
    bool sent = write_all_to(fd, request.dump() + "\n", deadline);
    // An agent that refuses the caller (another user) answers and closes at once, possibly
    // before the request is written: its answer is still there to read.
    auto line = read_line(fd, deadline);
    if (!line && !sent)
        return fail(Errc::network, "could not send the request to the agent");
    if (!line)
        return std::unexpected(line.error());
    Json answer = HL_TRY_CTX(parse_json(*line, max_control_message), "the agent's answer");
    if (!answer.is_object())
        return fail(Errc::corrupt, "the agent's answer is not a JSON object");
    if (!answer.value("ok", false))
        return fail(Errc::invalid_argument, answer.value("error", std::string("failed")));
    return answer;
}

} // namespace heirloom::agent
