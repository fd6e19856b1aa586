#include "heirloom/server/transport.hpp"

#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <fcntl.h>
#include <mutex>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <unordered_map>

namespace heirloom::server {

using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t max_header_bytes = 64 * 1024; // then the request goes to httplib to refuse
constexpr std::size_t requests_per_connection = 1000;
constexpr auto worker_idle_time = std::chrono::seconds(10); // then an idle worker exits

std::string openssl_error() {
    unsigned long code = ERR_get_error();
    if (code == 0)
        return "unknown TLS error";
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    return text;
}

int poll_fd(int fd, short events, int ms) {
    if (ms <= 0)
        return 0;
    pollfd p{fd, events, 0};
    for (;;) {
        int rc = ::poll(&p, 1, ms);
        if (rc < 0 && errno == EINTR)
            continue;
        return rc;
    }
}

} // namespace

// One client connection, plain or TLS, on a non-blocking socket, with the bytes read from it
// but not yet parsed. It moves between the reactor (while waiting for a request's headers) and
// a worker (while the request is served); closing it is its destructor.
struct HttpServer::Link {
    enum class Phase { handshake, idle, headers };

    Link(int fd_, SSL* ssl_, std::atomic<std::size_t>& open_) : fd(fd_), ssl(ssl_), open(open_) {
        ++open;
    }
    ~Link() {
        --open; // first: once the client sees the close, the slot must be free
        if (ssl) {
            SSL_shutdown(ssl); // best effort: the socket is non-blocking
            SSL_free(ssl);
            ERR_clear_error();
        }
        ::shutdown(fd, SHUT_RDWR);
        ::close(fd);
    }
    Link(const Link&) = delete;
    Link& operator=(const Link&) = delete;

    std::size_t buffered() const { return in.size() - pos; }
    bool has_headers() const {
        return buffered() >= max_header_bytes ||
               std::string_view(in).substr(pos).find("\r\n\r\n") != std::string_view::npos;
    }
    // Drops parsed bytes so the buffer does not grow over a long keep-alive connection.
    void compact() {
        in.erase(0, pos);
        pos = 0;
    }

    int fd;
    SSL* ssl;
    std::atomic<std::size_t>& open;
    Phase phase = Phase::idle;
    bool want_write = false;         // the TLS handshake waits for the socket to be writable
    Clock::time_point deadline;      // when the reactor gives up waiting
    Clock::time_point request_start; // first byte of the current request
    std::string in;                  // bytes read, from pos on not yet parsed
    std::size_t pos = 0;
    std::size_t served = 0;
};

namespace {

// The stream httplib parses a request from and writes its response to. Reads take the Link's
// buffered bytes first. Every wait is bounded by the read or write timeout and, while the
// request is read, by its deadline: headers within header_timeout_seconds of the first byte,
// then minimum_request_rate bytes/s for the body.
class Connection : public httplib::Stream {
  public:
    using Link = HttpServer::Link;

    Connection(Link& link, const TransportLimits& limits)
        : link_(link), limits_(limits), request_bytes_(link.buffered()) {}

    // True once a read gave up on its deadline: the client is too slow (or silent), and the
    // connection is closed rather than kept alive for it to start over.
    bool timed_out() const { return timed_out_; }

    bool is_readable() const override {
        if (link_.buffered() > 0 || (link_.ssl && SSL_pending(link_.ssl) > 0))
            return true;
        if (poll_fd(link_.fd, POLLIN, remaining_read_ms()) > 0)
            return true;
        timed_out_ = true;
        return false;
    }

    bool is_writable() const override {
        return poll_fd(link_.fd, POLLOUT, limits_.write_timeout_seconds * 1000) > 0;
    }

    ssize_t read(char* ptr, size_t size) override {
        if (link_.buffered() == 0 && !fill())
            return -1;
        if (link_.buffered() == 0)
            return 0; // orderly close
        std::size_t n = std::min(size, link_.buffered());
        std::memcpy(ptr, link_.in.data() + link_.pos, n);
        link_.pos += n;
        return static_cast<ssize_t>(n);
    }

