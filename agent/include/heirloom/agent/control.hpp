#pragma once

// The daemon's control socket: a Unix stream socket in the user's private runtime folder.
// Each connection sends one request, a JSON object on one line, and gets one JSON line back:
// {"ok": true, ...} or {"ok": false, "error": "..."}. The daemon checks the peer's credentials
// (SO_PEERCRED): only its own user may drive it, whatever the socket's file mode.

#include "heirloom/common/error.hpp"
#include "heirloom/common/file.hpp"
#include "heirloom/common/json.hpp"

#include <atomic>
#include <functional>
#include <sys/un.h>

namespace heirloom::agent {

inline constexpr std::size_t max_control_message = 64 << 10;

// The address of the Unix socket at path; refuses a path longer than sun_path holds. (Every
// private socket of the agent goes through here: the control socket, the NBD export, QMP and
// the guest channel.)
Result<sockaddr_un> unix_address(const fs::path& path);

class ControlServer {
  public:
    using Handler = std::function<Json(const Json& request)>;

    // Listens on path; refuses when another daemon answers there, replaces a stale socket.
    static Result<ControlServer> listen(const fs::path& path);
    ControlServer(ControlServer&& other) noexcept;
    ControlServer& operator=(ControlServer&&) = delete;
    ~ControlServer();

    // Serves connections until stop is set (checked every 200 ms), each on its own thread,
    // then waits for those to finish (handlers must return soon once stop is set). A slow or
    // silent client is dropped after a few seconds.
    void run(const Handler& handler, const std::atomic<bool>& stop);

  private:
    ControlServer(int fd, fs::path path) : fd_(fd), path_(std::move(path)) {}
    void serve(int client, const Handler& handler);
    int fd_ = -1;
    fs::path path_;
    std::atomic<int> active_ = 0;
};

// Sends one request to the daemon at path and returns its answer (the error of a
// {"ok": false} answer as an Error).
Result<Json> call_agent(const fs::path& path, const Json& request, int timeout_seconds);

} // namespace heirloom::agent
