#include "heirloom/common/file.hpp"
#include "heirloom/policy/json.hpp"
#include "policy/sample_policy.hpp"

#include <catch2/catch.hpp>

using namespace heirloom;
using namespace heirloom::policy;
using policy::test::sample_policy;

namespace {

// Parses doc, expecting failure, and returns the message.
std::string parse_error(const Json& doc) {
    auto parsed = parse_policy_set(doc.dump());
    REQUIRE_FALSE(parsed);
    return parsed.error().message;
}

Json sample_json() {
    return to_json(sample_policy());
}

} // namespace

TEST_CASE("a policy set round-trips through JSON", "[policy]") {
    PolicySet set = sample_policy();
    REQUIRE(validate(set));
    std::string text = to_json(set).dump();
    auto parsed = parse_policy_set(text);
    REQUIRE(parsed);
    CHECK(*parsed == set);
    CHECK(to_json(*parsed).dump() == text);
    CHECK(parsed->workspaces[0].host_check ==
          std::vector<std::string>{"/usr/bin/check-vpn", "--quiet"});
    CHECK(parsed->images[0].minimum_version == 3u);
    CHECK_FALSE(parsed->images[0].pinned_version);
}

TEST_CASE("every enum value survives the JSON form", "[policy]") {
    for (auto flow :
         {DataFlow::off, DataFlow::host_to_guest, DataFlow::guest_to_host, DataFlow::both}) {
        for (auto media :
             {RemovableMedia::off, RemovableMedia::read_only, RemovableMedia::read_write}) {
            for (auto printing : {Printing::off, Printing::on}) {
                PolicySet set = sample_policy();
                Assignment& a = set.assignments[0];
                a.controls = {flow, flow, printing, media};
                a.on_expiry = printing == Printing::on ? OnExpiry::stop_and_wipe : OnExpiry::stop;
                a.overriding = printing == Printing::on ? Overriding::yes : Overriding::no;
                a.principal.kind =
                    printing == Printing::on ? PrincipalKind::user : PrincipalKind::group;
                set.workspaces[0].persistence =
                    printing == Printing::on ? Persistence::persistent : Persistence::revertible;
                auto parsed = parse_policy_set(to_json(set).dump());
                REQUIRE(parsed);
                CHECK(*parsed == set);
            }
        }
    }
    for (auto mode : {NetworkMode::nat, NetworkMode::off}) {
        PolicySet set = sample_policy();
        set.workspaces[0].network = Network{mode, {}};
        auto parsed = parse_policy_set(to_json(set).dump());
        REQUIRE(parsed);
        CHECK(parsed->workspaces[0].network.mode == mode);
    }
    CHECK(to_string(DataFlow::host_to_guest) == "host-to-guest");
    CHECK(to_string(DataFlow::guest_to_host) == "guest-to-host");
    CHECK(to_string(RemovableMedia::read_only) == "read-only");
    CHECK(to_string(OnExpiry::stop_and_wipe) == "stop-and-wipe");
    CHECK(to_string(Printing::on) == "on");
}

TEST_CASE("the JSON spelling of the sample is the documented one", "[policy]") {
    Json j = sample_json();
    CHECK(j["assignments"][1]["controls"]["clipboard"] == "host-to-guest");
    CHECK(j["assignments"][1]["principal"] == Json{{"kind", "user"}, {"name", "bob"}});
    CHECK(j["assignments"][0]["overriding"] == false);
    CHECK(j["workspaces"][0]["network"]["mode"] == "allow-list");
    CHECK(j["workspaces"][1]["network"] == Json{{"mode", "off"}});
}

