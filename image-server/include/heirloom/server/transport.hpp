#pragma once

// The HTTP(S) transport under the server's routes: cpp-httplib's request parsing and routing
// on connections we own, so that slow or hostile clients cannot hold the server:
//
// - one thread per connection up to max_connections (more wait in line), never a small pool
//   that a few idle clients can fill;
// - a request's headers must arrive within header_timeout_seconds, and after that its body
//   must keep up minimum_request_rate bytes/s (like Apache's mod_reqtimeout), so slowloris
//   connections are cut within seconds however slowly they trickle;
// - TLS (OpenSSL, 1.2 or newer) is handshaken under the same deadline.

#include "heirloom/common/error.hpp"
#include "heirloom/common/file.hpp"

#include <cstdint>
#include <httplib.h>
#include <memory>

typedef struct ssl_ctx_st SSL_CTX;

namespace heirloom::server {

struct TransportLimits {
    std::size_t max_connections = 1024;
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

  private:
    bool process_and_close_socket(socket_t sock) override;
    TransportLimits limits_;
    std::shared_ptr<TlsContext> tls_;
};

} // namespace heirloom::server
