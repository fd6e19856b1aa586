#include "heirloom/policy/evaluate.hpp"
#include "policy/sample_policy.hpp"

#include <catch2/catch.hpp>

using namespace heirloom;
using namespace heirloom::policy;
using policy::test::assignment;
using policy::test::open_controls;
using policy::test::sample_policy;

namespace {

constexpr std::int64_t now = 1'800'000'000;

const EffectiveWorkspace* find(const EffectivePolicy& p, std::string_view id) {
    for (const auto& w : p.workspaces)
        if (w.workspace.id == id)
            return &w;
    return nullptr;
}

std::vector<std::string> app_ids(const EffectivePolicy& p) {
    std::vector<std::string> ids;
    for (const auto& app : p.apps)
        ids.push_back(app.id);
    return ids;
}

} // namespace

TEST_CASE("a user gets the workspaces of their own and their groups' assignments", "[policy]") {
    PolicySet set = sample_policy();
    std::vector<std::string> groups{"staff", "finance"};
    EffectivePolicy bob = evaluate(set, "bob", groups, now);
    CHECK(bob.user == "bob");
    REQUIRE(bob.workspaces.size() == 2);
    CHECK(bob.workspaces[0].workspace.id == "payroll-ws");
    CHECK(bob.workspaces[0].image.name == "payroll");
    CHECK(bob.workspaces[0].controls == open_controls());
    CHECK(bob.workspaces[1].workspace.id == "cad-ws");
    CHECK(bob.workspaces[1].controls.clipboard == DataFlow::host_to_guest);
    CHECK(app_ids(bob) == std::vector<std::string>{"payroll-app", "cad-app"});

    EffectivePolicy alice = evaluate(set, "alice", groups, now);
    REQUIRE(alice.workspaces.size() == 1);
    CHECK(alice.workspaces[0].workspace.id == "payroll-ws");
    CHECK(app_ids(alice) == std::vector<std::string>{"payroll-app"});
}

TEST_CASE("a user with no assignments gets nothing", "[policy]") {
    PolicySet set = sample_policy();
    std::vector<std::string> groups{"staff"};
    EffectivePolicy carol = evaluate(set, "carol", groups, now);
    CHECK(carol.workspaces.empty());
    CHECK(carol.apps.empty());
    CHECK(evaluate(set, "", {}, now).workspaces.empty());
}

TEST_CASE("the most restrictive value of each control wins", "[policy]") {
    PolicySet set = sample_policy();
    set.assignments.push_back(assignment(
        "a-staff", "payroll-ws", PrincipalKind::group, "staff",
        {DataFlow::guest_to_host, DataFlow::both, Printing::off, RemovableMedia::read_write}));
    set.assignments.push_back(assignment(
        "a-bob", "payroll-ws", PrincipalKind::user, "bob",
        {DataFlow::both, DataFlow::host_to_guest, Printing::on, RemovableMedia::read_only}));
    set.assignments[0].expires_at = now + 5000;
    set.assignments[2].expires_at = now + 1000;
    set.assignments[3].offline_limit = 3600;
    set.assignments[2].on_expiry = OnExpiry::stop_and_wipe;

    std::vector<std::string> groups{"finance", "staff"};
    EffectivePolicy bob = evaluate(set, "bob", groups, now);
    const EffectiveWorkspace* w = find(bob, "payroll-ws");
    REQUIRE(w);
    CHECK(w->assignments == std::vector<std::string>{"a-finance", "a-staff", "a-bob"});
    CHECK(w->controls.clipboard == DataFlow::guest_to_host);
    CHECK(w->decided_by.clipboard == "a-staff");
    CHECK(w->controls.file_transfer == DataFlow::host_to_guest);
    CHECK(w->decided_by.file_transfer == "a-bob");
    CHECK(w->controls.printing == Printing::off);
    CHECK(w->decided_by.printing == "a-staff");
    CHECK(w->controls.removable_media == RemovableMedia::read_only);
    CHECK(w->decided_by.removable_media == "a-bob");
    CHECK(w->lease.expires_at == now + 1000);
    CHECK(w->decided_by.expires_at == "a-staff");
    CHECK(w->lease.offline_limit == 3600);
    CHECK(w->decided_by.offline_limit == "a-bob");
    CHECK(w->lease.on_expiry == OnExpiry::stop_and_wipe);
    CHECK(w->decided_by.on_expiry == "a-staff");
}

