#pragma once

// The HTTP(S) transport under the server's routes: cpp-httplib's request parsing and routing
// on connections we own, so that slow or hostile clients cannot hold the server:
//
// - one reactor thread (epoll) holds every connection that is handshaking, idle between
//   requests or still sending its headers, so a slow or silent connection costs a buffer, not
//   a thread; up to max_connections are open at once, more are closed at accept;
// - a request whose headers are complete is served by a worker thread, up to
//   max_active_requests at once (more wait in line), then its connection goes back to the
//   reactor;
// - a request's headers must arrive within header_timeout_seconds of its first byte, and after
//   that its body must keep up minimum_request_rate bytes/s (like Apache's mod_reqtimeout);
//   a connection that misses its deadline is closed, not kept alive;
// - TLS (OpenSSL, 1.2 or newer) is handshaken by the reactor under the first request's
//   deadline.

#include "heirloom/common/error.hpp"
#include "heirloom/common/file.hpp"

#include <cstdint>
#include <httplib.h>
#include <memory>

typedef struct ssl_ctx_st SSL_CTX;

namespace heirloom::server {

struct TransportLimits {
    std::size_t max_connections = 10000;   // open at once; more are closed at accept
    std::size_t max_active_requests = 256; // served at once; more wait in line
    int header_timeout_seconds = 10;
    std::uint64_t minimum_request_rate = 4096;
    int keep_alive_seconds = 5;
    int read_timeout_seconds = 10;  // one read waits at most this long
    int write_timeout_seconds = 30; // one write waits at most this long
};

// A server certificate and key, loaded once and shared by every connection.
class TlsContext {
  public:
    static Result<std::shared_ptr<TlsContext>> load(const fs::path& certificate,
                                                    const fs::path& key);
    ~TlsContext();
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;
    SSL_CTX* get() const { return ctx_; }

  private:
    explicit TlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
    SSL_CTX* ctx_;
};

class HttpServer : public httplib::Server {
  public:
    // tls == nullptr serves plain HTTP.
    HttpServer(const TransportLimits& limits, std::shared_ptr<TlsContext> tls);
    ~HttpServer() override;

    struct Link; // one client connection (transport.cpp)

  private:
    class Engine;
    bool process_and_close_socket(socket_t sock) override;
    bool serve_request(httplib::Stream& stream, bool last, bool& closed);
    TransportLimits limits_;
    std::shared_ptr<TlsContext> tls_;
    Engine* engine_ = nullptr; // owned by httplib's listen loop while it runs
};

} // namespace heirloom::server
