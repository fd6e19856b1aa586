#pragma once

// A client of the server's HTTP API (docs/api.md) for heirloom-admin, the console and the
// agent: JSON in and out, TLS verified against the system's or a given CA, the bearer token
// kept in memory only, and every non-2xx answer turned into an Error with the server's message
// ("image payroll already has version 7; push a newer version").

#include "heirloom/common/bytes.hpp"
#include "heirloom/common/json.hpp"
#include "heirloom/common/url.hpp"

#include <memory>
#include <string>
#include <string_view>

namespace httplib {
class ClientImpl;
}

namespace heirloom::client {

struct ServerOptions {
    std::string url;          // "https://heirloom.example.org:8443"
    std::string ca_file;      // trust these CAs instead of the system's
    int timeout_seconds = 30; // connect, read and write
};

class ApiClient {
  public:
    static Result<std::unique_ptr<ApiClient>> open(const ServerOptions& options);
    ~ApiClient();
    ApiClient(const ApiClient&) = delete;
    ApiClient& operator=(const ApiClient&) = delete;

    void set_token(std::string token);
    // Sends "Authorization: Negotiate TOKEN" (a Kerberos login, heirloom/negotiate) instead of
    // the bearer token until set to empty.
    void set_negotiate(std::string token);
    const Url& url() const { return url_; }
    const ServerOptions& options() const { return options_; }

    // Requests; path is below the server's URL ("/v1/admin/images") and may hold a query.
    Result<Json> get(std::string_view path);
    Result<Json> post(std::string_view path, const Json& body);
    Result<Json> put(std::string_view path, const Json& body);
    Result<Json> del(std::string_view path);
    // The raw body of a GET (CSV reports, signed policies).
    Result<std::string> get_text(std::string_view path);
    // PUT of raw bytes (image objects and manifests).
    Result<Json> put_bytes(std::string_view path, ByteView body);

  private:
    ApiClient(ServerOptions options, Url url);
    Result<std::string> exchange(std::string_view method, std::string_view path,
                                 std::string_view body, std::string_view content_type);
    ServerOptions options_;
    Url url_;
    std::string token_;
    std::string negotiate_;
    std::unique_ptr<httplib::ClientImpl> http_;
};

// Percent-encodes one path segment or query value.
std::string url_encode(std::string_view text);

// The Errc an HTTP status stands for (401 crypto, 403 denied, 404 not_found, 409 conflict,
// other 4xx invalid_argument, 5xx and no answer network).
Errc errc_for_status(int status);

} // namespace heirloom::client
