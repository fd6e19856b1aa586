#include "server_cli.hpp"

#include "heirloom/common/crypto.hpp"
#include "heirloom/server/config.hpp"
#include "heirloom/server/directory.hpp"
#include "heirloom/server/image_store.hpp"
#include "heirloom/server/metadata.hpp"
#include "heirloom/server/service.hpp"
#include "heirloom/server/transport.hpp"

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <pthread.h>
#include <sys/resource.h>
#include <thread>

namespace heirloom::server::cli {
namespace {

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
    std::string admin_group;
    std::size_t max_connections = 0;
    std::string log_level;
};

void add_flags(CLI::App& app, Overrides& o) {
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

Result<ServerConfig> build_config(const Overrides& o) {
    ServerConfig c;
    if (!o.config.empty())
        c = HL_TRY(load_config(o.config));
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
    HL_TRY(finish_config(c));
    return c;
}

// Lets the server hold as many connections as it is configured for.
void raise_file_limit(const Log& log, std::size_t connections) {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        return;
    rlim_t want = std::min<rlim_t>(limit.rlim_max, connections * 2 + 256);
    if (limit.rlim_cur < want) {
        limit.rlim_cur = want;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
    if (limit.rlim_cur < connections + 64)
        log.warn("only {} open files allowed: fewer than --max-connections {} can be served",
                 limit.rlim_cur, connections);
}

int serve(const Overrides& overrides) {
    auto config = build_config(overrides);
    if (!config) {
        std::fprintf(stderr, "heirloom-server: %s\n", config.error().message.c_str());
        return 2;
    }
    Log log(config->log_level);
    auto fail_with = [&](const Error& e) {
        log.error("{}", e.message);
        return 1;
    };
    if (auto ok = crypto::init(); !ok)
        return fail_with(ok.error());
    // Block the stop signals in every thread; one thread waits for them below.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    if (auto made = make_dirs(config->data_dir); !made)
        return fail_with(made.error());
    auto keys = load_or_create_server_keys(config->data_dir);
    if (!keys)
        return fail_with(keys.error());
    auto directory = open_ldap_directory(config->directory);
    if (!directory)
        return fail_with(directory.error().context("directory"));
    auto metadata = Metadata::open(config->data_dir / "metadata.db");
    if (!metadata)
        return fail_with(metadata.error());
    auto images = ImageStore::open(config->data_dir);
    if (!images)
        return fail_with(images.error());
    std::shared_ptr<TlsContext> tls;
    if (!config->plain_http) {
        auto loaded = TlsContext::load(config->tls_certificate, config->tls_key);
        if (!loaded)
            return fail_with(loaded.error());
        tls = *loaded;
    }
    raise_file_limit(log, config->max_connections);

    TransportLimits limits;
    limits.max_connections = config->max_connections;
    limits.max_active_requests = config->max_active_requests;
    limits.header_timeout_seconds = config->header_timeout_seconds;
    limits.minimum_request_rate = config->minimum_request_rate;
    limits.keep_alive_seconds = config->keep_alive_seconds;
    HttpServer server(limits, tls);
    Service service(ServiceContext{*config, log, **directory, **metadata, **images, *keys, [] {
                                       return static_cast<std::int64_t>(std::time(nullptr));
                                   }});
    service.install(server);
    server.set_payload_max_length(trim::max_manifest_size);

    if (!server.bind_to_port(config->listen_host, config->listen_port))
        return fail_with(Error{Errc::io, "cannot listen on " + config->listen_host + ":" +
                                             std::to_string(config->listen_port) +
                                             ": in use or not allowed"});
    std::thread stopper([&] {
        int signal = 0;
        sigwait(&stop_signals, &signal);
        log.info("stopping on signal {}", signal);
        server.stop();
    });
    stopper.detach();
    log.info("listening on {}://{}:{} (directory {}, data {})", tls ? "https" : "http",
             config->listen_host, config->listen_port, (*directory)->describe(),
             config->data_dir.string());
    if (!server.listen_after_bind())
        return fail_with(Error{Errc::io, "the listening socket failed"});
    return 0;
}

int check_directory(const Overrides& overrides, const std::string& user) {
    auto config = build_config(overrides);
    if (!config) {
        std::fprintf(stderr, "heirloom-server: %s\n", config.error().message.c_str());
        return 2;
    }
    auto directory = open_ldap_directory(config->directory);
    if (!directory) {
        std::fprintf(stderr, "directory: %s\n", directory.error().message.c_str());
        return 1;
    }
    std::printf("directory %s\n", (*directory)->describe().c_str());
    auto groups = (*directory)->search_groups("", 1000);
    if (!groups) {
        std::fprintf(stderr, "searching groups failed: %s\n", groups.error().message.c_str());
        return 1;
    }
    bool admin_found = false;
    for (const auto& g : *groups)
        admin_found = admin_found || g.name == config->admin_group;
    std::printf("groups found: %zu; admin group %s: %s\n", groups->size(),
                config->admin_group.c_str(), admin_found ? "found" : "NOT FOUND");
    if (!user.empty()) {
        auto found = (*directory)->lookup(user);
        if (!found) {
            std::fprintf(stderr, "user %s: %s\n", user.c_str(), found.error().message.c_str());
            return 1;
        }
        std::string list;
        for (const auto& g : found->groups)
            list += (list.empty() ? "" : ", ") + g;
        std::printf("user %s (%s): groups %s\n", found->name.c_str(), found->dn.c_str(),
                    list.empty() ? "(none)" : list.c_str());
    }
    return admin_found ? 0 : 1;
}

} // namespace

int run(int argc, char** argv) {
    CLI::App app{"heirloom-server: serves Heirloom's encrypted images and signed policies to "
                 "agents, with logins checked against the directory (LDAP). Docs: "
                 "docs/server.md, docs/api.md."};
    app.require_subcommand(1);
    Overrides serve_flags;
    auto* serve_cmd = app.add_subcommand("serve", "run the server until SIGINT or SIGTERM");
    add_flags(*serve_cmd, serve_flags);
    Overrides check_flags;
    std::string user;
    auto* check_cmd = app.add_subcommand(
        "check-directory", "check the directory settings: connect, list groups, find the admin "
                           "group and optionally look a user up");
    add_flags(*check_cmd, check_flags);
    check_cmd->add_option("--user", user, "a user to look up, with their groups");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    if (*serve_cmd)
        return serve(serve_flags);
    return check_directory(check_flags, user);
}

} // namespace heirloom::server::cli
