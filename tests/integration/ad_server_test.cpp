// The real heirloom-server and heirloom-admin against a real Active Directory domain controller
// (Samba, tests/support/samba_ad.hpp): an admin by group (any case), logins by every name
// form mapped to one user, a nested group's workspace, refused accounts told apart only in the
// server's log, and an endpoint whose user is disabled losing its policy.

#include "heirloom/policy/signed.hpp"
#include "support/samba_ad.hpp"
#include "support/server_deployment.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

using namespace heirloom;

namespace {

std::vector<std::string> workspace_ids(const policy::SignedPolicy& p) {
    std::vector<std::string> ids;
    for (const auto& w : p.policy.workspaces)
        ids.push_back(w.workspace.id);
    return ids;
}

Result<policy::SignedPolicy> fetch_policy(const test::HeirloomServer& server,
                                          const test::Enrolment& e, const std::string& user) {
    auto agent = test::agent_client(server, e);
    auto body = HL_TRY(agent->get_text("/v1/agent/policy"));
    return policy::verify_policy(as_bytes(body), e.server_key, user, std::time(nullptr), 0);
}

} // namespace

TEST_CASE("server on active directory: name forms, nested groups, refused and disabled accounts",
          "[server][integration][ad]") {
    test::SambaAd ad;
    HL_SKIP_UNLESS_RUNNING(ad);
    test::HeirloomServerOptions options;
    options.membership_cache_seconds = 2;
    options.directory_timeout_seconds = 10;
    // The admin group in the policy's spelling; the directory's is Heirloom-Admins.
    test::HeirloomServer server(ad.config(), options);
    HL_SKIP_UNLESS_RUNNING(server);
    test::TempDir dir;

    // Alice is an admin through Heirloom-Admins (admin_group heirloom-admins: any case).
    auto r = test::run_admin(dir / "home",
                             {"login", "--server", server.url(), "--user", "HEIRLOOM\\alice",
                              "--ca-file", server.ca_file().string()},
                             "Alice-Secret1");
    INFO(r.err << server.log_text().substr(0, 4000));
    REQUIRE(r.exit_code == 0);
    auto disk = test::make_disk(8ull << 20, 20, 103);
    REQUIRE(test::push_disk(server, dir / "home", "ledger", disk, dir.path()) == 1);
    auto admin = server.login("alice@heirloom.test", "Alice-Secret1");
    REQUIRE(admin->put("/v1/admin/workspaces/ledger-ws", test::workspace("ledger", "Ledger")));
    // "finance": bob is in it only through Payroll, and AD spells it Finance.
    REQUIRE(admin->put(
        "/v1/admin/assignments/finance-ledger",
        test::assignment("ledger-ws", "group", "finance", "both", "off", "on", "read-only")));

    auto bob = test::enrol(server, "HEIRLOOM\\bob", "Bob-Secret1", "pc-bob");
    auto policy = fetch_policy(server, bob, "bob");
    INFO((policy ? "" : policy.error().message));
    REQUIRE(policy);
    CHECK(policy->policy.user == "bob");
    CHECK(workspace_ids(*policy) == std::vector<std::string>{"ledger-ws"});
    auto carol = test::enrol(server, "carol@heirloom.test", "Carol-Secret1", "pc-carol");
    auto none = fetch_policy(server, carol, "carol");
    REQUIRE(none);
    CHECK(none->policy.workspaces.empty());

    SECTION("refused accounts: one message for the caller, the reason in the log") {
        // Account states show only with the right password (AD says 52e to a wrong one).
        struct Refusal {
            const char* name;
            const char* password;
            const char* reason;
        };
        const Refusal refused[] = {
            {"dave", "Dave-Secret1", "account disabled (AD 533)"},
            {"erin@heirloom.test", "Erin-Secret1", "account expired (AD 701)"},
            {"HEIRLOOM\\frank", "Frank-Secret1", "must change password (AD 773)"},
            {"alice", "Dave-Secret1", "wrong password (AD 52e)"},
            {"nobody", "Dave-Secret1", "no user with that name"}};
        auto api = server.client();
        for (const auto& [name, password, reason] : refused) {
            INFO(name);
            auto login = api->post("/v1/login", {{"user", name}, {"password", password}});
            REQUIRE_FALSE(login);
            CHECK(login.error().message.find("wrong user name or password") != std::string::npos);
            CHECK(login.error().message.find("AD ") == std::string::npos);
            CHECK(server.log_text().find(reason) != std::string::npos);
        }
        const std::pair<const char*, const char*> right_passwords[] = {
            {"erin", "Erin-Secret1"}, {"frank", "Frank-Secret1"}, {"dave", "Dave-Secret1"}};
        for (const auto& [name, password] : right_passwords) {
            auto enrol = api->post("/v1/enrol",
                                   {{"user", name}, {"password", password}, {"hostname", "pc"}});
            REQUIRE_FALSE(enrol);
            CHECK(enrol.error().message.find("wrong user name or password") != std::string::npos);
            CHECK(enrol.error().message.find("AD ") == std::string::npos);
        }
        for (const char* password : {"Dave-Secret1", "Erin-Secret1", "Frank-Secret1"})
            CHECK(server.log_text().find(password) == std::string::npos);
    }

    SECTION("a user disabled in the directory loses the policy within the cache time") {
        REQUIRE(ad.samba_tool({"user", "disable", "bob"}).empty());
        std::this_thread::sleep_for(std::chrono::seconds(options.membership_cache_seconds + 1));
        auto refused = fetch_policy(server, bob, "bob");
        REQUIRE_FALSE(refused);
        CHECK(refused.error().message.find("disabled") != std::string::npos);
        // Enabled again, the same endpoint gets its policy back.
        REQUIRE(ad.samba_tool({"user", "enable", "bob"}).empty());
        std::this_thread::sleep_for(std::chrono::seconds(options.membership_cache_seconds + 1));
        CHECK(fetch_policy(server, bob, "bob"));
    }
}
