// The endpoint agent against a real directory (slapd), the real heirloom-server and the real
// programs (heirloom-agent, heirloom): login, policy, background sync and its resumption, a
// new version rolled out, revocation, leases under a faked clock, tampered caches.

#include "support/agent_home.hpp"
#include "support/server_deployment.hpp"

#include <catch2/catch.hpp>
#include <thread>

using namespace heirloom;
using namespace std::chrono_literals;

namespace {

struct Site {
    test::TempDir dir;
    test::SyntheticDisk payroll;

    explicit Site(std::uint64_t size = 16ull << 20, int files = 40)
        : payroll(test::make_disk(size, files, 501)) {}

    void set_up(const test::HeirloomServer& server, const std::string& on_expiry = "stop",
                std::int64_t offline_limit = 86400) {
        test::admin_login(server, dir / "home");
        REQUIRE(test::push_disk(server, dir / "home", "payroll", payroll, dir.path()) == 1);
        auto admin = server.login("carol", "carol-pw");
        put(*admin, "/v1/admin/workspaces/payroll-ws", test::workspace("payroll", "Payroll"));
        put(*admin, "/v1/admin/apps/ledger",
            {{"workspace", "payroll-ws"},
             {"display_name", "Ledger"},
             {"command", {"/usr/bin/ledger"}},
             {"icon", "ledger"},
             {"file_types", Json::array()},
             {"url_patterns", Json::array()}});
        Json a = test::assignment("payroll-ws", "group", "finance", "off", "off", "on", "off");
        a["on_expiry"] = on_expiry;
        a["offline_limit"] = offline_limit;
        put(*admin, "/v1/admin/assignments/finance-payroll", a);
    }

    static void put(client::ApiClient& admin, const std::string& path, const Json& body) {
        auto r = admin.put(path, body);
        INFO(path << ": " << (r ? "" : r.error().message));
        REQUIRE(r);
    }
};

void login(const test::AgentHome& agent, const test::HeirloomServer& server,
           const std::string& user = "alice", const std::string& password = "alice-pw") {
    auto r = agent.heirloom(
        {"login", "--server", server.url(), "--user", user, "--ca-file", server.ca_file().string()},
        password);
    INFO(r.out << r.err << agent.log_text());
    REQUIRE(r.exit_code == 0);
}

std::string read_all_files(const fs::path& dir) {
    std::string all;
    for (const auto& entry : fs::recursive_directory_iterator(dir))
        if (entry.is_regular_file())
            if (auto text = read_text_file(entry.path(), 64 << 20))
                all += *text;
    return all;
}

} // namespace

