#pragma once

// The guest's end of a channel to the host: a virtio-serial port (a character device that
// reports POLLHUP while nothing is connected on the host side), or a Unix stream socket,
// which tests and other transports use in its place.

#include "heirloom/common/error.hpp"

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace heirloom::guest {

// The device of the virtio-serial port called name ("org.heirloom.control"), found through
// sys_dir/*/name, as dev_dir/PORT.
Result<std::string>
find_virtio_port(std::string_view name,
                 const std::filesystem::path& sys_dir = "/sys/class/virtio-ports",
                 const std::filesystem::path& dev_dir = "/dev");

// Connects a non-blocking Unix stream socket to path; -1 when nothing accepts there (yet).
int connect_unix_socket(const std::string& path);

class HostPort {
  public:
    // Opens a character device, or remembers a socket path to connect to. Neither needs the
    // host to be there yet.
    static Result<HostPort> open(const std::string& path);

    HostPort() = default;
    HostPort(HostPort&& other) noexcept;
    HostPort& operator=(HostPort&& other) noexcept;
    HostPort(const HostPort&) = delete;
    HostPort& operator=(const HostPort&) = delete;
    ~HostPort();

    const std::string& path() const { return path_; }
    // The descriptor to poll and use while connected.
    int fd() const { return fd_; }
    bool connected() const { return connected_; }

    // Looks whether the host is there (again): for a device, that it stopped reporting
    // POLLHUP; for a socket, that connecting works. True when it is.
    bool try_connect();
    // The host went away (end of file, hang-up or an error).
    void lost();

    // Non-blocking read and write; as read(2) and write(2), never raising SIGPIPE.
    ssize_t read(void* buffer, std::size_t size);
    ssize_t write(const void* data, std::size_t size);

  private:
    enum class Kind { device, socket };
    std::string path_;
    Kind kind_ = Kind::device;
    int fd_ = -1;
    bool connected_ = false;
};

} // namespace heirloom::guest
