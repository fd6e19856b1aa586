// heirloom-server init against a real directory (slapd): keys, a self-signed certificate and a
// configuration the real server then starts from; answers on stdin; a directory that cannot be
// reached, an existing configuration and missing settings, each with a clear report.

#include "heirloom/client/api_client.hpp"
#include "heirloom/server/config.hpp"
#include "support/slapd.hpp"
#include "support/support.hpp"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <sys/stat.h>

using namespace heirloom;

namespace {

// The server started from the configuration init wrote, on a free port.
class InitialisedServer : public test::ServerProcess {
  public:
    InitialisedServer(const fs::path& config, const fs::path& log) {
        tls_ = true;
        std::string program = (test::bin_dir() / "heirloom-server").string();
        start(
            "heirloom-server",
            [&](int port) {
                return std::vector<std::string>{program,    "serve",
                                                "--config", config.string(),
                                                "--listen", "127.0.0.1:" + std::to_string(port)};
            },
            log);
    }
    ~InitialisedServer() override { stop(); }
};

// Runs heirloom-server init with args, stdin from a file and the directory's service password
// in HEIRLOOM_PASSWORD (as an operator's script would give it; never argv).
test::RunResult run_init(const std::vector<std::string>& args, const fs::path& stdin_file,
                         const char* password = "service-secret") {
    std::vector<std::string> argv = {"sh", "-c", "exec \"$0\" init \"$@\" <\"$HL_STDIN\"",
                                     (test::bin_dir() / "heirloom-server").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    setenv("HL_STDIN", stdin_file.c_str(), 1);
    if (password)
        setenv("HEIRLOOM_PASSWORD", password, 1);
    auto r = test::run(argv);
    unsetenv("HEIRLOOM_PASSWORD");
    unsetenv("HL_STDIN");
    return r;
}

std::vector<std::string> directory_flags(const test::Slapd& slapd) {
    return {"--ldap-uri",     slapd.uri(),
            "--ldap-ca-file", slapd.ca_file().string(),
            "--ldap-base-dn", slapd.base_dn(),
            "--ldap-bind-dn", "cn=heirloom-server,ou=services," + slapd.base_dn()};
}

unsigned mode_of(const fs::path& p) {
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

} // namespace

TEST_CASE("heirloom-server init: keys, certificate, config and a directory report",
          "[server][init][integration]") {
    test::Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    test::TempDir dir;
    fs::path config = dir / "etc" / "server.json";
    fs::path data = dir / "data";
    fs::path empty = dir / "empty-stdin";
    test::write_file(empty, {});
    auto flags = directory_flags(slapd);
    flags.insert(flags.end(), {"--config", config.string(), "--data-dir", data.string(),
                               "--self-signed", "127.0.0.1", "--check-user", "alice"});

    auto r = run_init(flags, empty);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("admin group heirloom-admins: found") != std::string::npos);
    CHECK(r.out.find("groups finance, staff") != std::string::npos);
    CHECK(r.out.find("service-secret") == std::string::npos);
    CHECK(r.err.find("service-secret") == std::string::npos);
    // Secrets are owner-only files in the data folder; the config names them, never holds them.
    CHECK(mode_of(data / "keys" / "signing.key") == 0600);
    CHECK(mode_of(data / "tls" / "server.key") == 0600);
    CHECK(mode_of(data / "directory.password") == 0600);
    auto text = read_text_file(config);
    REQUIRE(text);
    CHECK(text->find("service-secret") == std::string::npos);
    auto parsed = server::parse_config(*text);
    INFO((parsed ? "" : parsed.error().message));
    REQUIRE(parsed);
    CHECK(parsed->directory.uri == slapd.uri());
    CHECK(parsed->tls_certificate == data / "tls" / "server.crt");

    SECTION("the real server starts from it and its certificate is trusted for 127.0.0.1") {
        InitialisedServer server(config, dir / "server.log");
        REQUIRE(server.running());
        auto api =
            client::ApiClient::open({server.url(), (data / "tls" / "server.crt").string(), 10});
        REQUIRE(api);
        auto about = (*api)->get("/v1/server");
        INFO((about ? "" : about.error().message));
        REQUIRE(about);
        CHECK((*about)["product"] == "heirloom-server");
        auto login = (*api)->post("/v1/login", {{"user", "carol"}, {"password", "carol-pw"}});
        INFO((login ? "" : login.error().message));
        REQUIRE(login);
        CHECK((*login)["admin"] == true);
    }

    SECTION("a second init keeps the keys and refuses to replace the config without --force") {
        auto key_before = read_file(data / "keys" / "signing.pub");
        REQUIRE(key_before);
        auto again = run_init(flags, empty);
        CHECK(again.exit_code == 2);
        CHECK(again.err.find("already exists") != std::string::npos);
        flags.push_back("--force");
        auto forced = run_init(flags, empty);
        INFO(forced.out << forced.err);
        CHECK(forced.exit_code == 0);
        CHECK(forced.out.find("kept " + (data / "keys").string()) != std::string::npos);
        auto key_after = read_file(data / "keys" / "signing.pub");
        REQUIRE(key_after);
        CHECK(*key_after == *key_before);
    }
}

TEST_CASE("heirloom-server init: answers on stdin", "[server][init][integration]") {
    test::Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    test::TempDir dir;
    fs::path answers = dir / "answers";
    // listen, data folder, directory URI, base DN, service account, admin group, TLS host.
    std::string lines = "127.0.0.1:0\n" + (dir / "data").string() + "\n" + slapd.uri() + "\n" +
                        slapd.base_dn() + "\ncn=heirloom-server,ou=services," + slapd.base_dn() +
                        "\n\nlocalhost\n";
    test::write_file(answers, as_bytes(lines));
    auto r = run_init({"--ask", "--config", (dir / "server.json").string(), "--ldap-ca-file",
                       slapd.ca_file().string()},
                      answers);
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("Directory URI") != std::string::npos);
    auto parsed = server::load_config(dir / "server.json");
    REQUIRE(parsed);
    CHECK(parsed->data_dir == dir / "data");
    CHECK(parsed->admin_group == "heirloom-admins");
    CHECK(parsed->directory.base_dn == slapd.base_dn());
    CHECK(fs::exists(dir / "data" / "tls" / "server.crt"));
}

