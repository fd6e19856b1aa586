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
    app.add_option("--directory-type", o.directory_type,
                   "openldap (default), active-directory or posix: sets the defaults of the "
                   "attributes, classes and membership below")
        ->check(CLI::IsMember({"openldap", "active-directory", "posix"}));
    app.add_option("--ldap-membership", o.ldap_membership,
                   "how groups are found: automatic (openldap), member-of, group-member, posix, "
                   "in-chain (active-directory: nested groups and the primary group)")
        ->check(CLI::IsMember({"automatic", "member-of", "group-member", "posix", "in-chain"}));
    app.add_option("--ldap-user-base", o.ldap_user_base, "where users live (default: base DN)");
    app.add_option("--ldap-group-base", o.ldap_group_base, "where groups live (default: base DN)");
    app.add_option("--ldap-user-attribute", o.ldap_user_attribute,
                   "a user's login name (uid; sAMAccountName for active-directory)");
    app.add_option("--ldap-user-object-class", o.ldap_user_object_class,
                   "what a user entry is (inetOrgPerson; posixAccount; user)");
    app.add_option("--ldap-user-filter", o.ldap_user_filter,
                   "filter a user entry matches, overriding the object class (active-directory: "
                   "(&(objectCategory=person)(objectClass=user)))");
    app.add_option("--ldap-group-attribute", o.ldap_group_attribute, "a group's name (cn)");
    app.add_option("--ldap-group-object-class", o.ldap_group_object_class,
                   "what a group entry is (openldap: groupOfNames, groupOfUniqueNames or "
                   "posixGroup; posix: posixGroup; active-directory: group)");
    app.add_option("--ldap-netbios-domain", o.ldap_netbios_domain,
                   "active-directory: the DOMAIN users may type as DOMAIN\\name (default: the "
                   "first dc= of the base DN)");
    app.add_option("--admin-group", o.admin_group,
                   "directory group whose members may administer (default heirloom-admins)");
    app.add_option("--kerberos-keytab", o.kerberos_keytab,
                   "Kerberos single sign-on: the keytab of the server's HTTP/host service "
                   "principal (exported from the domain); without it, passwords only");
    app.add_option("--kerberos-realm", o.kerberos_realm,
                   "the realm of users' tickets (default: from the base DN, DC=a,DC=b is A.B)");
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
    if (!o.directory_type.empty()) {
        const auto type = directory_type_named(o.directory_type);
        if (!type)
            return fail(Errc::invalid_argument, "--directory-type " + o.directory_type +
                                                    ": expected openldap, active-directory or "
                                                    "posix");
        if (*type != c.directory.type)
            apply_directory_profile(c.directory, *type);
    }
    set(c.directory.uri, o.ldap_uri);
    set(c.directory.user_base, o.ldap_user_base);
    set(c.directory.group_base, o.ldap_group_base);
    set(c.directory.user_attribute, o.ldap_user_attribute);
    set(c.directory.user_object_class, o.ldap_user_object_class);
    set(c.directory.user_filter, o.ldap_user_filter);
    set(c.directory.group_attribute, o.ldap_group_attribute);
    set(c.directory.group_object_class, o.ldap_group_object_class);
    set(c.directory.netbios_domain, o.ldap_netbios_domain);
    set(c.directory.ca_file, o.ldap_ca_file);
    set(c.directory.base_dn, o.ldap_base_dn);
    set(c.directory.bind_dn, o.ldap_bind_dn);
    set(c.directory_password_file, o.ldap_password_file);
    set(c.admin_group, o.admin_group);
    set(c.kerberos_keytab, o.kerberos_keytab);
    set(c.kerberos_realm, o.kerberos_realm);
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
        {"posix", GroupMembership::posix},
        {"in-chain", GroupMembership::in_chain}};
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