    ssize_t write(const char* ptr, size_t size) override {
        int ms = limits_.write_timeout_seconds * 1000;
        for (;;) {
            if (link_.ssl) {
                int n =
                    SSL_write(link_.ssl, ptr, static_cast<int>(std::min<size_t>(size, 1 << 30)));
                if (n > 0)
                    return n;
                int error = SSL_get_error(link_.ssl, n);
                short events = error == SSL_ERROR_WANT_READ    ? POLLIN
                               : error == SSL_ERROR_WANT_WRITE ? POLLOUT
                                                               : 0;
                ERR_clear_error();
                if (events == 0 || poll_fd(link_.fd, events, ms) <= 0)
                    return -1;
                continue;
            }
            ssize_t n = ::send(link_.fd, ptr, size, MSG_NOSIGNAL);
            if (n >= 0)
                return n;
            if (errno != EAGAIN && errno != EINTR)
                return -1;
            if (poll_fd(link_.fd, POLLOUT, ms) <= 0)
                return -1;
        }
    }

    void get_remote_ip_and_port(std::string& ip, int& port) const override {
        address(::getpeername, ip, port);
    }
    void get_local_ip_and_port(std::string& ip, int& port) const override {
        address(::getsockname, ip, port);
    }
    socket_t socket() const override { return link_.fd; }

  private:
    int remaining_read_ms() const {
        auto deadline = link_.request_start + std::chrono::seconds(limits_.header_timeout_seconds);
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

    bool fill() {
        link_.in.resize(16384);
        link_.pos = 0;
        for (;;) {
            int ms = remaining_read_ms();
            if (ms <= 0)
                break;
            short events = POLLIN;
            if (link_.ssl) {
                int n = SSL_read(link_.ssl, link_.in.data(), static_cast<int>(link_.in.size()));
                if (n > 0)
                    return got(static_cast<std::size_t>(n));
                int error = SSL_get_error(link_.ssl, n);
                ERR_clear_error();
                if (error == SSL_ERROR_ZERO_RETURN)
                    return got(0);
                if (error == SSL_ERROR_WANT_WRITE)
                    events = POLLOUT;
                else if (error != SSL_ERROR_WANT_READ)
                    break;
            } else {
                ssize_t n = ::recv(link_.fd, link_.in.data(), link_.in.size(), 0);
                if (n >= 0)
                    return got(static_cast<std::size_t>(n));
                if (errno != EAGAIN && errno != EINTR)
                    break;
            }
            if (poll_fd(link_.fd, events, ms) <= 0) {
                timed_out_ = true;
                break;
            }
        }
        if (remaining_read_ms() <= 0)
            timed_out_ = true;
        got(0);
        return false;
    }

    bool got(std::size_t n) {
        link_.in.resize(n);
        request_bytes_ += n;
        return true;
    }

    template <class F> void address(F get, std::string& ip, int& port) const {
        sockaddr_storage addr{};
        socklen_t len = sizeof addr;
        ip.clear();
        port = 0;
        if (get(link_.fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
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

    Link& link_;
    const TransportLimits& limits_;
    std::uint64_t request_bytes_;
    mutable bool timed_out_ = false;
};

} // namespace

// Where connections live between accept and close. One reactor thread waits (epoll) on every
// connection that is handshaking, idle between requests or still sending its headers: such a
// connection costs a buffer, not a thread, however slowly it trickles. Once a request's headers
// are complete, the connection goes to a worker thread (up to max_active_requests, more wait
// in line) that serves it and hands it back. httplib's accept loop feeds it through enqueue().
class HttpServer::Engine : public httplib::TaskQueue {
  public:
    Engine(HttpServer& server) : server_(server), limits_(server.limits_) {
        epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
        wake_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        epoll_event event{};
        event.events = EPOLLIN;
        event.data.fd = wake_;
        ::epoll_ctl(epoll_, EPOLL_CTL_ADD, wake_, &event);
        reactor_ = std::thread([this] { run(); });
    }

    ~Engine() override {
        if (reactor_.joinable())
            shutdown();
        ::close(epoll_);
        ::close(wake_);
    }

    // httplib's accept loop: the task adopts the socket at once (see process_and_close_socket).
    void enqueue(std::function<void()> fn) override { fn(); }

    void shutdown() override {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
            waiting_.clear();
        }
        work_.notify_all();
        wake();
        reactor_.join();
        std::unique_lock lock(mutex_);
        idle_.wait(lock, [&] { return running_ == 0; });
    }

    // A freshly accepted socket.
    void adopt(int fd) {
        int flags = ::fcntl(fd, F_GETFL);
        ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
        // Responses are written as headers then body: without this, Nagle holds the body back
        // for the client's delayed ACK (~40 ms per request on a kept-alive connection).
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (open_ >= limits_.max_connections) {
            ::close(fd); // over the limit: refused at once rather than queued
            return;
        }
        SSL* ssl = nullptr;
        if (server_.tls_) {
            ssl = SSL_new(server_.tls_->get());
            if (!ssl) {
                ::close(fd);
                return;
            }
            SSL_set_fd(ssl, fd);
        }
        auto link = std::make_unique<Link>(fd, ssl, open_);
        link->phase = ssl ? Link::Phase::handshake : Link::Phase::idle;
        // The handshake and the first request's headers share one deadline.
        link->request_start = Clock::now();
        link->deadline = link->request_start + std::chrono::seconds(limits_.header_timeout_seconds);
        give(std::move(link));
    }

  private:
    // Hands a connection to the reactor (from any thread).
    void give(std::unique_ptr<Link> link) {
        {
            std::lock_guard lock(mutex_);
            if (stopping_)
                return;
            incoming_.push_back(std::move(link));
        }
        wake();
    }

    void wake() {
        std::uint64_t one = 1;
        (void)!::write(wake_, &one, sizeof one);
    }

    void run() {
        epoll_event events[256];
        auto next_sweep = Clock::now();
        for (;;) {
            int n = ::epoll_wait(epoll_, events, 256, 250);
            for (int i = 0; i < n; ++i) {
                if (events[i].data.fd == wake_) {
                    std::uint64_t count;
                    (void)!::read(wake_, &count, sizeof count);
                    continue;
                }
                auto it = waiting_on_.find(events[i].data.fd);
                if (it != waiting_on_.end())
                    step(it->second);
            }
            std::deque<std::unique_ptr<Link>> arrived;
            {
                std::lock_guard lock(mutex_);
                if (stopping_)
                    break;
                arrived.swap(incoming_);
            }
            for (auto& link : arrived)
                if (auto* watched = watch(std::move(link)))
                    step(*watched);
            if (Clock::now() >= next_sweep) {
                sweep();
                next_sweep = Clock::now() + std::chrono::milliseconds(250);
            }
        }
        waiting_on_.clear(); // closes every connection still waiting
        std::lock_guard lock(mutex_);
        incoming_.clear();
    }

    // Starts waiting on a connection; nullptr when epoll refused it (it is then closed).
    std::unique_ptr<Link>* watch(std::unique_ptr<Link> link) {
        epoll_event event{};
        event.events = link->want_write ? EPOLLOUT : EPOLLIN;
        event.data.fd = link->fd;
        if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, link->fd, &event) != 0)
            return nullptr;
        int fd = link->fd;
        return &waiting_on_.insert_or_assign(fd, std::move(link)).first->second;
    }

