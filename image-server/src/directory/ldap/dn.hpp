#pragma once

// Distinguished names (RFC 4514) read with libldap's parser: checking configured DNs, taking a
// group's name from its DN, and telling whether an entry lies under a search base.

#include <optional>
#include <string>
#include <string_view>

namespace heirloom::server::ldap_backend {

// True when text parses as an LDAPv3 DN (the empty DN included).
bool is_valid_dn(std::string_view text);

// The value of the first RDN when it is a single attribute=value of the given attribute type
// ("cn=finance,ou=groups,..." and "cn" give "finance"), unescaped; nothing otherwise.
std::optional<std::string> first_rdn_value(std::string_view dn, std::string_view attribute);

// True when dn is base or lies below it. Attribute types and ASCII letters in values compare
// without regard to case, as the usual matching rules for names do.
bool is_within(std::string_view dn, std::string_view base);

} // namespace heirloom::server::ldap_backend
