// The agent keeps the menu: the real heirloom-agent, heirloom-server and directory. Entries
// appear after login, follow a rename, go with a revocation and at logout; a file opened with a
// published app is refused (before any VM starts) when file transfer into the guest is off.

#include "shell-integration/shell_fixture.hpp"
#include "support/agent_home.hpp"
#include "support/server_deployment.hpp"

#include <catch2/catch.hpp>

using namespace heirloom;

namespace {

void put(client::ApiClient& admin, const std::string& path, const Json& body) {
    auto r = admin.put(path, body);
    INFO(path << ": " << (r ? "" : r.error().message));
    REQUIRE(r);
}

Json ledger(const std::string& name) {
    return {{"workspace", "payroll-ws"},      {"display_name", name},
            {"command", {"/usr/bin/ledger"}}, {"icon", "ledger"},
            {"file_types", {"text/csv"}},     {"url_patterns", Json::array()}};
}

} // namespace

TEST_CASE("shell: the agent publishes, renames and revokes menu entries, and refuses files",
          "[shell][integration]") {
    test::Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    test::HeirloomServer server(slapd);
    HL_SKIP_UNLESS_RUNNING(server);
    test::TempDir site;
    auto disk = test::make_disk(4ull << 20, 4, 77);
    test::admin_login(server, site / "home");
    REQUIRE(test::push_disk(server, site / "home", "payroll", disk, site.path()) == 1);
    auto admin = server.login("carol", "carol-pw");
    put(*admin, "/v1/admin/workspaces/payroll-ws", test::workspace("payroll", "Payroll"));
    put(*admin, "/v1/admin/apps/ledger", ledger("Ledger"));
    put(*admin, "/v1/admin/assignments/finance-payroll",
        test::assignment("payroll-ws", "group", "finance", "off", "off", "on", "off"));

    test::AgentHome agent;
    fs::path applications = agent.home() / ".local/share/applications";
    fs::path entry = applications / "heirloom-payroll-ws-ledger.desktop";
    // A file of the user's with our prefix: never touched.
    std::string mine = "[Desktop Entry]\nType=Application\nName=Mine\nExec=true\n";
    test::write_file(applications / "heirloom-payroll-ws-mine.desktop", as_bytes(mine));
    REQUIRE(agent.start());
    auto r = agent.heirloom({"login", "--server", server.url(), "--user", "alice", "--ca-file",
                             server.ca_file().string()},
                            "alice-pw");
    INFO(r.out << r.err << agent.log_text());
    REQUIRE(r.exit_code == 0);
    agent.sync();
    REQUIRE(fs::exists(entry));
    auto text = read_text_file(entry);
    REQUIRE(text);
    CHECK(text->find("\nName=Ledger (Payroll)\n") != std::string::npos);
    CHECK(text->find("\nExec=" + (test::bin_dir() / "heirloom").lexically_normal().string() +
                     " launch ledger --file %f\n") != std::string::npos);
    CHECK(text->find("\nMimeType=text/csv;\n") != std::string::npos);
    CHECK(test::desktop_file_problems(entry) == "");
    CHECK(fs::exists(agent.home() / ".config/menus/applications-merged/heirloom.menu"));

    // Opening a host file with it: file transfer is off, so it is refused before any VM.
    test::write_file(site / "report.csv", as_bytes(std::string("a,b\n")));
    auto refused = agent.heirloom({"launch", "ledger", "--file", (site / "report.csv").string()});
    CHECK(refused.exit_code == 1);
    CHECK(refused.err.find("report.csv was not opened in Ledger: your policy does not allow "
                           "files from this computer into workspace 'Payroll'") !=
          std::string::npos);
    auto status = agent.status();
    CHECK(test::AgentHome::workspace(status, "payroll-ws")["vm"]["state"] == "stopped");

    // A rename reaches the menu with the next policy.
    put(*admin, "/v1/admin/apps/ledger", ledger("Ledger 2004"));
    agent.sync();
    text = read_text_file(entry);
    REQUIRE(text);
    CHECK(text->find("\nName=Ledger 2004 (Payroll)\n") != std::string::npos);

    SECTION("revocation removes the entries, and only ours") {
        REQUIRE(admin->del("/v1/admin/assignments/finance-payroll"));
        agent.sync();
        CHECK_FALSE(fs::exists(entry));
        CHECK_FALSE(fs::exists(agent.home() / ".config/menus/applications-merged/heirloom.menu"));
        CHECK(read_text_file(applications / "heirloom-payroll-ws-mine.desktop") == mine);
    }
    SECTION("logout removes the entries, and only ours") {
        auto out = agent.heirloom({"logout"});
        CHECK(out.exit_code == 0);
        CHECK_FALSE(fs::exists(entry));
        CHECK(read_text_file(applications / "heirloom-payroll-ws-mine.desktop") == mine);
    }
}
