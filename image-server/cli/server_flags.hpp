#pragma once

// The flags heirloom-server's commands share: each one overrides a setting of the
// configuration file (docs/server.md).

#include "heirloom/server/config.hpp"

#include <CLI/CLI.hpp>

namespace heirloom::server::cli {

// Flags that override the configuration file; unset ones leave it alone.
struct Overrides {
    fs::path config;
    std::string listen;
    std::string data_dir;
    std::string tls_cert;
    std::string tls_key;
    bool plain_http = false;
    std::string ldap_uri;
    std::string ldap_tls;
    std::string ldap_ca_file;
    std::string ldap_base_dn;
    std::string ldap_bind_dn;
    std::string ldap_password_file;
    std::string ldap_membership;
    std::string directory_type; // a profile: its defaults, under the flags below
    std::string ldap_user_base;
    std::string ldap_group_base;
    std::string ldap_user_attribute;
    std::string ldap_user_object_class;
    std::string ldap_user_filter;
    std::string ldap_group_attribute;
    std::string ldap_group_object_class;
    std::string ldap_netbios_domain;
    std::string admin_group;
    std::string kerberos_keytab;
    std::string kerberos_realm;
    std::size_t max_connections = 0;
    std::string log_level;
};

// Whether a command reads --config (serve, check-directory) or writes it (init: its own flag).
enum class ConfigFile { read, written };

// Adds the setting flags to a command.
void add_flags(CLI::App& app, Overrides& o, ConfigFile file = ConfigFile::read);

// Applies the flags that were given over c. --directory-type sets its type's defaults first
// when it changes the type (so a configuration of the same type keeps its edits).
Status apply_overrides(ServerConfig& c, const Overrides& o);

// The configuration file (if any) with the flags over it, checked by finish_config.
Result<ServerConfig> build_config(const Overrides& o);

} // namespace heirloom::server::cli
