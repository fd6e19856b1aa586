#include "server_cli.hpp"

#include "heirloom/common/crypto.hpp"
#include "heirloom/server/config.hpp"
#include "heirloom/server/directory.hpp"
#include "heirloom/server/image_store.hpp"
#include "heirloom/server/metadata.hpp"
#include "heirloom/server/service.hpp"
#include "heirloom/server/transport.hpp"
#include "server_flags.hpp"
#include "server_init.hpp"

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <pthread.h>
#include <sys/resource.h>
#include <thread>

namespace heirloom::server::cli {
namespace {

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
    std::unique_ptr<negotiate::Acceptor> acceptor;
    if (!config->kerberos_keytab.empty()) {
        auto opened = negotiate::Acceptor::open(config->kerberos_keytab);
        if (!opened)
            return fail_with(opened.error());
        acceptor = std::move(*opened);
    }
    Service service(ServiceContext{*config, log, **directory, **metadata, **images, *keys,
                                   [] { return static_cast<std::int64_t>(std::time(nullptr)); },
                                   acceptor.get()});
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
    return report_directory(*config, user, stdout) ? 0 : 1;
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
    Overrides init_flags;
    InitOptions init_options;
    auto* init_cmd = app.add_subcommand(
        "init", "first-run setup: create the signing keys (and a self-signed certificate if "
                "asked), write the configuration file from flags or answers, and check the "
                "directory connection");
    add_flags(*init_cmd, init_flags, ConfigFile::written);
    add_init_flags(*init_cmd, init_options);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    if (*serve_cmd)
        return serve(serve_flags);
    if (*init_cmd)
        return init(init_flags, init_options);
    return check_directory(check_flags, user);
}

} // namespace heirloom::server::cli
