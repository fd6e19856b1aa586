#pragma once

// The host's end of heirloom-guest's control channel, for tests that run the real
// heirloom-guest over Unix sockets standing in for its virtio-serial ports.

#include "heirloom/agent/guest_protocol.hpp"
#include "support/guest_frames.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace heirloom::test {

namespace fs = std::filesystem;
using namespace heirloom::guest;

// A small file's text. (Not read_text_file: libstdc++ 12's resize_and_overwrite, which it
// uses, gives strings of 16 to 29 bytes a wrong length.)
inline std::string slurp(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline int listen_unix(const fs::path& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd, 4) == 0);
    return fd;
}

// A connection accepted within timeout_ms, or -1.
inline int accept_within(int listen_fd, int timeout_ms = 10000) {
    pollfd pfd{listen_fd, POLLIN, 0};
    if (::poll(&pfd, 1, timeout_ms) != 1)
        return -1;
    return ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
}

// The host's end of the control channel, for driving the real heirloom-guest.
class FakeHost {
  public:
    explicit FakeHost(const fs::path& socket_path) : listen_fd_(listen_unix(socket_path)) {}
    ~FakeHost() {
        if (fd_ >= 0)
            ::close(fd_);
        ::close(listen_fd_);
    }
    FakeHost(const FakeHost&) = delete;
    FakeHost& operator=(const FakeHost&) = delete;

    bool accept(int timeout_ms = 10000) {
        fd_ = accept_within(listen_fd_, timeout_ms);
        reader_ = FrameReader();
        return fd_ >= 0;
    }
    void disconnect() {
        ::close(fd_);
        fd_ = -1;
    }
    void send_raw(std::string_view bytes) {
        REQUIRE(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(bytes.size()));
    }
    void send(const HostMessage& message) { send_raw(as_text(encode(message).value())); }

    // The next message from the guest, or nothing after timeout_ms.
    std::optional<GuestMessage> receive(int timeout_ms = 10000) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        while (pending_.empty()) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            deadline - std::chrono::steady_clock::now())
                            .count();
            pollfd pfd{fd_, POLLIN, 0};
            if (left <= 0 || ::poll(&pfd, 1, static_cast<int>(left)) != 1)
                return std::nullopt;
            char buffer[65536];
            ssize_t n = ::read(fd_, buffer, sizeof buffer);
            if (n <= 0)
                return std::nullopt;
            auto frames = reader_.feed(std::string_view(buffer, static_cast<std::size_t>(n)));
            REQUIRE(frames);
            for (auto& payload : *frames) {
                auto message = parse_guest_message(payload);
                INFO(payload);
                REQUIRE(message);
                pending_.push_back(std::move(*message));
            }
        }
        auto message = std::move(pending_.front());
        pending_.erase(pending_.begin());
        return message;
    }

    template <class T> T expect(int timeout_ms = 10000) {
        auto message = receive(timeout_ms);
        REQUIRE(message);
        INFO("got " << message_type(*message));
        REQUIRE(std::holds_alternative<T>(*message));
        return std::get<T>(*message);
    }

  private:
    int listen_fd_ = -1;
    int fd_ = -1;
    FrameReader reader_;
    std::vector<GuestMessage> pending_;
};

inline pid_t start_guest(const std::vector<std::string>& args, const fs::path& log) {
    pid_t pid = ::fork();
    if (pid == 0) {
        int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ::dup2(fd, 2);
        std::vector<char*> argv;
        for (const auto& a : args)
            argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    return pid;
}

inline int wait_for_exit(pid_t pid, int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    int status = 0;
    while (std::chrono::steady_clock::now() < deadline) {
        if (::waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return -1000;
}

// Kills a started heirloom-guest that is still running when the test ends.
struct GuestReaper {
    pid_t pid;
    ~GuestReaper() {
        if (::kill(pid, 0) == 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    }
};

} // namespace heirloom::test