    void forget(int fd) {
        ::epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
        waiting_on_.erase(fd);
    }

    // Connections past their deadline are closed: a handshake or headers that did not arrive
    // in time, or a keep-alive connection idle for too long.
    void sweep() {
        auto now = Clock::now();
        std::vector<int> expired;
        for (auto& [fd, link] : waiting_on_)
            if (link->deadline <= now)
                expired.push_back(fd);
        for (int fd : expired)
            forget(fd);
    }

    // Moves a waiting connection on as far as its socket allows without blocking.
    void step(std::unique_ptr<Link>& link) {
        int fd = link->fd;
        if (link->phase == Link::Phase::handshake) {
            int rc = SSL_accept(link->ssl);
            if (rc != 1) {
                int error = SSL_get_error(link->ssl, rc);
                ERR_clear_error();
                if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE)
                    return forget(fd);
                bool want_write = error == SSL_ERROR_WANT_WRITE;
                if (want_write != link->want_write) {
                    link->want_write = want_write;
                    epoll_event event{};
                    event.events = want_write ? EPOLLOUT : EPOLLIN;
                    event.data.fd = fd;
                    ::epoll_ctl(epoll_, EPOLL_CTL_MOD, fd, &event);
                }
                return;
            }
            link->phase = Link::Phase::idle;
            if (link->want_write) {
                link->want_write = false;
                epoll_event event{};
                event.events = EPOLLIN;
                event.data.fd = fd;
                ::epoll_ctl(epoll_, EPOLL_CTL_MOD, fd, &event);
            }
        }
        while (!link->has_headers()) {
            link->compact();
            std::size_t had = link->in.size();
            link->in.resize(had + 16384);
            long n;
            if (link->ssl) {
                n = SSL_read(link->ssl, link->in.data() + had, 16384);
                if (n <= 0) {
                    int error = SSL_get_error(link->ssl, static_cast<int>(n));
                    ERR_clear_error();
                    link->in.resize(had);
                    if (error == SSL_ERROR_WANT_READ)
                        return;
                    return forget(fd); // closed, failed, or wants a renegotiation we refuse
                }
            } else {
                n = ::recv(fd, link->in.data() + had, 16384, 0);
                if (n <= 0) {
                    link->in.resize(had);
                    if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                    return forget(fd);
                }
            }
            link->in.resize(had + static_cast<std::size_t>(n));
            if (link->phase == Link::Phase::idle) {
                link->phase = Link::Phase::headers;
                link->request_start = Clock::now();
                link->deadline =
                    link->request_start + std::chrono::seconds(limits_.header_timeout_seconds);
            }
        }
        auto ready = std::move(link);
        forget(fd);
        dispatch(std::move(ready));
    }

