// What is particular to Active Directory, without a directory: the forms of a login name, the
// reason inside a refused bind, account states, primary-group SIDs, the directory types'
// defaults and their configuration keys. Malformed and hostile input included.

#include "../../image-server/src/directory/ldap/active_directory.hpp"
#include "../../image-server/src/directory/ldap/ldap_session.hpp"
#include "heirloom/server/config.hpp"
#include "heirloom/server/directory.hpp"

#include <catch2/catch.hpp>

using namespace heirloom;
using namespace heirloom::server;
using namespace heirloom::server::ldap_backend;

TEST_CASE("active directory: the three forms of a login name", "[directory][active-directory]") {
    auto plain = parse_ad_login_name("alice");
    REQUIRE(plain);
    CHECK(plain->form == AdLoginName::Form::account);
    CHECK(plain->name == "alice");

    auto upn = parse_ad_login_name("alice@heirloom.test");
    REQUIRE(upn);
    CHECK(upn->form == AdLoginName::Form::principal);
    CHECK(upn->name == "alice@heirloom.test");

    auto down = parse_ad_login_name("HEIRLOOM\\alice");
    REQUIRE(down);
    CHECK(down->form == AdLoginName::Form::down_level);
    CHECK(down->domain == "HEIRLOOM");
    CHECK(down->name == "alice");

    for (const char* bad : {"\\alice", "HEIRLOOM\\", "a\\b\\c", "@heirloom.test", "alice@",
                            "HEIRLOOM\\alice@heirloom.test", "\\"})
        CHECK_FALSE(parse_ad_login_name(bad));
}

TEST_CASE("active directory: the NetBIOS domain", "[directory][active-directory]") {
    DirectoryConfig config;
    config.base_dn = "DC=heirloom,DC=test";
    CHECK(is_own_domain(config, "HEIRLOOM"));
    CHECK(is_own_domain(config, "heirloom"));
    CHECK_FALSE(is_own_domain(config, "OTHER"));
    CHECK_FALSE(is_own_domain(config, "HEIRLOOM.TEST"));
    config.netbios_domain = "CORP";
    CHECK(is_own_domain(config, "corp"));
    CHECK_FALSE(is_own_domain(config, "HEIRLOOM"));
    config.netbios_domain.clear();
    config.base_dn = "OU=x,O=nodc";
    CHECK_FALSE(is_own_domain(config, "nodc"));
    CHECK_FALSE(is_own_domain(config, ""));
}

TEST_CASE("active directory: why a bind was refused", "[directory][active-directory]") {
    const std::string prefix = "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext "
                               "error, data ";
    CHECK(ad_bind_refusal(prefix + "533, v1db1") == "account disabled (AD 533)");
    CHECK(ad_bind_refusal(prefix + "52e, v1db1") == "wrong password (AD 52e)");
    CHECK(ad_bind_refusal(prefix + "52E, v893") == "wrong password (AD 52e)");
    CHECK(ad_bind_refusal(prefix + "701, v1db1") == "account expired (AD 701)");
    CHECK(ad_bind_refusal(prefix + "773, v1db1") == "must change password (AD 773)");
    CHECK(ad_bind_refusal(prefix + "775, v1db1") == "account locked (AD 775)");
    CHECK(ad_bind_refusal(prefix + "530") == "not permitted to log on at this time (AD 530)");
    CHECK(ad_bind_refusal(prefix + "531,") ==
          "not permitted to log on at this workstation (AD 531)");
    CHECK(ad_bind_refusal(prefix + "532 ") == "password expired (AD 532)");
    // Nothing known: OpenLDAP's messages, truncated or hostile text, unknown codes.
    for (const std::string& text :
         {std::string(), std::string("invalid credentials"), prefix, prefix + "zz9, v1",
          prefix + "999, v1", prefix + "-533", prefix + "533533533533, v1", std::string("data "),
          std::string("data \x01\x02"), prefix + "0x533"})
        CHECK(ad_bind_refusal(text).empty());
}

TEST_CASE("active directory: disabled and expired accounts", "[directory][active-directory]") {
    const auto entry = [](std::string control, std::string expires) {
        LdapEntry e;
        e.dn = "CN=x,DC=heirloom,DC=test";
        if (!control.empty())
            e.attributes.push_back({"useraccountcontrol", {control}});
        if (!expires.empty())
            e.attributes.push_back({"accountexpires", {expires}});
        return e;
    };
    const std::int64_t now = 1'800'000'000; // 2027
    CHECK(ad_account_problem(entry("512", "0"), now).empty());
    CHECK(ad_account_problem(entry("512", "9223372036854775807"), now).empty());
    CHECK(ad_account_problem(entry("514", "0"), now) == "disabled");
    CHECK(ad_account_problem(entry("66050", ""), now) == "disabled");
    CHECK(ad_account_problem(entry("512", "128900000000000000"), now) == "expired"); // 2009
    CHECK(ad_account_problem(entry("512", "10"), now) == "expired");
    // 2040 is still to come.
    CHECK(ad_account_problem(entry("512", "139000000000000000"), now).empty());
    // Unparsable values decide nothing here (the bind decides at login).
    CHECK(ad_account_problem(entry("x", "y"), now).empty());
    CHECK(ad_account_problem(entry("", ""), now).empty());
    CHECK(ad_account_problem(entry("512 ", "99999999999999999999999"), now).empty());
}