TEST_CASE("agent: login, policy, background sync, a new version, revocation, logout",
          "[agent][integration]") {
    test::Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    test::HeirloomServer server(slapd);
    HL_SKIP_UNLESS_RUNNING(server);
    Site site;
    site.set_up(server, "stop-and-wipe");
    test::AgentHome agent;
    fs::path media_root = agent.home() / "media";
    fs::create_directories(media_root);
    agent.write_settings({{"media_roots", {media_root.string()}}});
    REQUIRE(agent.start());

    CHECK_FALSE(agent.status().value("enrolled", true));
    auto human = agent.heirloom({"status"});
    CHECK(human.out.find("Not logged in") != std::string::npos);

    // A wrong password is refused with the directory's answer, and nothing is enrolled.
    auto wrong = agent.heirloom({"login", "--server", server.url(), "--user", "alice", "--ca-file",
                                 server.ca_file().string()},
                                "not-her-password");
    CHECK(wrong.exit_code != 0);
    CHECK(wrong.err.find("wrong user name or password") != std::string::npos);
    CHECK_FALSE(agent.status().value("enrolled", true));

    login(agent, server);
    Json status = agent.sync();
    INFO(status.dump(2) << agent.log_text());
    CHECK(status["enrolment"]["user"] == "alice");
    Json ws = test::AgentHome::workspace(status, "payroll-ws");
    REQUIRE(ws.is_object());
    CHECK(ws["state"] == "ready");
    CHECK(ws["current_version"] == 1);
    CHECK(ws["lease_state"] == "valid");
    CHECK(ws["bytes_network"].get<std::uint64_t>() > 0);
    // The image is in the agent's store, still encrypted: the store and every file of the
    // state hold neither the token nor the image's plaintext files.
    CHECK(fs::exists(agent.state() / "images" / "payroll"));
    std::string everything = read_all_files(agent.state());
    auto enrolled = test::enrol(server, "alice", "alice-pw", "probe");
    CHECK(everything.find(enrolled.token.substr(0, 24)) == std::string::npos);
    const auto& first_file = site.payroll.files.at(0);
    std::string sample(
        reinterpret_cast<const char*>(site.payroll.content.data()) + first_file.offset, 64);
    CHECK(everything.find(sample) == std::string::npos);

    // What the policy gives her.
    auto apps = agent.heirloom({"apps"});
    CHECK(apps.out.find("Ledger") != std::string::npos);
    auto spaces = agent.heirloom({"workspaces"});
    CHECK(spaces.out.find("Payroll") != std::string::npos);
    CHECK(spaces.out.find("clipboard off") != std::string::npos);
    auto readable = agent.heirloom({"status"});
    CHECK(readable.out.find("image      payroll v1") != std::string::npos);

    // The server heard about it.
    auto admin = server.login("carol", "carol-pw");
    auto events = admin->get("/v1/admin/events?type=sync-done");
    REQUIRE(events);
    CHECK(events->dump().find("payroll") != std::string::npos);

    SECTION("a new version is rolled out and picked up, fetching only what changed") {
        test::rewrite_files(site.payroll, 4, 77);
        REQUIRE(test::push_disk(server, site.dir / "home", "payroll", site.payroll,
                                site.dir.path()) == 2);
        Json after = agent.sync();
        Json w2 = test::AgentHome::workspace(after, "payroll-ws");
        INFO(after.dump(2));
        CHECK(w2["current_version"] == 2);
        CHECK(w2["bytes_network"].get<std::uint64_t>() <
              ws["bytes_network"].get<std::uint64_t>() / 2);
    }

    SECTION("removable media, once inserted, are used at once and spare the network") {
        test::rewrite_files(site.payroll, 8, 78);
        REQUIRE(test::push_disk(server, site.dir / "home", "payroll", site.payroll,
                                site.dir.path()) == 2);
        fs::path stick = agent.home() / "stick";
        auto made =
            test::run({(test::bin_dir() / "heirloom-image").string(), "media", "create", "--repo",
                       (server.data_dir() / "images" / "payroll" / "repo").string(), "--name",
                       "payroll", "--out", stick.string(), "--quiet"});
        INFO(made.err);
        REQUIRE(made.exit_code == 0);
        fs::rename(stick, media_root / "stick"); // "inserted" at once, complete
        Json w;
        for (int i = 0; i < 300; ++i) { // no sync --now: the agent notices the media itself
            w = test::AgentHome::workspace(agent.status(), "payroll-ws");
            if (w["current_version"] == 2)
                break;
            std::this_thread::sleep_for(100ms);
        }
        INFO(w.dump(2) << agent.log_text());
        CHECK(w["current_version"] == 2);
        CHECK(w["bytes_seeds"].get<std::uint64_t>() > 0);
        CHECK(w["bytes_network"].get<std::uint64_t>() < 200'000); // the manifest, no chunks
    }

    SECTION("a revoked assignment is acted on: stopped and, as its lease says, wiped") {
        REQUIRE(admin->del("/v1/admin/assignments/finance-payroll"));
        Json after = agent.sync();
        INFO(after.dump(2) << agent.log_text());
        Json gone = test::AgentHome::workspace(after, "payroll-ws");
        REQUIRE(gone.is_object());
        CHECK(gone["state"] == "wiped");
        CHECK_FALSE(fs::exists(agent.state() / "images" / "payroll"));
        CHECK_FALSE(fs::exists(agent.state() / "vault" / "image-payroll.sealed"));
        auto none = agent.heirloom({"apps"});
        CHECK(none.out.find("Ledger") == std::string::npos);
    }

    SECTION("an endpoint revoked by an admin loses its workspaces as their leases say") {
        std::string id = status["enrolment"]["agent_id"].get<std::string>();
        REQUIRE(admin->del("/v1/admin/endpoints/" + id));
        auto r = agent.heirloom({"sync", "--now", "--wait", "--json"});
        auto after = parse_json(r.out);
        REQUIRE(after);
        INFO(after->dump(2) << agent.log_text());
        CHECK(test::AgentHome::workspace(*after, "payroll-ws")["state"] == "wiped");
        CHECK((*after)["last_error"].get<std::string>().find("revoked") != std::string::npos);
        CHECK_FALSE(fs::exists(agent.state() / "images" / "payroll"));
    }

    SECTION("logout forgets the secrets") {
        auto r = agent.heirloom({"logout"});
        CHECK(r.exit_code == 0);
        CHECK_FALSE(agent.status().value("enrolled", true));
        std::size_t sealed = 0;
        for (const auto& entry : fs::directory_iterator(agent.state() / "vault"))
            sealed += entry.path().extension() == ".sealed";
        CHECK(sealed == 0);
        CHECK_FALSE(fs::exists(agent.state() / "policy.signed"));
    }
}

TEST_CASE("agent: a sync cut by the server stopping resumes", "[agent][integration]") {
    test::Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    test::HeirloomServer server(slapd);
    HL_SKIP_UNLESS_RUNNING(server);
    Site site(24ull << 20, 60);
    site.set_up(server);
    test::AgentHome agent;
    // Throttled, so that the transfer is still running when the server goes.
    agent.write_settings(
        {{"sync_workers", 1}, {"policy_refresh_seconds", 10}, {"max_bytes_per_second", 2 << 20}});
    REQUIRE(agent.start());
    login(agent, server);

    // Wait for the background sync to be under way, then take the server away.
    bool under_way = false;
    for (int i = 0; i < 600 && !under_way; ++i) {
        Json w = test::AgentHome::workspace(agent.status(), "payroll-ws");
        // A third of the way, so that the cut leaves something worth keeping.
        under_way = w.is_object() && w.contains("progress") &&
                    w["progress"].value("done", 0ull) * 3 > w["progress"].value("total", 1ull);
        if (!under_way)
            std::this_thread::sleep_for(20ms);
    }
    REQUIRE(under_way);
    server.stop();
    Json cut;
    for (int i = 0; i < 300; ++i) {
        cut = test::AgentHome::workspace(agent.status(), "payroll-ws");
        if (cut["state"] != "syncing")
            break;
        std::this_thread::sleep_for(100ms);
    }
    INFO(cut.dump(2) << agent.log_text());
    CHECK(cut["state"] == "error");
    CHECK_FALSE(cut["last_error"].get<std::string>().empty());

    server.restart();
    HL_SKIP_UNLESS_RUNNING(server);
    Json done = agent.sync();
    Json w = test::AgentHome::workspace(done, "payroll-ws");
    INFO(done.dump(2) << agent.log_text());
    CHECK(w["state"] == "ready");
    CHECK(w["current_version"] == 1);
    // The resumed sync fetched only what the cut one had not already stored.
    std::uint64_t repo_chunks = 0;
    for (const auto& entry :
         fs::recursive_directory_iterator(server.data_dir() / "images" / "payroll" / "repo"))
        if (entry.is_regular_file() && entry.path().string().find("/chunks/") != std::string::npos)
            repo_chunks += entry.file_size();
    CHECK(w["bytes_network"].get<std::uint64_t>() < repo_chunks * 85 / 100);
}

TEST_CASE("agent: offline leases hold against a faked clock and tampered caches",
          "[agent][integration]") {
    if (!test::AgentHome::have_faketime())
        HL_SKIP("libfaketime is not installed (installer/install-deps.sh installs faketime)");
    test::Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    test::HeirloomServer server(slapd);
    HL_SKIP_UNLESS_RUNNING(server);
    Site site(8ull << 20, 20);
    site.set_up(server, "stop-and-wipe", 4 * 3600);
    test::AgentHome agent;
    agent.write_settings({{"lease_warning_seconds", 3600}});
    REQUIRE(agent.start());
    login(agent, server);
    REQUIRE(test::AgentHome::workspace(agent.sync(), "payroll-ws")["state"] == "ready");
    agent.stop();
    server.stop(); // offline from here on

    SECTION("offline within the limit it runs; near the end it warns; after it, it is wiped "
            "and setting the clock back does not bring it back") {
        REQUIRE(agent.start());
        Json now = test::AgentHome::workspace(agent.status(), "payroll-ws");
        CHECK(now["state"] == "ready");
        CHECK(now["lease_state"] == "valid");
        agent.stop();

        REQUIRE(agent.start("+12600")); // 3 h 30 min later
        Json soon = test::AgentHome::workspace(agent.status(), "payroll-ws");
        INFO(soon.dump(2) << agent.log_text());
        CHECK(soon["lease_state"] == "warning");
        CHECK(soon["state"] == "ready");
        agent.stop();

        REQUIRE(agent.start("+5h"));
        Json late = test::AgentHome::workspace(agent.status(), "payroll-ws");
        INFO(late.dump(2) << agent.log_text());
        CHECK(late["lease_state"] == "expired");
        CHECK(late["state"] == "wiped");
        CHECK_FALSE(fs::exists(agent.state() / "images" / "payroll"));
        agent.stop();

        // Back to the real time: 5 hours earlier than the agent has already seen.
        REQUIRE(agent.start());
        Json back = agent.status();
        Json w = test::AgentHome::workspace(back, "payroll-ws");
        INFO(back.dump(2) << agent.log_text());
        CHECK(w["lease_state"] == "expired");
        CHECK(back["clock_behind_seconds"].get<std::int64_t>() > 4 * 3600);
    }

    SECTION("a tampered cached policy is refused") {
        fs::path file = agent.state() / "policy.signed";
        auto bytes = read_file(file);
        REQUIRE(bytes);
        std::string text(bytes->begin(), bytes->end());
        auto at = text.find("14400"); // the offline limit, inside the signed payload
        REQUIRE(at != std::string::npos);
        text.replace(at, 5, "99999");
        test::write_file(file, as_bytes(text));
        REQUIRE(agent.start());
        Json s = agent.status();
        INFO(s.dump(2) << agent.log_text());
        CHECK(s["trust_problem"].get<std::string>().find("cached policy refused") !=
              std::string::npos);
        CHECK_FALSE(s.contains("policy"));
        CHECK(agent.heirloom({"apps"}).exit_code != 0);
    }

    SECTION("an edited time anchor voids the offline lease") {
        fs::path file = agent.state() / "clock.json";
        auto text = read_text_file(file);
        REQUIRE(text);
        std::string edited = *text;
        edited[edited.size() - 3] = edited[edited.size() - 3] == '1' ? '2' : '1';
        test::write_file(file, as_bytes(edited));
        REQUIRE(agent.start());
        Json s = agent.status();
        INFO(s.dump(2) << agent.log_text());
        CHECK(s["trust_problem"].get<std::string>().find("time anchor refused") !=
              std::string::npos);
        CHECK(test::AgentHome::workspace(s, "payroll-ws")["lease_state"] == "expired");
    }
}