    // A connection whose request headers are complete: to a worker, or in line for one.
    void dispatch(std::unique_ptr<Link> link) {
        std::lock_guard lock(mutex_);
        waiting_.push_back(std::move(link));
        if (idle_workers_ > 0) {
            work_.notify_one();
            return;
        }
        if (running_ >= limits_.max_active_requests)
            return; // in line for the next free worker
        ++running_;
        std::thread([this] { work(); }).detach();
    }

    // A worker serves connections from the line; it stays a while when there is none, since
    // starting a thread per request costs more than the request.
    void work() {
        std::unique_lock lock(mutex_);
        for (;;) {
            if (waiting_.empty() && !stopping_) {
                ++idle_workers_;
                work_.wait_for(lock, worker_idle_time,
                               [&] { return !waiting_.empty() || stopping_; });
                --idle_workers_;
            }
            if (waiting_.empty() || stopping_) {
                --running_;
                idle_.notify_all();
                return;
            }
            auto link = std::move(waiting_.front());
            waiting_.pop_front();
            lock.unlock();
            serve(std::move(link));
            lock.lock();
        }
    }

    // Serves the requests the connection has sent, then gives it back to the reactor to wait
    // for the next one.
    void serve(std::unique_ptr<Link> link) {
        for (;;) {
            Connection stream(*link, limits_);
            bool closed = false;
            bool last = ++link->served >= requests_per_connection;
            bool ok = server_.serve_request(stream, last, closed);
            if (!ok || closed || last || stream.timed_out() || !server_.is_running())
                return;
            link->compact();
            link->request_start = Clock::now();
            if (!link->has_headers())
                break;
        }
        link->phase = link->buffered() > 0 ? Link::Phase::headers : Link::Phase::idle;
        link->deadline =
            link->phase == Link::Phase::headers
                ? link->request_start + std::chrono::seconds(limits_.header_timeout_seconds)
                : Clock::now() + std::chrono::seconds(limits_.keep_alive_seconds);
        give(std::move(link));
    }

    HttpServer& server_;
    const TransportLimits& limits_;
    int epoll_ = -1;
    int wake_ = -1;
    std::thread reactor_;
    std::atomic<std::size_t> open_ = 0;
    std::unordered_map<int, std::unique_ptr<Link>> waiting_on_; // reactor thread only

    std::mutex mutex_;
    bool stopping_ = false;
    std::deque<std::unique_ptr<Link>> incoming_; // for the reactor
    std::deque<std::unique_ptr<Link>> waiting_;  // for a worker
    std::size_t running_ = 0;                    // worker threads
    std::size_t idle_workers_ = 0;               // of them, waiting for work
    std::condition_variable work_;               // a connection is in line, or we are stopping
    std::condition_variable idle_;               // a worker exited
};

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
    new_task_queue = [this] {
        auto* engine = new Engine(*this);
        engine_ = engine;
        return engine;
    };
    set_keep_alive_max_count(requests_per_connection);
    set_keep_alive_timeout(limits_.keep_alive_seconds);
}

HttpServer::~HttpServer() = default;

bool HttpServer::process_and_close_socket(socket_t sock) {
    engine_->adopt(sock);
    return true;
}

bool HttpServer::serve_request(httplib::Stream& stream, bool last, bool& closed) {
    return process_request(stream, last, closed, nullptr);
}

} // namespace heirloom::server
