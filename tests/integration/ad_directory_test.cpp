// The LDAP directory backend against a real Active Directory domain controller (Samba,
// tests/support/samba_ad.hpp; its users, groups and account states are listed at the top of
// tests/support/samba-ad.sh): every login-name form, nested and primary groups, each account
// state, people-only paged searches, LDAPS and StartTLS with the fixture's own CA.

#include "heirloom/server/directory.hpp"
#include "support/samba_ad.hpp"

#include <algorithm>
#include <catch2/catch.hpp>

using namespace heirloom;
using namespace heirloom::server;
using heirloom::test::SambaAd;

namespace {

using Names = std::vector<std::string>;

std::unique_ptr<Directory> open_or_fail(const DirectoryConfig& config) {
    auto directory = open_ldap_directory(config);
    if (!directory)
        FAIL(directory.error().message);
    return std::move(*directory);
}

DirectoryUser login(Directory& directory, std::string_view name, std::string_view password) {
    auto user = directory.authenticate(name, password);
    if (!user)
        FAIL(std::string(name) + ": " + user.error().message);
    return *user;
}

template <class T> Error error_of(const Result<T>& result) {
    REQUIRE_FALSE(result.has_value());
    return result.error();
}

bool has(const Names& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

Names names(const Result<std::vector<DirectoryEntry>>& entries) {
    if (!entries)
        FAIL(entries.error().message);
    Names out;
    for (const auto& entry : *entries)
        out.push_back(entry.name);
    return out;
}

// A refused login: the message every caller may see, then the directory's reason.
void check_refused(Directory& directory, std::string_view name, std::string_view password,
                   const std::string& reason) {
    auto error = error_of(directory.authenticate(name, password));
    INFO(name << ": " << error.message);
    CHECK(error.code == Errc::crypto);
    CHECK(error.message.starts_with("wrong user name or password"));
    CHECK(error.message.find(reason) != std::string::npos);
    CHECK(error.message.find(std::string(password)) == std::string::npos);
}

} // namespace

TEST_CASE("active directory: every login-name form is the same user, with nested groups",
          "[directory][ad]") {
    SambaAd ad;
    HL_SKIP_UNLESS_RUNNING(ad);
    auto directory = open_or_fail(ad.config());

    for (const char* form : {"alice", "ALICE", "alice@heirloom.test", "HEIRLOOM\\alice",
                             "heirloom\\Alice", "Alice@HEIRLOOM.TEST"}) {
        INFO(form);
        auto alice = login(*directory, form, "Alice-Secret1");
        CHECK(alice.name == "alice");
        CHECK(alice.dn == "CN=alice,CN=Users,DC=heirloom,DC=test");
        CHECK(alice.display_name == "Alice Example");
        CHECK(alice.groups == Names{"Domain Users", "Heirloom-Admins", "Users"});
    }
    // Bob is in Payroll, which is in Finance; Domain Users is his primary group, and it is in
    // the built-in Users.
    auto bob = login(*directory, "bob@heirloom.test", "Bob-Secret1");
    CHECK(bob.name == "bob");
    CHECK(bob.groups == Names{"Domain Users", "Finance", "Payroll", "Users"});
    auto looked_up = directory->lookup("HEIRLOOM\\bob");
    REQUIRE(looked_up);
    CHECK(looked_up->name == "bob");
    CHECK(looked_up->groups == bob.groups);
    auto carol = directory->lookup("carol");
    REQUIRE(carol);
    CHECK(carol->groups == Names{"Domain Users", "Users"});

    SECTION("another domain's name, or a malformed one, is nobody") {
        check_refused(*directory, "OTHER\\alice", "Alice-Secret1", "no user");
        check_refused(*directory, "alice@other.test", "Alice-Secret1", "no user");
        check_refused(*directory, "\\alice", "Alice-Secret1", "no user");
        CHECK(error_of(directory->lookup("OTHER\\alice")).code == Errc::not_found);
        // Filter syntax in a name is a name, not a filter.
        check_refused(*directory, "*", "Alice-Secret1", "no user");
        check_refused(*directory, "al*", "Alice-Secret1", "no user");
        check_refused(*directory, "*)(sAMAccountName=alice", "Alice-Secret1", "no user");
        check_refused(*directory, "HEIRLOOM\\*", "Alice-Secret1", "no user");
    }
    SECTION("a computer account is not a person who can log in") {
        CHECK(error_of(directory->lookup("WS01$")).code == Errc::not_found);
    }
}

TEST_CASE("active directory: account states are refused, with the reason for the log",
          "[directory][ad]") {
    SambaAd ad;
    HL_SKIP_UNLESS_RUNNING(ad);
    auto directory = open_or_fail(ad.config());

    check_refused(*directory, "alice", "not-her-password", "wrong password (AD 52e)");
    check_refused(*directory, "nobody", "whatever", "no user with that name");
    check_refused(*directory, "dave", "Dave-Secret1", "account disabled (AD 533)");
    check_refused(*directory, "erin", "Erin-Secret1", "account expired (AD 701)");
    check_refused(*directory, "frank", "Frank-Secret1", "must change password (AD 773)");
    // Three wrong passwords lock lucy (the domain's lockout threshold); then even hers fails.
    login(*directory, "lucy", "Lucy-Secret1");
    for (int i = 0; i < 3; ++i)
        check_refused(*directory, "lucy", "Lucy-Guess-9", "wrong password");
    check_refused(*directory, "lucy", "Lucy-Secret1", "account locked (AD 775)");

    // Looked up for an enrolled endpoint: disabled and expired accounts get nothing.
    auto dave = error_of(directory->lookup("dave"));
    CHECK(dave.code == Errc::denied);
    CHECK(dave.message.find("disabled") != std::string::npos);
    auto erin = error_of(directory->lookup("erin"));
    CHECK(erin.code == Errc::denied);
    CHECK(erin.message.find("expired") != std::string::npos);
    REQUIRE(directory->lookup("bob"));
    REQUIRE(ad.samba_tool({"user", "disable", "bob"}).empty());
    CHECK(error_of(directory->lookup("bob")).code == Errc::denied);
}

TEST_CASE("active directory: searches list people and groups, past 1,000 entries",
          "[directory][ad]") {
    SambaAd ad;
    HL_SKIP_UNLESS_RUNNING(ad);
    auto directory = open_or_fail(ad.config());

    auto everyone = names(directory->search_users("", 5000));
    CHECK(everyone.size() >= 1100 + 6);
    for (const char* person : {"alice", "bob", "carol", "frank", "heirloom-svc", "bulk1100"})
        CHECK(has(everyone, person));
    // Not machines, not the disabled (krbtgt, Guest and dave among them).
    for (const char* not_a_person : {"WS01$", "DC$", "krbtgt", "Guest", "dave"})
        CHECK_FALSE(has(everyone, not_a_person));
    auto bulk = names(directory->search_users("bulk", 5000));
    CHECK(bulk.size() == 1100);
    CHECK(names(directory->search_users("bulk", 1050)).size() == 1050);
    CHECK(names(directory->search_users("*)(sAMAccountName=*", 100)).empty());

    auto groups = names(directory->search_groups("", 1000));
    for (const char* group : {"Heirloom-Admins", "Payroll", "Finance", "Domain Users"})
        CHECK(has(groups, group));
    CHECK(names(directory->search_groups("pay", 10)) == Names{"Payroll"});
}

TEST_CASE("active directory: LDAPS and StartTLS check the DC's certificate", "[directory][ad]") {
    SambaAd ad;
    HL_SKIP_UNLESS_RUNNING(ad);
    DirectoryConfig ldaps = ad.config();
    ldaps.uri = ad.ldaps_uri();
    ldaps.tls = DirectoryTls::ldaps;
    auto over_ldaps = open_or_fail(ldaps);
    CHECK(login(*over_ldaps, "alice", "Alice-Secret1").name == "alice");

    // Another CA: the handshake fails, and nobody logs in.
    test::TempDir other;
    test::TlsFiles files;
    std::string problem;
    REQUIRE(test::make_test_certificate(other.path(), files, problem));
    for (DirectoryConfig config : {ad.config(), ldaps}) {
        config.ca_file = files.certificate.string();
        auto directory = open_or_fail(config);
        auto error = error_of(directory->authenticate("alice", "Alice-Secret1"));
        CHECK(error.code == Errc::network);
        CHECK(error.message.find("TLS") != std::string::npos);
    }
}