TEST_CASE("active directory: the primary group's SID", "[directory][active-directory]") {
    // S-1-5-21-1-2-3-1105
    std::string sid = {1, 5, 0, 0, 0, 0, 0, 5};
    for (std::uint32_t part : {21u, 1u, 2u, 3u, 1105u})
        for (int i = 0; i < 4; ++i)
            sid += static_cast<char>((part >> (8 * i)) & 0xff);
    auto group = primary_group_sid(sid, "513");
    REQUIRE(group);
    CHECK(group->size() == sid.size());
    CHECK(group->substr(0, sid.size() - 4) == sid.substr(0, sid.size() - 4));
    CHECK(group->substr(sid.size() - 4) == std::string("\x01\x02\x00\x00", 4));
    CHECK(binary_filter_value(std::string("\x01\x05\x00\xff*()\\", 8)) ==
          "\\01\\05\\00\\ff\\2a\\28\\29\\5c");
    CHECK_FALSE(primary_group_sid(sid, ""));
    CHECK_FALSE(primary_group_sid(sid, "-1"));
    CHECK_FALSE(primary_group_sid(sid, "4294967296"));
    CHECK_FALSE(primary_group_sid(sid, "513x"));
    CHECK_FALSE(primary_group_sid(sid.substr(0, sid.size() - 1), "513")); // truncated
    CHECK_FALSE(primary_group_sid(sid + "x", "513"));
    CHECK_FALSE(primary_group_sid("", "513"));
    std::string bad_revision = sid;
    bad_revision[0] = 2;
    CHECK_FALSE(primary_group_sid(bad_revision, "513"));
    std::string zero_parts = sid;
    zero_parts[1] = 0;
    CHECK_FALSE(primary_group_sid(zero_parts, "513"));
}

TEST_CASE("directory types: defaults, and keys that override them in any order",
          "[directory][active-directory][config]") {
    DirectoryConfig ad;
    apply_directory_profile(ad, DirectoryType::active_directory);
    CHECK(ad.user_attribute == "sAMAccountName");
    CHECK(ad.user_filter == "(&(objectCategory=person)(objectClass=user))");
    CHECK(ad.group_object_class == "group");
    CHECK(ad.membership == GroupMembership::in_chain);
    DirectoryConfig posix;
    apply_directory_profile(posix, DirectoryType::posix);
    CHECK(posix.user_object_class == "posixAccount");
    CHECK(posix.membership == GroupMembership::posix);
    DirectoryConfig back = ad;
    apply_directory_profile(back, DirectoryType::openldap);
    DirectoryConfig fresh;
    CHECK(back.user_attribute == fresh.user_attribute);
    CHECK(back.user_object_class == fresh.user_object_class);
    CHECK(back.user_filter == fresh.user_filter);
    CHECK(back.group_object_class == fresh.group_object_class);
    CHECK(back.membership == fresh.membership);

    CHECK(same_group_name(ad, "Heirloom-Admins", "heirloom-admins"));
    CHECK_FALSE(same_group_name(ad, "Heirloom-Admins", "heirloom-admin"));
    CHECK_FALSE(same_group_name(fresh, "Heirloom-Admins", "heirloom-admins"));
    CHECK(same_group_name(fresh, "staff", "staff"));

    // "user_attribute" sorts before "type": the type's defaults must not undo it.
    auto parsed = parse_config(R"({"directory": {"user_attribute": "userPrincipalName",
        "type": "active-directory", "uri": "ldap://dc", "base_dn": "DC=x"}})");
    REQUIRE(parsed);
    CHECK(parsed->directory.type == DirectoryType::active_directory);
    CHECK(parsed->directory.user_attribute == "userPrincipalName");
    CHECK(parsed->directory.group_object_class == "group");
    auto again = parse_config(config_to_json(*parsed).dump());
    REQUIRE(again);
    CHECK(again->directory.user_attribute == "userPrincipalName");
    CHECK(again->directory.user_filter == parsed->directory.user_filter);
    CHECK(again->directory.membership == GroupMembership::in_chain);
    // Existing configurations without a type stay OpenLDAP, exactly as before.
    auto old = parse_config(R"({"directory": {"uri": "ldap://x", "base_dn": "dc=x"}})");
    REQUIRE(old);
    CHECK(old->directory.type == DirectoryType::openldap);
    CHECK(old->directory.user_attribute == "uid");
    CHECK(old->directory.membership == GroupMembership::automatic);
    CHECK_FALSE(parse_config(R"({"directory": {"type": "novell"}})"));
    CHECK_FALSE(parse_config(R"({"directory": {"type": 3}})"));
    CHECK_FALSE(parse_config(R"({"directory": {"membership": "in_chain"}})"));
}

TEST_CASE("directory types: a configured user filter is checked",
          "[directory][active-directory][config]") {
    DirectoryConfig config;
    config.uri = "ldap://dc.example.org";
    config.base_dn = "DC=example,DC=org";
    apply_directory_profile(config, DirectoryType::active_directory);
    CHECK(open_ldap_directory(config));
    for (const char* bad :
         {"objectClass=user", "(objectClass=user", "(a=b))(", "(a=b)(c=d", "(a=\x01)", ")("}) {
        config.user_filter = bad;
        auto opened = open_ldap_directory(config);
        REQUIRE_FALSE(opened);
        CHECK(opened.error().message.find("user_filter") != std::string::npos);
    }
    config.user_filter = "(&(objectClass=user)(department=IT))";
    CHECK(open_ldap_directory(config));
    config.group_object_class = "group)(x=y";
    CHECK_FALSE(open_ldap_directory(config));
}
