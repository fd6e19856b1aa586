// The LDAP directory backend against a real slapd: the demo directory of
// installer/demo-directory.sh (users and groups in installer/demo-directory/README.md).

#include "heirloom/server/directory.hpp"
#include "support/slapd.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

using namespace heirloom;
using namespace heirloom::server;
using heirloom::test::Slapd;

namespace {

using Groups = std::vector<std::string>;

const std::string people = "ou=people,dc=heirloom,dc=test";
const std::string groups = "ou=groups,dc=heirloom,dc=test";
const std::string mallory = "m*a(l)lo\\ry";

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

Groups groups_of(Directory& directory, std::string_view name, std::string_view password) {
    return login(directory, name, password).groups;
}

// The error of a call that must fail.
template <class T> Error error_of(const Result<T>& result) {
    REQUIRE_FALSE(result.has_value());
    return result.error();
}

std::vector<std::string> names(const Result<std::vector<DirectoryEntry>>& entries) {
    if (!entries)
        FAIL(entries.error().message);
    std::vector<std::string> out;
    for (const auto& entry : *entries)
        out.push_back(entry.name);
    return out;
}

// One LDIF entry (lines, then a blank line).
std::string ldif_entry(std::initializer_list<std::string> lines) {
    std::string out;
    for (const auto& line : lines)
        out += line + "\n";
    return out + "\n";
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Resumes a paused slapd however the test ends, so the directory can be stopped.
struct Paused {
    explicit Paused(Slapd& slapd) : slapd_(slapd) { slapd_.pause(); }
    ~Paused() { slapd_.resume(); }
    Paused(const Paused&) = delete;
    Paused& operator=(const Paused&) = delete;
    Slapd& slapd_;
};

} // namespace

TEST_CASE("directory: users log in with their password and get their groups",
          "[directory][slapd]") {
    Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    auto directory = open_or_fail(slapd.config());

    DirectoryUser alice = login(*directory, "alice", "alice-pw");
    CHECK(alice.name == "alice");
    CHECK(alice.dn == "uid=alice," + people);
    CHECK(alice.display_name == "Alice Archer (Finance)");
    CHECK(alice.groups == Groups{"finance", "staff"});

    DirectoryUser carol = login(*directory, "carol", "carol-pw");
    CHECK(carol.display_name == "Carol Admin"); // no displayName: the cn
    CHECK(carol.groups == Groups{"heirloom-admins", "staff"});

    // Automatic membership is the union of memberOf, member and memberUid.
    CHECK(groups_of(*directory, "bob", "bob-pw") == Groups{"contractors", "legacy-posix", "staff"});

    // The name is the directory's spelling, not what was typed (uid ignores case).
    CHECK(login(*directory, "ALICE", "alice-pw").name == "alice");

    DirectoryUser zoe = login(*directory, "zoë", "zoe-pw");
    CHECK(zoe.name == "zoë");
    CHECK(zoe.display_name == "Zoë Zelda");
    CHECK(zoe.groups.empty());
}

TEST_CASE("directory: each membership mode finds its own groups", "[directory][slapd]") {
    Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    DirectoryConfig config = slapd.config();

    SECTION("member_of: the user's memberOf values (memberof overlay)") {
        config.membership = GroupMembership::member_of;
        auto directory = open_or_fail(config);
        CHECK(groups_of(*directory, "alice", "alice-pw") == Groups{"finance", "staff"});
        CHECK(groups_of(*directory, "bob", "bob-pw") == Groups{"contractors", "staff"});
    }
    SECTION("group_member: groupOfNames whose member is the user's DN") {
        config.membership = GroupMembership::group_member;
        auto directory = open_or_fail(config);
        CHECK(groups_of(*directory, "alice", "alice-pw") == Groups{"finance", "staff"});
        CHECK(groups_of(*directory, "bob", "bob-pw") == Groups{"contractors", "staff"});
        CHECK(groups_of(*directory, mallory, "mallory-pw") == Groups{"contractors"});
    }
    SECTION("posix: posixGroup whose memberUid is the user's name") {
        config.membership = GroupMembership::posix;
        auto directory = open_or_fail(config);
        CHECK(groups_of(*directory, "alice", "alice-pw").empty());
        CHECK(groups_of(*directory, "bob", "bob-pw") == Groups{"legacy-posix"});
    }
    SECTION("automatic: the union") {
        auto directory = open_or_fail(config);
        CHECK(groups_of(*directory, "bob", "bob-pw") ==
              Groups{"contractors", "legacy-posix", "staff"});
    }
    SECTION("memberOf outside group_base is ignored") {
        config.membership = GroupMembership::member_of;
        config.group_base = "ou=policies,dc=heirloom,dc=test";
        auto directory = open_or_fail(config);
        CHECK(groups_of(*directory, "alice", "alice-pw").empty());
    }
}

TEST_CASE("directory: wrong password, unknown user and locked user get one answer",
          "[directory][slapd]") {
    Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    auto directory = open_or_fail(slapd.config());

    const Error wrong_password = error_of(directory->authenticate("alice", "bob-pw"));
    const Error unknown_user = error_of(directory->authenticate("nobody", "alice-pw"));
    const Error locked_user = error_of(directory->authenticate("dave", "dave-pw"));
    for (const Error& error : {wrong_password, unknown_user, locked_user}) {
        CHECK(error.code == Errc::crypto);
        CHECK(error.message == "wrong user name or password");
    }
    // Not the service account's password either.
    CHECK(error_of(directory->authenticate("heirloom-server", "service-secret")).code ==
          Errc::crypto);
    // lookup does not check passwords: the locked user is still there.
    auto dave = directory->lookup("dave");
    REQUIRE(dave.has_value());
    CHECK(dave->groups == Groups{"staff"});
}

TEST_CASE("directory: user names made of filter syntax match nothing extra", "[directory][slapd]") {
    Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    auto directory = open_or_fail(slapd.config());

    const std::vector<std::string> attempts = {
        "*",      "*)(uid=*",  "alice)(|(uid=*",          "\\2a",
        "alice*", "a*",        "*)(|(objectClass=*",      "alice)(userPassword=*",
        "m*",     "m*a(l)lo*", "m\\2aa\\28l\\29lo\\5cry", "*lo\\ry"};
    for (const auto& name : attempts) {
        INFO(name);
        for (const char* password : {"alice-pw", "mallory-pw", "service-secret"}) {
            const Error error = error_of(directory->authenticate(name, password));
            CHECK(error.code == Errc::crypto);
            CHECK(error.message == "wrong user name or password");
        }
        CHECK(error_of(directory->lookup(name)).code == Errc::not_found);
    }
    // The metacharacter user with someone else's password.
    CHECK(error_of(directory->authenticate(mallory, "alice-pw")).code == Errc::crypto);
}

TEST_CASE("directory: the user named with filter metacharacters logs in as themselves",
          "[directory][slapd]") {
    Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    auto directory = open_or_fail(slapd.config());

    DirectoryUser user = login(*directory, mallory, "mallory-pw");
    CHECK(user.name == mallory);
    CHECK(user.display_name == "Mallory Meta");
    CHECK(user.groups == Groups{"contractors"});

    auto found = directory->lookup(mallory);
    REQUIRE(found.has_value());
    CHECK(found->groups == Groups{"contractors"});
}

TEST_CASE("directory: lookup uses the service account", "[directory][slapd]") {
    Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    auto directory = open_or_fail(slapd.config());

    auto bob = directory->lookup("bob");
    REQUIRE(bob.has_value());
    CHECK(bob->name == "bob");
    CHECK(bob->dn == "uid=bob," + people);
    CHECK(bob->display_name == "Bob Builder");
    CHECK(bob->groups == Groups{"contractors", "legacy-posix", "staff"});

    const Error unknown = error_of(directory->lookup("nobody"));
    CHECK(unknown.code == Errc::not_found);
    CHECK_THAT(unknown.message, Catch::Contains("nobody"));
}

TEST_CASE("directory: search_users and search_groups treat filter metacharacters as text",
          "[directory][slapd]") {
    Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    auto directory = open_or_fail(slapd.config());

    CHECK(names(directory->search_users("", 100)) ==
          Groups{"alice", "bob", "carol", "dave", mallory, "zoë"});
    CHECK(names(directory->search_users("ali", 100)) == Groups{"alice"});
    CHECK(names(directory->search_users("archer", 100)) == Groups{"alice"});   // the cn
    CHECK(names(directory->search_users("Finance)", 100)) == Groups{"alice"}); // displayName
    CHECK(names(directory->search_users("ë", 100)) == Groups{"zoë"});
    CHECK(names(directory->search_users("*", 100)) == Groups{mallory});
    CHECK(names(directory->search_users("(l)", 100)) == Groups{mallory});
    CHECK(names(directory->search_users("\\", 100)) == Groups{mallory});
    CHECK(names(directory->search_users(")(uid=*", 100)).empty());
    CHECK(names(directory->search_users("\\2a", 100)).empty());
    CHECK(names(directory->search_users("", 2)).size() == 2);

    auto alice = directory->search_users("alice", 10);
    REQUIRE(alice.has_value());
    REQUIRE(alice->size() == 1);
    CHECK(alice->front().dn == "uid=alice," + people);
    CHECK(alice->front().display_name == "Alice Archer (Finance)");

    CHECK(names(directory->search_groups("", 100)) ==
          Groups{"contractors", "finance", "heirloom-admins", "legacy-posix", "staff"});
    CHECK(names(directory->search_groups("staff", 100)) == Groups{"staff"});
    CHECK(names(directory->search_groups("POSIX", 100)) == Groups{"legacy-posix"});
    CHECK(names(directory->search_groups("*", 100)).empty());
    CHECK(names(directory->search_groups("*)(cn=*", 100)).empty());
    CHECK(names(directory->search_groups("", 1)).size() == 1);
}

TEST_CASE("directory: searches come in pages, past the directory's per-search size limit",
          "[directory][slapd]") {
    Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    // The demo directory answers at most 500 entries to a search, but any number in pages.
    std::string ldif;
    for (int i = 0; i < 600; ++i) {
        const std::string uid = "many" + std::to_string(1000 + i);
        ldif += ldif_entry({"dn: uid=" + uid + "," + people, "objectClass: inetOrgPerson",
                            "uid: " + uid, "cn: " + uid, "sn: many"});
    }
    REQUIRE(slapd.modify(ldif).empty());
    auto directory = open_or_fail(slapd.config());
    auto many = names(directory->search_users("many", 5000));
    CHECK(many.size() == 600);
    CHECK(many.front() == "many1000");
    CHECK(many.back() == "many1599");
    CHECK(names(directory->search_users("many", 550)).size() == 550);
    CHECK(names(directory->search_users("", 5000)).size() == 606);
    // Logins and groups are as before.
    CHECK(groups_of(*directory, "alice", "alice-pw") == Groups{"finance", "staff"});
}

TEST_CASE("directory: odd directory contents are skipped or refused, never trusted",
          "[directory][slapd]") {
    Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    const std::string alice_dn = "uid=alice," + people;
    const std::string problem = slapd.modify(
        // Two entries with one login name.
        ldif_entry({"dn: uid=twin1," + people, "objectClass: inetOrgPerson", "uid: twin",
                    "cn: Twin One", "sn: One", "userPassword: twin-pw"}) +
        ldif_entry({"dn: uid=twin2," + people, "objectClass: inetOrgPerson", "uid: twin",
                    "cn: Twin Two", "sn: Two", "userPassword: twin-pw"}) +
        // One entry with two login names.
        ldif_entry({"dn: uid=multi," + people, "objectClass: inetOrgPerson", "uid: multi",
                    "uid: multi-alias", "cn: Multi", "sn: Alias", "userPassword: multi-pw"}) +
        // A login name too long to use (and no other).
        ldif_entry({"dn: cn=long-user," + people, "objectClass: inetOrgPerson",
                    "uid: " + std::string(300, 'x'), "cn: long-user", "sn: Long"}) +
        // Groups of alice's: one named too long, one with a control character in its name,
        // and one whose DN does not carry its name (so memberOf has to read it).
        ldif_entry({"dn: ou=long-group," + groups, "objectClass: groupOfNames", "ou: long-group",
                    "cn: " + std::string(300, 'g'), "member: " + alice_dn}) +
        ldif_entry(
            {"dn:: Y249Y3RsAW5hbWUsb3U9Z3JvdXBzLGRjPWhlaXJsb29tLGRjPXRlc3Q=", // cn=ctl\x01name
             "objectClass: groupOfNames", "cn:: Y3RsAW5hbWU=", "member: " + alice_dn}) +
        ldif_entry({"dn: ou=weird-group," + groups, "objectClass: groupOfNames", "ou: weird-group",
                    "cn: weird", "member: " + alice_dn}));
    INFO(problem);
    REQUIRE(problem.empty());
    DirectoryConfig config = slapd.config();

    SECTION("a login name shared by two entries") {
        auto directory = open_or_fail(config);
        CHECK(error_of(directory->authenticate("twin", "twin-pw")).code == Errc::corrupt);
        CHECK(error_of(directory->lookup("twin")).code == Errc::corrupt);
    }
    SECTION("an entry with two login names answers to each") {
        auto directory = open_or_fail(config);
        CHECK(login(*directory, "multi-alias", "multi-pw").name == "multi-alias");
        CHECK(login(*directory, "MULTI", "multi-pw").name == "multi");
    }
    SECTION("names that break the rules are left out") {
        auto directory = open_or_fail(config);
        CHECK(groups_of(*directory, "alice", "alice-pw") == Groups{"finance", "staff", "weird"});
        CHECK(names(directory->search_users("xxxx", 10)).empty());
        CHECK(names(directory->search_groups("", 100)) == Groups{"contractors", "finance",
                                                                 "heirloom-admins", "legacy-posix",
                                                                 "staff", "weird"});
    }
    SECTION("memberOf values whose DN does not name the group are read") {
        config.membership = GroupMembership::member_of;
        auto directory = open_or_fail(config);
        CHECK(groups_of(*directory, "alice", "alice-pw") == Groups{"finance", "staff", "weird"});
    }
}

TEST_CASE("directory: StartTLS, ldaps and plain all work, and a wrong CA fails with Errc::network",
          "[directory][slapd]") {
    Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    DirectoryConfig config = slapd.config();

    SECTION("StartTLS") {
        CHECK(groups_of(*open_or_fail(config), "alice", "alice-pw") == Groups{"finance", "staff"});
    }
    SECTION("ldaps") {
        config.uri = slapd.ldaps_uri();
        config.tls = DirectoryTls::ldaps;
        CHECK(groups_of(*open_or_fail(config), "alice", "alice-pw") == Groups{"finance", "staff"});
    }
    SECTION("plain") {
        config.tls = DirectoryTls::plain;
        CHECK(groups_of(*open_or_fail(config), "alice", "alice-pw") == Groups{"finance", "staff"});
    }
    SECTION("a CA that did not sign the directory's certificate") {
        test::TempDir other;
        test::TlsFiles other_ca;
        std::string problem;
        REQUIRE(test::make_test_certificate(other.path(), other_ca, problem));
        config.ca_file = other_ca.certificate.string();
        for (DirectoryTls tls : {DirectoryTls::start_tls, DirectoryTls::ldaps}) {
            if (tls == DirectoryTls::ldaps)
                config.uri = slapd.ldaps_uri();
            config.tls = tls;
            auto directory = open_or_fail(config);
            const Error error = error_of(directory->authenticate("alice", "alice-pw"));
            CHECK(error.code == Errc::network);
            CHECK_THAT(error.message, Catch::Contains("TLS"));
            CHECK_THAT(error.message, !Catch::Contains("alice-pw"));
            CHECK(error_of(directory->lookup("alice")).code == Errc::network);
        }
    }
}

TEST_CASE("directory: a wrong service password or base is the server's problem, not the user's",
          "[directory][slapd]") {
    Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    DirectoryConfig config = slapd.config();

    SECTION("wrong service password") {
        config.bind_password = "not-the-service-secret";
        const Error error = error_of(open_or_fail(config)->authenticate("alice", "alice-pw"));
        CHECK(error.code == Errc::network);
        CHECK_THAT(error.message, Catch::Contains("service account"));
        CHECK_THAT(error.message, !Catch::Contains("not-the-service-secret"));
        CHECK_THAT(error.message, !Catch::Contains("alice-pw"));
    }
    SECTION("a user base that does not exist") {
        config.user_base = "ou=nobody,dc=heirloom,dc=test";
        const Error error = error_of(open_or_fail(config)->lookup("alice"));
        CHECK(error.code == Errc::network);
        CHECK_THAT(error.message, Catch::Contains("user_base"));
    }
    SECTION("anonymous searches, which the demo directory does not allow") {
        config.bind_dn.clear();
        config.bind_password.clear();
        const Error error = error_of(open_or_fail(config)->lookup("alice"));
        CHECK(error.code == Errc::network);
        CHECK_THAT(error.message, Catch::Contains("anonymous searches may see"));
    }
}

TEST_CASE("directory: a paused directory gives Errc::network within the timeout",
          "[directory][slapd]") {
    Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    DirectoryConfig config = slapd.config();
    config.timeout_seconds = 2;
    SECTION("StartTLS") {}
    SECTION("ldaps") {
        config.uri = slapd.ldaps_uri();
        config.tls = DirectoryTls::ldaps;
    }
    SECTION("plain") {
        config.tls = DirectoryTls::plain;
    }
    auto directory = open_or_fail(config);
    REQUIRE(directory->lookup("alice").has_value());
    {
        Paused paused(slapd);
        auto start = std::chrono::steady_clock::now();
        const Error auth = error_of(directory->authenticate("alice", "alice-pw"));
        double took = seconds_since(start);
        CHECK(auth.code == Errc::network);
        CHECK_THAT(auth.message, Catch::Contains("did not answer within 2 s"));
        CHECK(took < config.timeout_seconds + 2);

        start = std::chrono::steady_clock::now();
        CHECK(error_of(directory->lookup("alice")).code == Errc::network);
        took = seconds_since(start);
        CHECK(took < config.timeout_seconds + 2);

        start = std::chrono::steady_clock::now();
        CHECK(error_of(directory->search_groups("", 10)).code == Errc::network);
        CHECK(seconds_since(start) < config.timeout_seconds + 2);
    }
    // Running again, it answers again.
    CHECK(groups_of(*directory, "alice", "alice-pw") == Groups{"finance", "staff"});
}

TEST_CASE("directory: a stopped directory gives Errc::network", "[directory][slapd]") {
    Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    auto directory = open_or_fail(slapd.config());
    REQUIRE(directory->lookup("alice").has_value());
    slapd.stop();

    const auto start = std::chrono::steady_clock::now();
    const Error auth = error_of(directory->authenticate("alice", "alice-pw"));
    CHECK(auth.code == Errc::network);
    CHECK_THAT(auth.message, Catch::Contains(slapd.uri()));
    CHECK_THAT(auth.message, Catch::Contains("is it running"));
    CHECK(error_of(directory->lookup("alice")).code == Errc::network);
    CHECK(error_of(directory->search_users("", 10)).code == Errc::network);
    CHECK(seconds_since(start) < 2.0);
}

TEST_CASE("directory: calls from many threads each use their own connection",
          "[directory][slapd]") {
    Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    auto directory = open_or_fail(slapd.config());

    constexpr int threads = 4;
    constexpr int rounds = 10;
    std::vector<int> successes(threads, 0);
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t)
        workers.emplace_back([&, t] {
            for (int i = 0; i < rounds; ++i) {
                auto user = directory->authenticate(t % 2 == 0 ? "alice" : "bob",
                                                    t % 2 == 0 ? "alice-pw" : "bob-pw");
                auto wrong = directory->authenticate("carol", "alice-pw");
                if (user && !wrong && wrong.error().code == Errc::crypto)
                    ++successes[static_cast<std::size_t>(t)];
            }
        });
    for (auto& worker : workers)
        worker.join();
    for (int t = 0; t < threads; ++t)
        CHECK(successes[static_cast<std::size_t>(t)] == rounds);
}