TEST_CASE("strict parsing names the JSON path at fault", "[policy]") {
    SECTION("unknown field") {
        Json j = sample_json();
        j["assignments"][1]["controls"]["webcam"] = "on";
        CHECK(parse_error(j) == "assignments[1].controls.webcam: unknown field");
        Json top = sample_json();
        top["extra"] = 1;
        CHECK(parse_error(top) == "extra: unknown field");
    }
    SECTION("bad enum value") {
        Json j = sample_json();
        j["assignments"][1]["controls"]["clipboard"] = "sideways";
        CHECK(parse_error(j) == "assignments[1].controls.clipboard: expected one of off, "
                                "host-to-guest, guest-to-host, both");
        j = sample_json();
        j["assignments"][0]["controls"]["removable_media"] = "read_only";
        CHECK(parse_error(j) == "assignments[0].controls.removable_media: expected one of off, "
                                "read-only, read-write");
    }
    SECTION("wrong types") {
        Json j = sample_json();
        j["workspaces"][1]["memory_mib"] = "4096";
        CHECK(parse_error(j) == "workspaces[1].memory_mib: expected an integer from 64 to 1048576");
        j = sample_json();
        j["workspaces"][1]["memory_mib"] = 4096.5;
        CHECK(parse_error(j) == "workspaces[1].memory_mib: expected an integer from 64 to 1048576");
        j = sample_json();
        j["apps"][0]["command"] = "PAY.EXE";
        CHECK(parse_error(j) == "apps[0].command: expected an array");
        j = sample_json();
        j["apps"][0]["file_types"][0] = 7;
        CHECK(parse_error(j) == "apps[0].file_types[0]: expected a string");
        j = sample_json();
        j["assignments"][0]["overriding"] = "yes";
        CHECK(parse_error(j) == "assignments[0].overriding: expected true or false");
        j = sample_json();
        j["assignments"] = Json::object();
        CHECK(parse_error(j) == "assignments: expected an array");
        CHECK_FALSE(parse_policy_set("[]"));
        CHECK_FALSE(parse_policy_set("{\"images\": "));
    }
    SECTION("missing field") {
        Json j = sample_json();
        j["assignments"][0].erase("expires_at");
        CHECK(parse_error(j) == "assignments[0].expires_at: missing");
    }
    SECTION("out of range numbers") {
        Json j = sample_json();
        j["assignments"][0]["expires_at"] = -1;
        CHECK(parse_error(j).starts_with("assignments[0].expires_at: expected an integer"));
        j["assignments"][0]["expires_at"] = 18446744073709551615ull;
        CHECK(parse_error(j).starts_with("assignments[0].expires_at: expected an integer"));
        j = sample_json();
        j["assignments"][0]["offline_limit"] = 400 * 86400;
        CHECK(parse_error(j).starts_with("assignments[0].offline_limit: expected an integer"));
        j = sample_json();
        j["workspaces"][0]["memory_mib"] = 1;
        CHECK(parse_error(j).starts_with("workspaces[0].memory_mib: expected an integer"));
    }
    SECTION("dangling references") {
        Json j = sample_json();
        j["apps"][1]["workspace"] = "nowhere";
        CHECK(parse_error(j) == "apps[1].workspace: no workspace \"nowhere\"");
        j = sample_json();
        j["assignments"][1]["workspace"] = "gone";
        CHECK(parse_error(j) == "assignments[1].workspace: no workspace \"gone\"");
        j = sample_json();
        j["workspaces"][1]["image"] = "missing-image";
        CHECK(parse_error(j) == "workspaces[1].image: no image named \"missing-image\"");
    }
    SECTION("duplicate ids") {
        Json j = sample_json();
        j["assignments"][1]["id"] = "a-finance";
        CHECK(parse_error(j) == "assignments[1]: duplicate id \"a-finance\"");
        j = sample_json();
        j["workspaces"][1]["id"] = "payroll-ws";
        CHECK(parse_error(j) == "workspaces[1]: duplicate id \"payroll-ws\"");
    }
    SECTION("control characters and bad ids") {
        Json j = sample_json();
        j["workspaces"][0]["display_name"] = "Pay\nroll";
        CHECK(parse_error(j) ==
              "workspaces[0].display_name: a name may not hold control characters");
        j = sample_json();
        j["assignments"][0]["principal"]["name"] = std::string("fin\0ance", 8);
        CHECK(parse_error(j) ==
              "assignments[0].principal.name: a name may not hold control characters");
        j = sample_json();
        j["apps"][0]["id"] = "../etc";
        CHECK(parse_error(j).starts_with("apps[0].id: an id may"));
        j = sample_json();
        j["apps"][0]["id"] = "";
        CHECK(parse_error(j) == "apps[0].id: expected an id of 1 to 64 characters");
    }
    SECTION("oversized strings and lists") {
        Json j = sample_json();
        j["workspaces"][0]["display_name"] = std::string(257, 'x');
        CHECK(parse_error(j) == "workspaces[0].display_name: expected a name of 1 to 256 bytes");
        j = sample_json();
        j["apps"][0]["id"] = std::string(65, 'a');
        CHECK(parse_error(j) == "apps[0].id: expected an id of 1 to 64 characters");
        j = sample_json();
        j["apps"][0]["command"][1] = std::string(5000, 'a');
        CHECK(parse_error(j) == "apps[0].command[1]: argument is too long");
        j = sample_json();
        j["apps"][0]["file_types"] = std::vector<std::string>(300, "text/plain");
        CHECK(parse_error(j) == "apps[0].file_types: more than 256 entries");
        CHECK_FALSE(parse_policy_set(std::string(max_policy_document + 1, ' ')));
    }
    SECTION("colours, hosts, MIME types, versions") {
        Json j = sample_json();
        j["workspaces"][0]["frame_colour"] = "#12345g";
        CHECK(parse_error(j) ==
              "workspaces[0].frame_colour: expected a colour of the form #rrggbb");
        j["workspaces"][0]["frame_colour"] = "red";
        CHECK(parse_error(j) ==
              "workspaces[0].frame_colour: expected a colour of the form #rrggbb");
        j = sample_json();
        j["workspaces"][0]["network"]["hosts"][0] = "evil.com/../x";
        CHECK(parse_error(j).starts_with("workspaces[0].network.hosts[0]: a host name"));
        j = sample_json();
        j["workspaces"][1]["network"]["hosts"] = Json::array();
        CHECK(parse_error(j) == "workspaces[1].network.hosts: only allowed with mode allow-list");
        j = sample_json();
        j["apps"][1]["file_types"][0] = "pdf";
        CHECK(parse_error(j).starts_with("apps[1].file_types[0]: expected a MIME type"));
        j = sample_json();
        j["images"][0]["pinned_version"] = 2;
        CHECK(parse_error(j) == "images[0].pinned_version: is below minimum_version");
        j = sample_json();
        j["apps"][0]["command"] = Json::array();
        CHECK(parse_error(j) == "apps[0].command: must name at least the program to run");
    }
}

TEST_CASE("the fuzz seeds are valid policy sets", "[policy]") {
    for (const char* name : {"small-set.json", "empty-set.json"}) {
        auto text =
            read_text_file(std::string(HEIRLOOM_SOURCE_DIR) + "/tests/fuzz/seeds/policy/" + name);
        REQUIRE(text);
        auto parsed = parse_policy_set(*text);
        INFO(name);
        REQUIRE(parsed);
        auto again = parse_policy_set(to_json(*parsed).dump());
        REQUIRE(again);
        CHECK(*again == *parsed);
    }
}
