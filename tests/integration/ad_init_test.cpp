// heirloom-server init and check-directory against a real Active Directory domain controller
// (Samba, tests/support/samba_ad.hpp): the active-directory type's defaults find the users, the
// admin group and a user's nested groups; init --force keeps what it is not told to change.

#include "heirloom/server/config.hpp"
#include "support/samba_ad.hpp"
#include "support/support.hpp"

#include <catch2/catch.hpp>
#include <cstdlib>

using namespace heirloom;

namespace {

test::RunResult run_init(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/env", "HEIRLOOM_PASSWORD=Service-Secret1",
                                     (test::bin_dir() / "heirloom-server").string(), "init",
                                     "--no-ask"};
    argv.insert(argv.end(), args.begin(), args.end());
    return test::run(argv);
}

} // namespace

TEST_CASE("heirloom-server init on active directory: users, admin group, nested groups",
          "[server][init][integration][ad]") {
    test::SambaAd ad;
    HL_SKIP_UNLESS_RUNNING(ad);
    test::TempDir dir;
    const fs::path config = dir / "server.json";
    std::vector<std::string> flags = {
        "--config",         config.string(),
        "--data-dir",       (dir / "data").string(),
        "--self-signed",    "127.0.0.1",
        "--directory-type", "active-directory",
        "--ldap-uri",       ad.uri(),
        "--ldap-ca-file",   ad.ca_file().string(),
        "--ldap-base-dn",   ad.base_dn(),
        "--ldap-bind-dn",   "CN=heirloom-svc,CN=Users," + ad.base_dn(),
        "--check-user",     "bob@heirloom.test"};
    auto r = run_init(flags);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("(active-directory)") != std::string::npos);
    CHECK(r.out.find("admin group heirloom-admins: found") != std::string::npos);
    CHECK(r.out.find("bob (CN=bob,CN=Users,DC=heirloom,DC=test): groups Domain Users, Finance, "
                     "Payroll, Users") != std::string::npos);
    CHECK(r.out.find("users       1") != std::string::npos); // 1,1xx people
    CHECK(r.out.find("Service-Secret1") == std::string::npos);
    auto written = server::load_config(config);
    REQUIRE(written);
    CHECK(written->directory.type == server::DirectoryType::active_directory);
    CHECK(written->directory.user_attribute == "sAMAccountName");
    CHECK(written->directory.membership == server::GroupMembership::in_chain);

    SECTION("init --force keeps hand edits and changes only what flags say") {
        auto text = read_text_file(config);
        REQUIRE(text);
        auto doc = parse_json(*text);
        REQUIRE(doc);
        (*doc)["directory"]["netbios_domain"] = "HEIRLOOM";
        (*doc)["directory"]["user_filter"] =
            "(&(objectCategory=person)(objectClass=user)(!(sAMAccountName=bulk*)))";
        test::write_file(config, as_bytes(doc->dump(2)));
        auto again =
            run_init({"--config", config.string(), "--force", "--admin-group", "Heirloom-Admins",
                      "--directory-type", "active-directory", "--check-user", "HEIRLOOM\\alice"});
        INFO(again.out << again.err);
        REQUIRE(again.exit_code == 0);
        CHECK(again.out.find("groups Domain Users, Heirloom-Admins, Users") != std::string::npos);
        CHECK(again.out.find("users       1") == std::string::npos); // the bulk users are gone
        auto kept = server::load_config(config);
        REQUIRE(kept);
        CHECK(kept->admin_group == "Heirloom-Admins");
        CHECK(kept->directory.netbios_domain == "HEIRLOOM");
        CHECK(kept->directory.user_filter.find("bulk") != std::string::npos);
        CHECK(kept->directory.uri == ad.uri());
        CHECK(kept->directory_password_file == written->directory_password_file);
    }

    SECTION("the openldap defaults find nothing on AD, and say so") {
        auto wrong =
            run_init({"--config", (dir / "other.json").string(), "--data-dir",
                      (dir / "data").string(), "--self-signed", "127.0.0.1", "--ldap-uri", ad.uri(),
                      "--ldap-ca-file", ad.ca_file().string(), "--ldap-base-dn", ad.base_dn(),
                      "--ldap-bind-dn", "CN=heirloom-svc,CN=Users," + ad.base_dn()});
        INFO(wrong.out << wrong.err);
        CHECK(wrong.exit_code == 1);
        CHECK(wrong.out.find("0 found (check user_base") != std::string::npos);
        CHECK(wrong.out.find("NOT FOUND") != std::string::npos);
    }
}
