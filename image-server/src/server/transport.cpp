#include "heirloom/server/transport.hpp"

#include <arpa/inet.h>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <fcntl.h>
#include <mutex>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace heirloom::server {
namespace {

using Clock = std::chrono::steady_clock;

std::string openssl_error() {
    unsigned long code = ERR_get_error();
    if (code == 0)
        return "unknown TLS error";
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    return text;
}

// Runs each connection on its own thread, up to a limit; connections beyond it wait in line
// for the next free thread. stop() waits for every thread to finish.
class ConnectionThreads : public httplib::TaskQueue {
  public:
    explicit ConnectionThreads(std::size_t max) : max_(max) {}

    void enqueue(std::function<void()> fn) override {
        std::lock_guard lock(mutex_);
        if (running_ >= max_) {
            waiting_.push_back(std::move(fn));
            return;
        }
        ++running_;
        std::thread([this, fn = std::move(fn)]() mutable { serve(std::move(fn)); }).detach();
    }

    void shutdown() override {
        std::unique_lock lock(mutex_);
        idle_.wait(lock, [&] { return running_ == 0; });
    }

  private:
    void serve(std::function<void()> fn) {
        for (;;) {
            fn();
            std::lock_guard lock(mutex_);
            if (waiting_.empty()) {
                --running_;
                idle_.notify_all();
                return;
            }
            fn = std::move(waiting_.front());
            waiting_.pop_front();
        }
    }

    std::size_t max_;
    std::mutex mutex_;
    std::condition_variable idle_;
    std::size_t running_ = 0;
    std::deque<std::function<void()>> waiting_;
};

// One client connection, plain or TLS, on a non-blocking socket. Every wait is bounded by the
// read or write timeout and, while a request is being read, by the request's deadline.
class Connection : public httplib::Stream {
  public:
    Connection(int fd, SSL* ssl, const TransportLimits& limits)
        : fd_(fd), ssl_(ssl), limits_(limits) {}

    // Starts the clock for a new request's headers.
    void begin_request() {
        request_start_ = Clock::now();
        request_bytes_ = 0;
    }

    bool handshake() {
        begin_request();
        for (;;) {
            int rc = SSL_accept(ssl_);
            if (rc == 1)
                return true;
            if (!wait_for(SSL_get_error(ssl_, rc), remaining_read_ms()))
                return false;
        }
    }

    // Waits for the next request on a kept-alive connection.
    bool wait_for_request() const {
        if (pos_ < len_ || (ssl_ && SSL_pending(ssl_) > 0))
            return true;
        return poll_fd(POLLIN, limits_.keep_alive_seconds * 1000) > 0;
    }

    bool is_readable() const override {
        if (pos_ < len_ || (ssl_ && SSL_pending(ssl_) > 0))
            return true;
        return poll_fd(POLLIN, remaining_read_ms()) > 0;
    }

    bool is_writable() const override {
        return poll_fd(POLLOUT, limits_.write_timeout_seconds * 1000) > 0;
    }

    ssize_t read(char* ptr, size_t size) override {
        if (pos_ == len_ && !fill())
            return -1;
        if (pos_ == len_)
            return 0; // orderly close
        std::size_t n = std::min(size, len_ - pos_);
        std::memcpy(ptr, buffer_ + pos_, n);
        pos_ += n;
        return static_cast<ssize_t>(n);
    }

    ssize_t write(const char* ptr, size_t size) override {
        int ms = limits_.write_timeout_seconds * 1000;
        for (;;) {
            if (ssl_) {
                int n = SSL_write(ssl_, ptr, static_cast<int>(std::min<size_t>(size, 1 << 30)));
                if (n > 0)
                    return n;
                if (!wait_for(SSL_get_error(ssl_, n), ms))
                    return -1;
                continue;
            }
            ssize_t n = ::send(fd_, ptr, size, MSG_NOSIGNAL);
            if (n >= 0)
                return n;
            if (errno != EAGAIN && errno != EINTR)
                return -1;
            if (poll_fd(POLLOUT, ms) <= 0)
                return -1;
        }
    }

    void get_remote_ip_and_port(std::string& ip, int& port) const override {
        address(::getpeername, ip, port);
    }
    void get_local_ip_and_port(std::string& ip, int& port) const override {
        address(::getsockname, ip, port);
    }
    socket_t socket() const override { return fd_; }

  private:
    // Milliseconds until this read must give up: the read timeout, or the request's deadline
    // when that comes first (headers within header_timeout, then minimum_request_rate).
    int remaining_read_ms() const {
        auto deadline = request_start_ + std::chrono::seconds(limits_.header_timeout_seconds);
        if (limits_.minimum_request_rate > 0)
            deadline +=
                std::chrono::milliseconds(request_bytes_ * 1000 / limits_.minimum_request_rate);
        else
            deadline = Clock::time_point::max();
        auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        return static_cast<int>(
            std::clamp<long long>(left, 0, limits_.read_timeout_seconds * 1000LL));
    }

