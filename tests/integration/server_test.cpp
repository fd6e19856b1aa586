// The image and policy server against a real directory (slapd) and the real programs
// (heirloom-server, heirloom-admin): logins, the most-restrictive rule, signed policies, who
// may fetch what, a sync through the server, and the event report.

#include "heirloom/policy/signed.hpp"
#include "heirloom/trim/image_ops.hpp"
#include "heirloom/trim/sync.hpp"
#include "support/server_deployment.hpp"

#include <catch2/catch.hpp>

using namespace heirloom;
using test::assignment;
using test::workspace;

namespace {

// Sets up: image payroll (for finance and staff) and image cad (for contractors).
struct Deployment {
    test::TempDir dir;
    test::SyntheticDisk payroll = test::make_disk(24ull << 20, 60, 101);
    test::SyntheticDisk cad = test::make_disk(8ull << 20, 20, 102);

    void set_up(const test::HeirloomServer& server) {
        test::admin_login(server, dir / "home");
        REQUIRE(test::push_disk(server, dir / "home", "payroll", payroll, dir.path()) == 1);
        REQUIRE(test::push_disk(server, dir / "home", "cad", cad, dir.path()) == 1);
        auto admin = server.login("carol", "carol-pw");
        auto put = [&](const std::string& path, const Json& body) {
            auto r = admin->put(path, body);
            INFO(path << ": " << (r ? "" : r.error().message));
            REQUIRE(r);
        };
        put("/v1/admin/workspaces/payroll-ws", workspace("payroll", "Payroll"));
        put("/v1/admin/workspaces/cad-ws", workspace("cad", "CAD"));
        put("/v1/admin/assignments/finance-payroll",
            assignment("payroll-ws", "group", "finance", "both", "both", "on", "read-write"));
        put("/v1/admin/assignments/staff-payroll",
            assignment("payroll-ws", "group", "staff", "host-to-guest", "off", "on", "read-only"));
        put("/v1/admin/assignments/contractors-cad",
            assignment("cad-ws", "group", "contractors", "off", "off", "off", "off"));
    }
};

policy::SignedPolicy fetch_policy(const test::HeirloomServer& server, const test::Enrolment& e,
                                  const std::string& user) {
    auto agent = test::agent_client(server, e);
    auto body = agent->get_text("/v1/agent/policy");
    INFO((body ? "" : body.error().message));
    REQUIRE(body);
    auto verified =
        policy::verify_policy(as_bytes(*body), e.server_key, user, std::time(nullptr), 0);
    INFO((verified ? "" : verified.error().message));
    REQUIRE(verified);
    return *verified;
}

std::vector<std::string> workspace_ids(const policy::SignedPolicy& p) {
    std::vector<std::string> ids;
    for (const auto& w : p.policy.workspaces)
        ids.push_back(w.workspace.id);
    return ids;
}

} // namespace

TEST_CASE("server: logins bind to the directory as the user", "[server][integration]") {
    test::Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    test::HeirloomServer server(slapd);
    HL_SKIP_UNLESS_RUNNING(server);
    auto api = server.client();

    auto carol = api->post("/v1/login", {{"user", "carol"}, {"password", "carol-pw"}});
    REQUIRE(carol);
    CHECK((*carol)["admin"] == true);
    auto alice = api->post("/v1/login", {{"user", "alice"}, {"password", "alice-pw"}});
    REQUIRE(alice);
    CHECK((*alice)["admin"] == false);
    CHECK((*alice)["groups"] == Json({"finance", "staff"}));

    // Wrong password, unknown user and locked user look the same from outside.
    for (auto [user, password] : std::vector<std::pair<std::string, std::string>>{
             {"alice", "wrong"}, {"nobody", "alice-pw"}, {"dave", "dave-pw"}}) {
        auto r = api->post("/v1/login", {{"user", user}, {"password", password}});
        REQUIRE_FALSE(r);
        CHECK(r.error().code == Errc::crypto);
        CHECK(r.error().message == "wrong user name or password");
    }
    auto empty = api->post("/v1/login", {{"user", "alice"}, {"password", ""}});
    REQUIRE_FALSE(empty);
    CHECK(empty.error().code == Errc::invalid_argument);

    // Filter metacharacters in the name match nothing extra, with any known password.
    for (const std::string name : {"*", "*)(uid=*", "alice)(|(uid=*", "al*", "\\2a", "(uid=alice)"})
        for (const std::string password : {"alice-pw", "mallory-pw", "carol-pw"}) {
            auto r = api->post("/v1/login", {{"user", name}, {"password", password}});
            INFO(name << " / " << password);
            REQUIRE_FALSE(r);
            CHECK(r.error().code == Errc::crypto);
        }
    // The user whose name is full of metacharacters logs in as exactly themselves.
    auto mallory = api->post("/v1/login", {{"user", "m*a(l)lo\\ry"}, {"password", "mallory-pw"}});
    REQUIRE(mallory);
    CHECK((*mallory)["user"] == "m*a(l)lo\\ry");
    CHECK((*mallory)["groups"] == Json({"contractors"}));

    // The admin API is for the admin group only, and needs a valid token.
    auto as_alice = server.login("alice", "alice-pw");
    auto denied = as_alice->get("/v1/admin/images");
    REQUIRE_FALSE(denied);
    CHECK(denied.error().code == Errc::denied);
    auto anonymous = api->get("/v1/admin/images");
    REQUIRE_FALSE(anonymous);
    CHECK(anonymous.error().code == Errc::crypto);
    api->set_token("s." + std::string(64, 'a'));
    CHECK(api->get("/v1/admin/images").error().code == Errc::crypto);
    auto as_carol = server.login("carol", "carol-pw");
    CHECK(as_carol->get("/v1/admin/images"));

    // A login survives a restart of the server.
    server.restart();
    HL_SKIP_UNLESS_RUNNING(server);
    auto again = server.client();
    again->set_token((*carol)["token"].get<std::string>());
    CHECK(again->get("/v1/admin/images"));
}