TEST_CASE("heirloom-server init: what is wrong is said plainly", "[server][init][integration]") {
    test::Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    test::TempDir dir;
    fs::path empty = dir / "empty-stdin";
    test::write_file(empty, {});
    fs::path config = dir / "server.json";
    std::vector<std::string> base = {"--config",      config.string(),
                                     "--data-dir",    (dir / "data").string(),
                                     "--self-signed", "localhost"};

    SECTION("no directory given and no one to ask") {
        auto r = run_init(base, empty);
        CHECK(r.exit_code == 2);
        CHECK(r.err.find("--ldap-uri and --ldap-base-dn") != std::string::npos);
        CHECK_FALSE(fs::exists(config));
    }
    SECTION("no TLS given") {
        auto flags = directory_flags(slapd);
        flags.insert(flags.end(),
                     {"--config", config.string(), "--data-dir", (dir / "data").string()});
        auto r = run_init(flags, empty);
        CHECK(r.exit_code == 2);
        CHECK(r.err.find("--self-signed") != std::string::npos);
    }
    SECTION("a hostile certificate name") {
        auto flags = directory_flags(slapd);
        flags.insert(flags.end(),
                     {"--config", config.string(), "--self-signed", "evil,DNS:*.example.org"});
        auto r = run_init(flags, empty);
        CHECK(r.exit_code == 2);
        CHECK(r.err.find("not a host name") != std::string::npos);
    }
    SECTION("a directory nobody answers on: the config is kept, the report says what to do") {
        auto flags = base;
        flags.insert(flags.end(),
                     {"--ldap-uri", "ldap://127.0.0.1:" + std::to_string(test::free_port()),
                      "--ldap-base-dn", slapd.base_dn()});
        auto r = run_init(flags, empty);
        INFO(r.out << r.err);
        CHECK(r.exit_code == 1);
        CHECK(r.out.find("FAILED to search: cannot connect to directory") != std::string::npos);
        CHECK(r.out.find("heirloom-server check-directory --config") != std::string::npos);
        CHECK(fs::exists(config));
    }
    SECTION("a wrong service password") {
        auto flags = directory_flags(slapd);
        flags.insert(flags.end(), base.begin(), base.end());
        auto r = run_init(flags, empty, "not-the-password");
        INFO(r.out << r.err);
        CHECK(r.exit_code == 1);
        CHECK(r.out.find("FAILED") != std::string::npos);
        CHECK(r.out.find("not-the-password") == std::string::npos);
    }
    SECTION("an admin group the directory does not have") {
        auto flags = directory_flags(slapd);
        flags.insert(flags.end(), base.begin(), base.end());
        flags.insert(flags.end(), {"--admin-group", "no-such-group"});
        auto r = run_init(flags, empty);
        CHECK(r.exit_code == 1);
        CHECK(r.out.find("admin group no-such-group: NOT FOUND") != std::string::npos);
    }
}