    int poll_fd(short events, int ms) const {
        if (ms <= 0)
            return 0;
        pollfd p{fd_, events, 0};
        for (;;) {
            int rc = ::poll(&p, 1, ms);
            if (rc < 0 && errno == EINTR)
                continue;
            return rc;
        }
    }

    // Waits as an OpenSSL call asks; false when it failed for good or the time ran out.
    bool wait_for(int ssl_error, int ms) const {
        if (ssl_error == SSL_ERROR_WANT_READ)
            return poll_fd(POLLIN, ms) > 0;
        if (ssl_error == SSL_ERROR_WANT_WRITE)
            return poll_fd(POLLOUT, ms) > 0;
        ERR_clear_error();
        return false;
    }

    bool fill() {
        pos_ = len_ = 0;
        for (;;) {
            int ms = remaining_read_ms();
            if (ms <= 0)
                return false;
            if (ssl_) {
                int n = SSL_read(ssl_, buffer_, sizeof buffer_);
                if (n > 0) {
                    len_ = static_cast<std::size_t>(n);
                    request_bytes_ += len_;
                    return true;
                }
                int error = SSL_get_error(ssl_, n);
                if (error == SSL_ERROR_ZERO_RETURN)
                    return true;
                if (!wait_for(error, ms))
                    return false;
                continue;
            }
            ssize_t n = ::recv(fd_, buffer_, sizeof buffer_, 0);
            if (n >= 0) {
                len_ = static_cast<std::size_t>(n);
                request_bytes_ += len_;
                return true;
            }
            if (errno != EAGAIN && errno != EINTR)
                return false;
            if (poll_fd(POLLIN, ms) <= 0)
                return false;
        }
    }

    template <class F> void address(F get, std::string& ip, int& port) const {
        sockaddr_storage addr{};
        socklen_t len = sizeof addr;
        ip.clear();
        port = 0;
        if (get(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
            return;
        char text[INET6_ADDRSTRLEN] = {};
        if (addr.ss_family == AF_INET) {
            const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
            inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
            port = ntohs(a->sin_port);
        } else if (addr.ss_family == AF_INET6) {
            const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
            inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
            port = ntohs(a->sin6_port);
        }
        ip = text;
    }

    int fd_;
    SSL* ssl_;
    const TransportLimits& limits_;
    Clock::time_point request_start_ = Clock::now();
    std::uint64_t request_bytes_ = 0;
    char buffer_[16384];
    std::size_t pos_ = 0;
    std::size_t len_ = 0;
};

} // namespace

Result<std::shared_ptr<TlsContext>> TlsContext::load(const fs::path& certificate,
                                                     const fs::path& key) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return fail(Errc::crypto, "TLS: " + openssl_error());
    std::shared_ptr<TlsContext> out(new TlsContext(ctx));
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_use_certificate_chain_file(ctx, certificate.c_str()) != 1)
        return fail(Errc::invalid_argument,
                    "TLS certificate " + certificate.string() + ": " + openssl_error());
    if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1)
        return fail(Errc::invalid_argument, "TLS key " + key.string() + ": " + openssl_error());
    if (SSL_CTX_check_private_key(ctx) != 1)
        return fail(Errc::invalid_argument, "TLS key " + key.string() +
                                                " does not belong to certificate " +
                                                certificate.string());
    return out;
}

TlsContext::~TlsContext() {
    SSL_CTX_free(ctx_);
}

HttpServer::HttpServer(const TransportLimits& limits, std::shared_ptr<TlsContext> tls)
    : limits_(limits), tls_(std::move(tls)) {
    std::size_t max = limits_.max_connections;
    new_task_queue = [max] {
        return new ConnectionThreads(max);
    };
    set_keep_alive_max_count(1000);
    set_keep_alive_timeout(limits_.keep_alive_seconds);
}

bool HttpServer::process_and_close_socket(socket_t sock) {
    int flags = ::fcntl(sock, F_GETFL);
    ::fcntl(sock, F_SETFL, flags | O_NONBLOCK);
    SSL* ssl = nullptr;
    if (tls_) {
        ssl = SSL_new(tls_->get());
        if (ssl)
            SSL_set_fd(ssl, sock);
    }
    Connection connection(sock, ssl, limits_);
    bool ok = !tls_ || (ssl && connection.handshake());
    for (std::size_t left = 1000; ok && left > 0 && is_running(); --left) {
        if (!connection.wait_for_request())
            break;
        connection.begin_request();
        bool closed = false;
        ok = process_request(connection, left == 1, closed, nullptr);
        if (closed)
            break;
    }
    if (ssl) {
        SSL_shutdown(ssl); // best effort: the socket is non-blocking
        SSL_free(ssl);
    }
    ERR_clear_error();
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return ok;
}

} // namespace heirloom::server
