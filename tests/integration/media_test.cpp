// Removable media end to end, with the real slapd, heirloom-server, heirloom-admin and agent:
// an admin writes an image version from the server to a USB folder, an endpoint cut off from
// the network imports it (nothing crosses the network), and once online again it fetches only
// what the next version changed. Older media never roll the endpoint back.

#include "support/agent_home.hpp"
#include "support/server_deployment.hpp"

#include <catch2/catch.hpp>
#include <thread>

using namespace heirloom;
using namespace std::chrono_literals;

namespace {

// Waits until the agent reports workspace id at version (it notices media by itself).
Json wait_for_version(const test::AgentHome& agent, const std::string& id, std::uint64_t version) {
    Json w;
    for (int i = 0; i < 600; ++i) {
        w = test::AgentHome::workspace(agent.status(), id);
        if (w.is_object() && w["current_version"] == version)
            break;
        std::this_thread::sleep_for(100ms);
    }
    return w;
}

} // namespace

TEST_CASE("removable media: an offline endpoint imports a seed, then syncs only the delta",
          "[agent][media][integration]") {
    test::Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    test::HeirloomServer server(slapd);
    HL_SKIP_UNLESS_RUNNING(server);
    test::TempDir dir;
    fs::path home = dir / "admin-home";
    test::admin_login(server, home);
    auto admin = server.login("carol", "carol-pw");
    // The image exists (with its key) but has no version yet when alice's endpoint logs in.
    REQUIRE(admin->post("/v1/admin/images", {{"name", "payroll"}}));
    REQUIRE(admin->put("/v1/admin/workspaces/payroll-ws", test::workspace("payroll", "Payroll")));
    REQUIRE(admin->put(
        "/v1/admin/assignments/finance-payroll",
        test::assignment("payroll-ws", "group", "finance", "off", "off", "on", "read-only")));

    test::AgentHome agent;
    fs::path media_root = agent.home() / "media";
    fs::create_directories(media_root);
    agent.write_settings({{"media_roots", {media_root.string()}}});
    REQUIRE(agent.start());
    auto login = agent.heirloom({"login", "--server", server.url(), "--user", "alice", "--ca-file",
                                 server.ca_file().string()},
                                "alice-pw");
    INFO(login.out << login.err << agent.log_text());
    REQUIRE(login.exit_code == 0);
    // Its first sync finds no version to fetch, but it has its policy and the image's key.
    auto nothing = agent.heirloom({"sync", "--now", "--wait"});
    CHECK(nothing.exit_code != 0);
    CHECK(nothing.err.find("not on the server") != std::string::npos);
    Json first = test::AgentHome::workspace(agent.status(), "payroll-ws");
    INFO(first.dump(2));
    CHECK_FALSE(first["current_version"].is_number());

    // Headquarters: v1 is pushed and written to a USB folder from the server.
    test::SyntheticDisk disk = test::make_disk(24ull << 20, 60, 901);
    REQUIRE(test::push_disk(server, home, "payroll", disk, dir.path()) == 1);
    fs::path stick = dir / "stick-v1";
    auto made = test::run_admin(home, {"media", "create", "payroll", "--out", stick.string()});
    INFO(made.out << made.err);
    REQUIRE(made.exit_code == 0);
    CHECK(made.out.find("payroll version 1") != std::string::npos);
    // A second run finds every chunk there already.
    auto again =
        test::run_admin(home, {"media", "create", "payroll", "--out", stick.string(), "--json"});
    auto again_json = parse_json(again.out);
    REQUIRE(again_json);
    CHECK((*again_json)["chunks_copied"] == 0);

    // The branch office loses the network; the stick arrives and is inserted.
    server.stop();
    fs::path inserted = media_root / "usb";
    fs::rename(stick, inserted);
    Json w1 = wait_for_version(agent, "payroll-ws", 1);
    INFO(w1.dump(2) << agent.log_text());
    REQUIRE(w1["current_version"] == 1);
    CHECK(w1["state"] == "ready");
    CHECK(w1["bytes_network"] == 0);
    CHECK(w1["bytes_seeds"].get<std::uint64_t>() > 0);
    Json status = agent.status();
    CHECK_FALSE(status["last_error"].get<std::string>().empty()); // it knows it is offline

    // Online again, a new version: only what changed crosses the network.
    server.restart();
    REQUIRE(server.running());
    test::rewrite_files(disk, 5, 902);
    REQUIRE(test::push_disk(server, home, "payroll", disk, dir.path()) == 2);
    Json w2 = test::AgentHome::workspace(agent.sync(), "payroll-ws");
    INFO(w2.dump(2) << agent.log_text());
    REQUIRE(w2["current_version"] == 2);
    std::uint64_t network = w2["bytes_network"].get<std::uint64_t>();
    CHECK(network > 0);
    CHECK(network < disk.content.size() / 4);

    SECTION("older media never roll the endpoint back") {
        server.stop();
        fs::remove_all(inserted);
        auto old = test::run(
            {(test::bin_dir() / "heirloom-image").string(), "media", "create", "--repo",
             (server.data_dir() / "images" / "payroll" / "repo").string(), "--name", "payroll",
             "--version", "1", "--out", (media_root / "old").string(), "--quiet"});
        REQUIRE(old.exit_code == 0);
        // The agent notices the media (it looks every 5 s), tries them since the server is
        // unreachable, and refuses the older version: the refusal is what shows it looked.
        Json after;
        for (int i = 0; i < 600; ++i) {
            after = test::AgentHome::workspace(agent.status(), "payroll-ws");
            if (after.value("last_error", std::string()).find("refusing to go back") !=
                std::string::npos)
                break;
            std::this_thread::sleep_for(100ms);
        }
        INFO(after.dump(2) << agent.log_text());
        CHECK_THAT(after.value("last_error", std::string()),
                   Catch::Contains("version 1") && Catch::Contains("refusing to go back"));
        CHECK(after["current_version"] == 2);
        CHECK(after["state"] == "ready");
    }
}
