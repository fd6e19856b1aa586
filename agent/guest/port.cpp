#include "guest/port.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <utility>

namespace heirloom::guest {

Result<std::string> find_virtio_port(std::string_view name, const std::filesystem::path& sys_dir,
                                     const std::filesystem::path& dev_dir) {
    std::error_code ec;
    for (std::filesystem::directory_iterator it(sys_dir, ec), end; !ec && it != end;
         it.increment(ec)) {
        std::ifstream in(it->path() / "name");
        std::string port_name;
        if (std::getline(in, port_name) && port_name == name)
            return (dev_dir / it->path().filename()).string();
    }
    return fail(Errc::not_found,
                "no virtio-serial port called " + std::string(name) + " in " + sys_dir.string() +
                    " (the VM needs -device virtserialport,name=" + std::string(name) + ")");
}

int connect_unix_socket(const std::string& path) {
    sockaddr_un addr{};
    if (path.size() >= sizeof addr.sun_path)
        return -1;
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

Result<HostPort> HostPort::open(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        return fail(Errc::not_found, path + ": " + std::strerror(errno));
    HostPort port;
    port.path_ = path;
    if (S_ISSOCK(st.st_mode)) {
        port.kind_ = Kind::socket;
        return port;
    }
    if (!S_ISCHR(st.st_mode))
        return fail(Errc::invalid_argument,
                    path + " is neither a character device (a virtio-serial port) nor a socket");
    port.fd_ = ::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (port.fd_ < 0)
        return fail(Errc::io, "cannot open " + path + ": " + std::strerror(errno));
    return port;
}

HostPort::HostPort(HostPort&& other) noexcept
    : path_(std::move(other.path_)), kind_(other.kind_), fd_(std::exchange(other.fd_, -1)),
      connected_(std::exchange(other.connected_, false)) {}

HostPort& HostPort::operator=(HostPort&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0)
            ::close(fd_);
        path_ = std::move(other.path_);
        kind_ = other.kind_;
        fd_ = std::exchange(other.fd_, -1);
        connected_ = std::exchange(other.connected_, false);
    }
    return *this;
}

HostPort::~HostPort() {
    if (fd_ >= 0)
        ::close(fd_);
}

bool HostPort::try_connect() {
    if (connected_)
        return true;
    if (kind_ == Kind::socket) {
        fd_ = connect_unix_socket(path_);
        connected_ = fd_ >= 0;
        return connected_;
    }
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, 0) < 0)
        return false;
    connected_ = (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)) == 0;
    return connected_;
}

void HostPort::lost() {
    connected_ = false;
    if (kind_ == Kind::socket && fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
}

ssize_t HostPort::read(void* buffer, std::size_t size) {
    ssize_t n = 0;
    do
        n = ::read(fd_, buffer, size);
    while (n < 0 && errno == EINTR);
    return n;
}

ssize_t HostPort::write(const void* data, std::size_t size) {
    ssize_t n = 0;
    do
        n = kind_ == Kind::socket ? ::send(fd_, data, size, MSG_NOSIGNAL)
                                  : ::write(fd_, data, size);
    while (n < 0 && errno == EINTR);
    return n;
}

} // namespace heirloom::guest
