#pragma once

// The server's configuration: a JSON file (docs/server.md) with command-line flags on top.
// Secrets (the directory's service password) are read from files named here, never given
// on the command line.

#include "heirloom/common/file.hpp"
#include "heirloom/common/json.hpp"
#include "heirloom/common/log.hpp"
#include "heirloom/server/directory.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace heirloom::server {

struct ServerConfig {
    std::string listen_host = "0.0.0.0";
    int listen_port = 8443;
    fs::path data_dir = "/var/lib/heirloom-server";
    fs::path tls_certificate; // PEM chain
    fs::path tls_key;         // PEM private key
    bool plain_http = false;  // serve without TLS: only when asked, for tests and loopback
    DirectoryConfig directory;
    fs::path directory_password_file; // the service bind password, one line
    std::string admin_group = "heirloom-admins";
    fs::path kerberos_keytab;   // Kerberos single sign-on (Negotiate): the HTTP/ service's keys
    std::string kerberos_realm; // users' realm; empty: from directory.base_dn (DC=a,DC=b: A.B)
    std::int64_t session_seconds = 8 * 3600;       // how long an admin or user login lasts
    std::int64_t membership_cache_seconds = 60;    // how long a user's groups are trusted
    std::int64_t min_policy_seconds = 3600;        // shortest signed policy lifetime
    std::size_t max_connections = 10000;           // connections open at once; more refused
    std::size_t max_active_requests = 256;         // requests served at once; more wait
    int header_timeout_seconds = 10;               // a request's headers must arrive in this
    std::uint64_t minimum_request_rate = 4096;     // bytes/s a request body must keep up
    int keep_alive_seconds = 5;                    // idle keep-alive connections close after
    std::uint64_t max_upload_object = 64ull << 20; // largest object an admin may upload
    LogLevel log_level = LogLevel::info;
};

// Reads a configuration file (JSON, unknown keys refused) over the defaults.
Result<ServerConfig> load_config(const fs::path& path);

// Parses the text of a configuration file.
Result<ServerConfig> parse_config(std::string_view text);

// The configuration file's JSON form: parse_config(config_to_json(c).dump()) gives c back
// (bind_password excepted: it lives in its own file).
Json config_to_json(const ServerConfig& config);

// Checks a complete configuration (TLS files given unless plain_http, directory set, ...) and
// reads the directory password file into directory.bind_password.
Status finish_config(ServerConfig& config);

// Parses "host:port" or "[v6]:port".
Status parse_listen(std::string_view text, std::string& host, int& port);

std::string_view to_string(GroupMembership membership);
std::string_view to_string(DirectoryTls tls);
std::string_view to_string(DirectoryType type); // "openldap", "active-directory", "posix"
std::optional<DirectoryType> directory_type_named(std::string_view name);

} // namespace heirloom::server
