#pragma once

// The real heirloom-server for integration tests: HTTPS with a fresh test certificate, bound
// to a test directory (Slapd), its data in a private folder that survives restarts of the
// process, so tests can kill it and start it again on the same data.
//
// Usage:
//     Slapd slapd;
//     HL_SKIP_UNLESS_RUNNING(slapd);
//     HeirloomServer server(slapd);
//     HL_SKIP_UNLESS_RUNNING(server);
//     auto api = server.client();           // logged-out ApiClient
//     auto admin = server.login("carol", "carol-pw");

#include "heirloom/client/api_client.hpp"
#include "support/http_servers.hpp"
#include "support/slapd.hpp"

#include <memory>
#include <string>

namespace heirloom::test {

struct HeirloomServerOptions {
    std::int64_t membership_cache_seconds = 60;
    int header_timeout_seconds = 10;
    std::size_t max_connections = 10000;
    std::size_t max_active_requests = 256;
    int directory_timeout_seconds = 3;
    bool plain_http = false;  // HTTP instead of HTTPS (the slow-client tests trickle raw bytes)
    fs::path kerberos_keytab; // Kerberos single sign-on with these keys; empty: passwords only
};

class HeirloomServer : public ServerProcess {
  public:
    explicit HeirloomServer(const Slapd& slapd, HeirloomServerOptions options = {});
    // Bound to any directory (such as SambaAd's config()), every directory setting as given.
    explicit HeirloomServer(const server::DirectoryConfig& directory,
                            HeirloomServerOptions options = {});
    ~HeirloomServer() override { stop(); }

    // Starts the server again on the same data and port (after stop() or a kill).
    void restart();

    const fs::path& data_dir() const { return data_; }
    const fs::path& ca_file() const { return tls_files_.certificate; }
    const fs::path& log_file() const { return log_; }
    // The server's log, for failure messages.
    std::string log_text() const;

    // A client for this server (TLS checked against the test certificate), logged out.
    std::unique_ptr<client::ApiClient> client() const;
    // A client logged in as user; fails the test when the login fails.
    std::unique_ptr<client::ApiClient> login(const std::string& user,
                                             const std::string& password) const;
    // The token of a login, or the error.
    Result<std::string> session_token(const std::string& user, const std::string& password) const;

  private:
    void launch(int fixed_port = 0);
    TempDir dir_;
    fs::path data_;
    fs::path config_;
    fs::path log_;
    TlsFiles tls_files_;
};

} // namespace heirloom::test
