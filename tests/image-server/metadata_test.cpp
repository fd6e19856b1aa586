// The server's SQLite metadata: migrations, policy revisions, serials, agents and events.

#include "heirloom/server/metadata.hpp"
#include "support/support.hpp"

#include <catch2/catch.hpp>

using namespace heirloom;
using namespace heirloom::server;

TEST_CASE("metadata: policy revisions, serials and sessions survive a reopen",
          "[server][metadata]") {
    test::TempDir dir;
    fs::path file = dir / "metadata.db";
    std::uint64_t serial = 0;
    {
        auto m = Metadata::open(file);
        REQUIRE(m);
        auto empty = (*m)->policy();
        REQUIRE(empty);
        CHECK(empty->revision == 0);
        policy::PolicySet set;
        set.images.push_back({"payroll", std::nullopt, std::nullopt});
        auto r1 = (*m)->save_policy(set, "carol", 100, 0);
        REQUIRE(r1);
        CHECK(*r1 == 1);
        // Someone saving against an old revision is told, and nothing is saved.
        auto stale = (*m)->save_policy(set, "bob", 101, 0);
        REQUIRE_FALSE(stale);
        CHECK(stale.error().code == Errc::conflict);
        auto s1 = (*m)->next_serial();
        auto s2 = (*m)->next_serial();
        REQUIRE(s1);
        REQUIRE(s2);
        CHECK(*s2 > *s1);
        serial = *s2;
        REQUIRE((*m)->add_session({Bytes(32, 7), "carol", {"heirloom-admins"}, true, 100, 200}));
    }
    auto m = Metadata::open(file);
    REQUIRE(m);
    auto p = (*m)->policy();
    REQUIRE(p);
    CHECK(p->revision == 1);
    CHECK(p->author == "carol");
    CHECK(p->set.images.size() == 1);
    auto s3 = (*m)->next_serial();
    REQUIRE(s3);
    CHECK(*s3 > serial);
    auto session = (*m)->session(Bytes(32, 7));
    REQUIRE(session);
    REQUIRE(*session);
    CHECK((*session)->groups == std::vector<std::string>{"heirloom-admins"});
    REQUIRE((*m)->remove_session(Bytes(32, 7)));
    CHECK_FALSE(*(*m)->session(Bytes(32, 7)));
}

TEST_CASE("metadata: agents, their images and the event report", "[server][metadata]") {
    test::TempDir dir;
    auto m = Metadata::open(dir / "metadata.db");
    REQUIRE(m);
    AgentRecord agent{"ep-1", Bytes(32, 1), "alice", "pc-1", 10, 10, "", 0, false};
    REQUIRE((*m)->add_agent(agent));
    CHECK_FALSE((*m)->add_agent(agent)); // ids and token hashes are unique
    auto found = (*m)->agent_by_token(Bytes(32, 1));
    REQUIRE(found);
    REQUIRE(*found);
    CHECK((*found)->user == "alice");
    CHECK_FALSE(*(*m)->agent_by_token(Bytes(32, 2)));

    std::vector<Event> events = {{"sync-done", 20, "ws", "payroll", 3, ""},
                                 {"sync-failed", 30, "ws", "payroll", 0, "disk full"},
                                 {"launch", 31, "ws", "", 0, "calc"}};
    REQUIRE((*m)->add_events(agent, events, 40));
    auto endpoints = (*m)->endpoints();
    REQUIRE(endpoints);
    REQUIRE(endpoints->size() == 1);
    const auto& e = (*endpoints)[0];
    CHECK(e.agent.last_contact == 40);
    CHECK(e.agent.last_error == "sync-failed: disk full");
    REQUIRE(e.images.size() == 1);
    CHECK(e.images[0].version == 3); // a failure does not forget the version it runs
    CHECK(e.images[0].state == "sync-failed");

    auto all = (*m)->events({});
    REQUIRE(all);
    CHECK(all->size() == 3);
    EventFilter only_launches;
    only_launches.type = "launch";
    auto launches = (*m)->events(only_launches);
    REQUIRE(launches);
    REQUIRE(launches->size() == 1);
    CHECK((*launches)[0].hostname == "pc-1");
    EventFilter later;
    later.since = 41;
    CHECK((*m)->events(later)->empty());

    REQUIRE((*m)->revoke_agent("ep-1"));
    CHECK((*(*m)->agent_by_token(Bytes(32, 1)))->revoked);
    CHECK((*m)->revoke_agent("ep-404").error().code == Errc::not_found);
}

TEST_CASE("metadata: a database from a newer server is refused", "[server][metadata]") {
    test::TempDir dir;
    fs::path file = dir / "metadata.db";
    { REQUIRE(Metadata::open(file)); }
    REQUIRE(test::run({"sqlite3", file.string(), "PRAGMA user_version=99"}).exit_code == 0);
    auto m = Metadata::open(file);
    REQUIRE_FALSE(m);
    CHECK(m.error().message.find("newer heirloom-server") != std::string::npos);
}
