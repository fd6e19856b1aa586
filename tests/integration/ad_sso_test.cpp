// Kerberos single sign-on against a real Active Directory domain controller (Samba,
// tests/support/samba_ad.hpp): the server with the keytab of its HTTP/127.0.0.1 principal, a
// ticket from kinit, the real heirloom-server, heirloom-agent and heirloom login. A ticket logs
// the user in without a password as the same user a password login gives; without a ticket,
// or with a server that takes no tickets, heirloom login falls back to the password.

#include "heirloom/negotiate/negotiate.hpp"
#include "support/agent_home.hpp"
#include "support/samba_ad.hpp"
#include "support/server_deployment.hpp"

#include <catch2/catch.hpp>
#include <cstdlib>

using namespace heirloom;

namespace {

// The environment of a user who holds (or not) a ticket in ccache.
struct KerberosUser {
    KerberosUser(const test::SambaAd& ad, const fs::path& ccache) {
        setenv("KRB5_CONFIG", ad.krb5_conf().c_str(), 1);
        setenv("KRB5CCNAME", ("FILE:" + ccache.string()).c_str(), 1);
    }
    ~KerberosUser() {
        unsetenv("KRB5_CONFIG");
        unsetenv("KRB5CCNAME");
    }
    KerberosUser(const KerberosUser&) = delete;
    KerberosUser& operator=(const KerberosUser&) = delete;
};

void add_kerberos(test::AgentHome& agent, const test::SambaAd& ad, const fs::path& ccache) {
    agent.add_environment("KRB5_CONFIG=" + ad.krb5_conf().string());
    agent.add_environment("KRB5CCNAME=FILE:" + ccache.string());
}

} // namespace

TEST_CASE("kerberos single sign-on: a ticket logs in without a password, as the same user",
          "[server][integration][ad][kerberos]") {
    test::SambaAd ad;
    HL_SKIP_UNLESS_RUNNING(ad);
    test::TempDir dir;
    const fs::path keytab = dir / "http.keytab";
    REQUIRE(ad.export_keytab(keytab).empty());
    test::HeirloomServerOptions options;
    options.directory_timeout_seconds = 10;
    options.kerberos_keytab = keytab;
    test::HeirloomServer server(ad.config(), options);
    HL_SKIP_UNLESS_RUNNING(server);
    const fs::path alice_cache = dir / "alice.ccache";
    REQUIRE(ad.kinit("alice", "Alice-Secret1", alice_cache).empty());

    SECTION("the API: a Negotiate login is alice, an admin, as with her password") {
        KerberosUser alice(ad, alice_cache);
        auto token = negotiate::client_token("127.0.0.1");
        INFO((token ? "" : token.error().message));
        REQUIRE(token);
        auto api = server.client();
        api->set_negotiate(*token);
        auto login = api->post("/v1/login", Json::object());
        INFO((login ? "" : login.error().message) << server.log_text().substr(0, 3000));
        REQUIRE(login);
        CHECK((*login)["user"] == "alice");
        CHECK((*login)["admin"] == true);
        auto password_login = server.client()->post(
            "/v1/login", {{"user", "HEIRLOOM\\alice"}, {"password", "Alice-Secret1"}});
        REQUIRE(password_login);
        CHECK((*password_login)["user"] == (*login)["user"]);
        CHECK((*password_login)["groups"] == (*login)["groups"]);
        CHECK(server.log_text().find("alice logged in with Kerberos") != std::string::npos);

        // A token is good once (replay), and garbage is refused; both without a session.
        auto again = server.client();
        again->set_negotiate(*token);
        CHECK_FALSE(again->post("/v1/login", Json::object()));
        for (const char* bad : {"", "!!!!", "YWJj", "AAAA"}) {
            auto junk = server.client();
            junk->set_negotiate(bad);
            auto refused = junk->post("/v1/login", Json::object());
            REQUIRE_FALSE(refused);
        }
    }

    SECTION("SPNEGO, as curl --negotiate and browsers send it") {
        if (!test::have_program("curl")) {
            WARN("curl is not installed; skipping");
            return;
        }
        auto r = test::run({"env", "KRB5_CONFIG=" + ad.krb5_conf().string(),
                            "KRB5CCNAME=FILE:" + alice_cache.string(), "curl", "-sS", "--negotiate",
                            "-u", ":", "--cacert", server.ca_file().string(), "-X", "POST", "-d",
                            "{}", server.url() + "/v1/login"});
        INFO(r.out << r.err << server.log_text().substr(0, 3000));
        REQUIRE(r.exit_code == 0);
        auto answer = parse_json(r.out);
        REQUIRE(answer);
        CHECK((*answer)["user"] == "alice");
    }

    SECTION("heirloom login with a ticket: no password, no user name") {
        test::AgentHome agent;
        add_kerberos(agent, ad, alice_cache);
        REQUIRE(agent.start());
        auto r = agent.heirloom(
            {"login", "--server", server.url(), "--ca-file", server.ca_file().string()});
        INFO(r.out << r.err << agent.log_text() << server.log_text().substr(0, 3000));
        REQUIRE(r.exit_code == 0);
        CHECK(r.out.find("Logged in as alice") != std::string::npos);
        CHECK(agent.status()["enrolment"]["user"] == "alice");
        CHECK(server.log_text().find("enrolled for alice with Kerberos") != std::string::npos);
    }

    SECTION("without a ticket, heirloom login uses the password") {
        test::AgentHome agent;
        add_kerberos(agent, ad, dir / "nobody.ccache");
        REQUIRE(agent.start());
        auto no_user = agent.heirloom(
            {"login", "--server", server.url(), "--ca-file", server.ca_file().string()});
        CHECK(no_user.exit_code != 0);
        CHECK(no_user.err.find("--user") != std::string::npos);
        auto r = agent.heirloom({"login", "--server", server.url(), "--user", "bob@heirloom.test",
                                 "--ca-file", server.ca_file().string()},
                                "Bob-Secret1");
        INFO(r.out << r.err << agent.log_text());
        REQUIRE(r.exit_code == 0);
        CHECK(agent.status()["enrolment"]["user"] == "bob");
    }

    SECTION("a disabled user's ticket is refused") {
        KerberosUser alice(ad, alice_cache);
        auto token = negotiate::client_token("127.0.0.1");
        REQUIRE(token);
        REQUIRE(ad.samba_tool({"user", "disable", "alice"}).empty());
        auto api = server.client();
        api->set_negotiate(*token);
        auto refused = api->post("/v1/login", Json::object());
        REQUIRE_FALSE(refused);
        CHECK(refused.error().message.find("password") != std::string::npos);
        CHECK(server.log_text().find("disabled") != std::string::npos);
    }
}

