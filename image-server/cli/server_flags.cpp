#include "server_flags.hpp"

#include <map>

namespace heirloom::server::cli {

void add_flags(CLI::App& app, Overrides& o, ConfigFile file) {
    if (file == ConfigFile::read)
        app.add_option("-c,--config", o.config, "configuration file (JSON; see docs/server.md)")
            ->check(CLI::ExistingFile);
    app.add_option("--listen", o.listen, "address to listen on, HOST:PORT (default 0.0.0.0:8443)");
    app.add_option("--data-dir", o.data_dir,
                   "folder for keys, images and metadata (default /var/lib/heirloom-server)");
    app.add_option("--tls-cert", o.tls_cert, "TLS certificate chain (PEM)");
    app.add_option("--tls-key", o.tls_key, "TLS private key (PEM)");
    app.add_flag("--plain-http", o.plain_http,
                 "serve plain HTTP without TLS (tests, or behind a TLS proxy on loopback)");
    app.add_option("--ldap-uri", o.ldap_uri,
                   "directory, ldap://HOST[:PORT] or ldaps://HOST[:PORT]");
    app.add_option("--ldap-tls", o.ldap_tls,
                   "directory transport: start-tls (default), ldaps, plain")
        ->check(CLI::IsMember({"start-tls", "ldaps", "plain"}));
    app.add_option("--ldap-ca-file", o.ldap_ca_file, "CA certificates to trust for the directory");
    app.add_option("--ldap-base-dn", o.ldap_base_dn, "directory base DN, e.g. dc=example,dc=org");
    app.add_option("--ldap-bind-dn", o.ldap_bind_dn,
                   "service account DN for searches (default: anonymous searches)");
    app.add_option("--ldap-bind-password-file", o.ldap_password_file,
                   "file holding the service account's password (never give it on the command "
                   "line)");
    app.add_option("--ldap-membership", o.ldap_membership,
                   "how groups are found: automatic (default), member-of, group-member, posix")
        ->check(CLI::IsMember({"automatic", "member-of", "group-member", "posix"}));
    app.add_option("--admin-group", o.admin_group,
                   "directory group whose members may administer (default heirloom-admins)");
    app.add_option("--max-connections", o.max_connections,
                   "connections open at once; more are refused (default 10000)");
    app.add_option("--log-level", o.log_level, "debug, info (default), warn or error")
        ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
}

Status apply_overrides(ServerConfig& c, const Overrides& o) {
    if (!o.listen.empty())
        HL_TRY(parse_listen(o.listen, c.listen_host, c.listen_port));
    auto set = [](auto& field, const std::string& value) {
        if (!value.empty())
            field = value;
    };
    set(c.data_dir, o.data_dir);
    set(c.tls_certificate, o.tls_cert);
    set(c.tls_key, o.tls_key);
    if (o.plain_http)
        c.plain_http = true;
    set(c.directory.uri, o.ldap_uri);
    set(c.directory.ca_file, o.ldap_ca_file);
    set(c.directory.base_dn, o.ldap_base_dn);
    set(c.directory.bind_dn, o.ldap_bind_dn);
    set(c.directory_password_file, o.ldap_password_file);
    set(c.admin_group, o.admin_group);
    if (o.ldap_uri.starts_with("ldaps://"))
        c.directory.tls = DirectoryTls::ldaps;
    if (o.ldap_tls == "start-tls")
        c.directory.tls = DirectoryTls::start_tls;
    else if (o.ldap_tls == "ldaps")
        c.directory.tls = DirectoryTls::ldaps;
    else if (o.ldap_tls == "plain")
        c.directory.tls = DirectoryTls::plain;
    const std::map<std::string, GroupMembership> memberships = {
        {"automatic", GroupMembership::automatic},
        {"member-of", GroupMembership::member_of},
        {"group-member", GroupMembership::group_member},
        {"posix", GroupMembership::posix}};
    if (!o.ldap_membership.empty())
        c.directory.membership = memberships.at(o.ldap_membership);
    if (o.max_connections)
        c.max_connections = o.max_connections;
    const std::map<std::string, LogLevel> levels = {{"debug", LogLevel::debug},
                                                    {"info", LogLevel::info},
                                                    {"warn", LogLevel::warn},
                                                    {"error", LogLevel::error}};
    if (!o.log_level.empty())
        c.log_level = levels.at(o.log_level);
    return {};
}

Result<ServerConfig> build_config(const Overrides& o) {
    ServerConfig c;
    if (!o.config.empty())
        c = HL_TRY(load_config(o.config));
    HL_TRY(apply_overrides(c, o));
    HL_TRY(finish_config(c));
    return c;
}

} // namespace heirloom::server::cli