TEST_CASE("opposite clipboard directions combine to off", "[policy]") {
    CHECK(most_restrictive(DataFlow::host_to_guest, DataFlow::guest_to_host) == DataFlow::off);
    CHECK(most_restrictive(DataFlow::both, DataFlow::guest_to_host) == DataFlow::guest_to_host);
    CHECK(most_restrictive(DataFlow::both, DataFlow::both) == DataFlow::both);
    CHECK(most_restrictive(DataFlow::off, DataFlow::both) == DataFlow::off);

    PolicySet set = sample_policy();
    set.assignments[0].controls.clipboard = DataFlow::host_to_guest;
    set.assignments[0].controls.file_transfer = DataFlow::guest_to_host;
    set.assignments.push_back(assignment(
        "a-staff", "payroll-ws", PrincipalKind::group, "staff",
        {DataFlow::guest_to_host, DataFlow::host_to_guest, Printing::on, RemovableMedia::off}));
    std::vector<std::string> groups{"finance", "staff"};
    const auto bob = evaluate(set, "bob", groups, now);
    const EffectiveWorkspace* w = find(bob, "payroll-ws");
    REQUIRE(w);
    CHECK(w->controls.clipboard == DataFlow::off);
    CHECK(w->controls.file_transfer == DataFlow::off);
    CHECK(w->decided_by.clipboard == "a-staff");
}

TEST_CASE("overriding assignments replace the ordinary ones", "[policy]") {
    PolicySet set = sample_policy();
    // Finance is locked down; the exception for Bob is marked overriding and wins.
    set.assignments[0].controls = {DataFlow::off, DataFlow::off, Printing::off,
                                   RemovableMedia::off};
    set.assignments[0].offline_limit = 60;
    Assignment exception =
        assignment("a-bob-exception", "payroll-ws", PrincipalKind::user, "bob", open_controls());
    exception.overriding = Overriding::yes;
    set.assignments.push_back(exception);
    std::vector<std::string> groups{"finance"};

    auto bob = evaluate(set, "bob", groups, now);
    const EffectiveWorkspace* w = find(bob, "payroll-ws");
    REQUIRE(w);
    CHECK(w->controls == open_controls());
    CHECK(w->lease.offline_limit == 7 * 86400);
    CHECK(w->assignments == std::vector<std::string>{"a-bob-exception"});
    CHECK(w->decided_by.clipboard == "a-bob-exception");

    // Several overriding assignments are merged most-restrictively among themselves.
    Assignment second = assignment("a-finance-override", "payroll-ws", PrincipalKind::group,
                                   "finance", open_controls());
    second.controls.printing = Printing::off;
    second.overriding = Overriding::yes;
    set.assignments.push_back(second);
    bob = evaluate(set, "bob", groups, now);
    w = find(bob, "payroll-ws");
    REQUIRE(w);
    CHECK(w->controls.printing == Printing::off);
    CHECK(w->controls.clipboard == DataFlow::both);
    CHECK(w->decided_by.printing == "a-finance-override");

    // Alice is not Bob: only the finance assignments apply to her.
    auto alice = evaluate(set, "alice", groups, now);
    REQUIRE(find(alice, "payroll-ws"));
    CHECK(find(alice, "payroll-ws")->assignments == std::vector<std::string>{"a-finance-override"});
}

TEST_CASE("expired assignments are ignored", "[policy]") {
    PolicySet set = sample_policy();
    set.assignments[1].expires_at = now;
    std::vector<std::string> groups;
    CHECK(find(evaluate(set, "bob", groups, now), "cad-ws") == nullptr);
    CHECK(find(evaluate(set, "bob", groups, now - 1), "cad-ws") != nullptr);

    // An expired restrictive assignment no longer restricts.
    set.assignments.push_back(assignment("a-old", "payroll-ws", PrincipalKind::user, "bob", {}));
    set.assignments.back().expires_at = now - 10;
    std::vector<std::string> finance{"finance"};
    const auto bob = evaluate(set, "bob", finance, now);
    REQUIRE(find(bob, "payroll-ws"));
    CHECK(find(bob, "payroll-ws")->controls == open_controls());
}

TEST_CASE("group names with LDAP filter metacharacters are plain strings", "[policy]") {
    PolicySet set = sample_policy();
    set.assignments[0].principal.name = "fin*)(cn=*";
    std::vector<std::string> star{"*"};
    CHECK(evaluate(set, "bob", star, now).workspaces.size() == 1); // only Bob's own cad-ws
    std::vector<std::string> fin{"fin"};
    CHECK(find(evaluate(set, "bob", fin, now), "payroll-ws") == nullptr);
    std::vector<std::string> exact{"fin*)(cn=*"};
    CHECK(find(evaluate(set, "bob", exact, now), "payroll-ws") != nullptr);
    // A user named like a group is not that group, and vice versa.
    CHECK(find(evaluate(set, "fin*)(cn=*", {}, now), "payroll-ws") == nullptr);
    std::vector<std::string> bob_group{"bob"};
    CHECK(evaluate(set, "alice", bob_group, now).workspaces.empty());
}
