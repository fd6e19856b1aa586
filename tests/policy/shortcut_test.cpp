// PublishedApp.desktop_shortcut: optional in the JSON form, false when absent, written only
// when true (so policies without shortcuts stay readable by agents that predate the field).

#include "heirloom/policy/json.hpp"
#include "policy/sample_policy.hpp"

#include <catch2/catch.hpp>

using namespace heirloom;

TEST_CASE("policy: desktop_shortcut is optional and round-trips", "[policy][shell]") {
    auto set = policy::test::sample_policy();
    REQUIRE_FALSE(set.apps.empty());
    CHECK_FALSE(set.apps[0].desktop_shortcut);
    Json without = policy::to_json(set);
    CHECK_FALSE(without["apps"][0].contains("desktop_shortcut"));

    set.apps[0].desktop_shortcut = true;
    Json with = policy::to_json(set);
    CHECK(with["apps"][0]["desktop_shortcut"] == true);
    auto back = policy::parse_policy_set(with.dump());
    REQUIRE(back);
    CHECK(*back == set);
    CHECK(back->apps[0].desktop_shortcut);

    with["apps"][0]["desktop_shortcut"] = "yes";
    auto bad = policy::parse_policy_set(with.dump());
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message.find("apps[0].desktop_shortcut: expected true or false") !=
          std::string::npos);
}