TEST_CASE("kerberos single sign-on: a server without a keytab takes passwords only",
          "[server][integration][ad][kerberos]") {
    test::SambaAd ad;
    HL_SKIP_UNLESS_RUNNING(ad);
    test::TempDir dir;
    test::HeirloomServerOptions options;
    options.directory_timeout_seconds = 10;
    test::HeirloomServer server(ad.config(), options);
    HL_SKIP_UNLESS_RUNNING(server);
    const fs::path cache = dir / "alice.ccache";
    REQUIRE(ad.kinit("alice", "Alice-Secret1", cache).empty());

    test::AgentHome agent;
    add_kerberos(agent, ad, cache);
    REQUIRE(agent.start());
    auto r = agent.heirloom({"login", "--server", server.url(), "--user", "alice", "--ca-file",
                             server.ca_file().string()},
                            "Alice-Secret1");
    INFO(r.out << r.err << agent.log_text());
    REQUIRE(r.exit_code == 0);
    CHECK(agent.status()["enrolment"]["user"] == "alice");
    CHECK(server.log_text().find("with Kerberos") == std::string::npos);
}

TEST_CASE("kerberos: principals, realms and base64", "[kerberos]") {
    using negotiate::user_of_principal;
    CHECK(user_of_principal("alice@HEIRLOOM.TEST", "HEIRLOOM.TEST") == "alice");
    CHECK(user_of_principal("alice@heirloom.test", "HEIRLOOM.TEST") == "alice");
    for (const char* bad : {"alice@OTHER.TEST", "HTTP/host@HEIRLOOM.TEST", "alice",
                            "@HEIRLOOM.TEST", "a\\@b@HEIRLOOM.TEST", "alice@", ""})
        CHECK_FALSE(user_of_principal(bad, "HEIRLOOM.TEST"));
    CHECK_FALSE(user_of_principal("alice@HEIRLOOM.TEST", ""));
    CHECK(negotiate::realm_of_base_dn("DC=heirloom,DC=test") == "HEIRLOOM.TEST");
    CHECK(negotiate::realm_of_base_dn("OU=x, dc=corp,dc=example,dc=org") == "CORP.EXAMPLE.ORG");
    CHECK(negotiate::realm_of_base_dn("o=nodc").empty());
    for (const std::string& text :
         {std::string(), std::string("a"), std::string("ab"), std::string("abc"),
          std::string("abcd"), std::string("\x00\xff\x10", 3)})
        CHECK(negotiate::base64_decode(negotiate::base64_encode(text)) == text);
    CHECK(negotiate::base64_encode("abc") == "YWJj");
    CHECK(negotiate::base64_encode("ab") == "YWI=");
    for (const char* bad :
         {"YWJ", "YW=j", "Y===", "YWJj\n", "YW_j", "=AAA", "YWI=YWJj", "YWJ=", "YR=="})
        CHECK_FALSE(negotiate::base64_decode(bad));
}
