#pragma once

// What is particular to Active Directory, as plain functions over text (unit-tested without a
// directory): the three forms of a login name, the reason inside a refused bind, an account's
// state, and the binary SIDs that name a user's primary group.

#include "heirloom/server/directory.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace heirloom::server::ldap_backend {

struct LdapEntry;

// A login name as typed: "alice", "alice@heirloom.test" (a user principal name) or
// "HEIRLOOM\alice" (down-level: the NetBIOS domain, then the account name).
struct AdLoginName {
    enum class Form { account, principal, down_level };
    Form form = Form::account;
    std::string name;   // the account name, or the whole principal name
    std::string domain; // down_level only
};

// Splits a typed name; nullopt for a malformed one ("\alice", "HEIRLOOM\", "a\b\c", "@x").
std::optional<AdLoginName> parse_ad_login_name(std::string_view typed);

// True when domain names this directory's NetBIOS domain: config.netbios_domain, or when that is
// empty the first dc= value of base_dn ("heirloom" for DC=heirloom,DC=test); any case.
bool is_own_domain(const DirectoryConfig& config, std::string_view domain);

// Why Active Directory refused a bind, from the "data 533" in its diagnostic message
// ("80090308: LdapErr: DSID-0C09030B, comment: AcceptSecurityContext error, data 533, v893"):
// "account disabled (AD 533)". Empty when the message holds no known code.
std::string ad_bind_refusal(std::string_view diagnostic);

// Why the account of a user entry (with userAccountControl and accountExpires) may not be used
// at unix time now: "disabled" or "expired"; empty when it may. Unparsable values count as
// neither (the bind decides those at login).
std::string ad_account_problem(const LdapEntry& user, std::int64_t now);

// The SID of a user's primary group: the user's objectSid (binary) with its last sub-authority
// replaced by primaryGroupID (decimal). Nullopt for a malformed SID or ID.
std::optional<std::string> primary_group_sid(std::string_view user_sid,
                                             std::string_view primary_group_id);

// Bytes as an LDAP filter value, every byte escaped (\01\05...): for binary values like SIDs.
std::string binary_filter_value(std::string_view bytes);

} // namespace heirloom::server::ldap_backend