TEST_CASE("server: the right users get the right workspaces, signed, and only their images",
          "[server][integration]") {
    test::Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    test::HeirloomServer server(slapd);
    HL_SKIP_UNLESS_RUNNING(server);
    Deployment d;
    d.set_up(server);

    auto alice = test::enrol(server, "alice", "alice-pw", "pc-alice");
    auto bob = test::enrol(server, "bob", "bob-pw", "pc-bob");
    auto mallory = test::enrol(server, "m*a(l)lo\\ry", "mallory-pw", "pc-mallory");

    // Alice is in finance and staff: payroll, with the most restrictive of both assignments.
    auto pa = fetch_policy(server, alice, "alice");
    REQUIRE(workspace_ids(pa) == std::vector<std::string>{"payroll-ws"});
    const auto& w = pa.policy.workspaces[0];
    CHECK(w.controls.clipboard == policy::DataFlow::host_to_guest);
    CHECK(w.controls.file_transfer == policy::DataFlow::off);
    CHECK(w.controls.printing == policy::Printing::on);
    CHECK(w.controls.removable_media == policy::RemovableMedia::read_only);
    CHECK(w.decided_by.clipboard == "staff-payroll");
    CHECK(w.assignments == std::vector<std::string>{"finance-payroll", "staff-payroll"});
    // Bob is in staff and contractors; the metacharacter user only in contractors.
    CHECK(workspace_ids(fetch_policy(server, bob, "bob")) ==
          std::vector<std::string>{"payroll-ws", "cad-ws"});
    auto pm = fetch_policy(server, mallory, "m*a(l)lo\\ry");
    CHECK(workspace_ids(pm) == std::vector<std::string>{"cad-ws"});
    // Serials only increase.
    auto pa2 = fetch_policy(server, alice, "alice");
    CHECK(pa2.serial > pa.serial);

    SECTION("an overriding assignment wins over the most restrictive rule") {
        auto admin = server.login("carol", "carol-pw");
        REQUIRE(admin->put(
            "/v1/admin/assignments/alice-override",
            assignment("payroll-ws", "user", "alice", "both", "both", "on", "read-write", true)));
        auto p = fetch_policy(server, alice, "alice");
        CHECK(p.policy.workspaces[0].controls.clipboard == policy::DataFlow::both);
        CHECK(p.policy.workspaces[0].decided_by.clipboard == "alice-override");
    }

    SECTION("the agent's verification refuses tampered, foreign, expired and replayed policies") {
        auto agent = test::agent_client(server, alice);
        auto body = agent->get_text("/v1/agent/policy");
        REQUIRE(body);
        Bytes bytes(body->begin(), body->end());
        std::int64_t now = std::time(nullptr);
        auto good = policy::verify_policy(bytes, alice.server_key, "alice", now, 0);
        REQUIRE(good);
        Bytes tampered = bytes;
        auto at = std::string(tampered.begin(), tampered.end()).find("host-to-guest");
        REQUIRE(at != std::string::npos);
        tampered[at] = 'H'; // one byte changed, length kept
        CHECK_FALSE(policy::verify_policy(tampered, alice.server_key, "alice", now, 0));
        auto other = crypto::generate_signing_key();
        CHECK_FALSE(policy::verify_policy(bytes, other.public_key, "alice", now, 0));
        CHECK_FALSE(policy::verify_policy(bytes, alice.server_key, "bob", now, 0));
        CHECK_FALSE(policy::verify_policy(bytes, alice.server_key, "alice", good->expires_at, 0));
        CHECK_FALSE(policy::verify_policy(bytes, alice.server_key, "alice", now, good->serial + 1));
    }

    SECTION("image keys and objects only for the images assigned to the user") {
        auto as_mallory = test::agent_client(server, mallory);
        auto key = as_mallory->get("/v1/agent/images/payroll/key");
        REQUIRE_FALSE(key);
        CHECK(key.error().code == Errc::denied);
        auto latest = as_mallory->get_text("/v1/images/payroll/repo/images/payroll/latest");
        REQUIRE_FALSE(latest);
        CHECK(latest.error().code == Errc::denied);
        CHECK(as_mallory->get_text("/v1/images/cad/repo/images/cad/latest"));
        // A chunk of payroll, by its real name: still refused to mallory, served to alice.
        fs::path chunks = server.data_dir() / "images/payroll/repo/chunks";
        fs::path first;
        for (const auto& f : fs::recursive_directory_iterator(chunks))
            if (f.is_regular_file()) {
                first = f.path();
                break;
            }
        REQUIRE(!first.empty());
        std::string path =
            "/v1/images/payroll/repo/" + fs::relative(first, chunks.parent_path()).string();
        auto chunk = as_mallory->get_text(path);
        REQUIRE_FALSE(chunk);
        CHECK(chunk.error().code == Errc::denied);
        auto as_alice = test::agent_client(server, alice);
        auto served = as_alice->get_text(path);
        REQUIRE(served);
        CHECK(served->size() == fs::file_size(first));
        CHECK_FALSE(as_alice->get("/v1/agent/images/cad/key"));
        // Paths outside the image's repository are not objects.
        for (const std::string bad :
             {"/v1/images/payroll/repo/../../keys/signing.key",
              "/v1/images/payroll/repo/family.key", "/v1/images/payroll/repo/images/cad/latest",
              "/v1/images/payroll/repo/chunks/zz/../../family.key"})
            CHECK_FALSE(as_alice->get_text(bad));
    }

    SECTION("an agent syncs its image through the server and reports it") {
        auto as_alice = test::agent_client(server, alice);
        auto key = as_alice->get("/v1/agent/images/payroll/key");
        REQUIRE(key);
        auto secret = from_hex_fixed<32>((*key)["family_secret"].get<std::string>());
        REQUIRE(secret);
        trim::KeySet keys{trim::FamilyKeys(*secret), alice.server_key, std::nullopt};
        trim::SyncOptions o;
        o.from = server.url() + "/v1/images/payroll/repo";
        o.image = "payroll";
        o.store = d.dir / "store";
        o.workers = 4;
        o.source.ca_file = server.ca_file().string();
        o.source.bearer_token = alice.token;
        auto synced = trim::sync_image(o, keys);
        INFO((synced ? "" : synced.error().message));
        REQUIRE(synced);
        CHECK(synced->version == 1);
        auto exported =
            trim::export_image(o.store, "payroll", std::nullopt, d.dir / "out.vhd", keys, nullptr);
        REQUIRE(exported);
        CHECK(test::read_vhd(d.dir / "out.vhd") == d.payroll.content);

        // Without the token the same sync is refused.
        o.source.bearer_token.clear();
        o.store = d.dir / "store2";
        CHECK_FALSE(trim::sync_image(o, keys));

        REQUIRE(as_alice->post("/v1/agent/events", {{"events",
                                                     {{{"type", "sync-done"},
                                                       {"time", std::time(nullptr)},
                                                       {"workspace", "payroll-ws"},
                                                       {"image", "payroll"},
                                                       {"version", 1},
                                                       {"message", "=HYPERLINK(\"x\")"}}}}}));
        auto admin = server.login("carol", "carol-pw");
        auto endpoints = admin->get("/v1/admin/endpoints");
        REQUIRE(endpoints);
        bool seen = false;
        for (const auto& e : (*endpoints)["endpoints"])
            if (e["id"] == alice.agent_id) {
                REQUIRE(e["images"].size() == 1);
                CHECK(e["images"][0]["version"] == 1);
                CHECK(e["images"][0]["state"] == "sync-done");
                CHECK(e["hostname"] == "pc-alice");
                seen = true;
            }
        CHECK(seen);
        auto csv = admin->get_text("/v1/admin/events?format=csv&type=sync-done");
        REQUIRE(csv);
        CHECK(csv->find("alice,") != std::string::npos);
        // A formula from an endpoint is defused for spreadsheets.
        CHECK(csv->find(",\"'=HYPERLINK(\"\"x\"\")\"") != std::string::npos);

        // Revoking the endpoint stops its token at once.
        REQUIRE(admin->del("/v1/admin/endpoints/" + alice.agent_id));
        auto revoked = as_alice->get_text("/v1/agent/policy");
        REQUIRE_FALSE(revoked);
        CHECK(revoked.error().code == Errc::crypto);
    }
}
