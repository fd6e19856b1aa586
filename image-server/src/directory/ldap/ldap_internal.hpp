#pragma once

// What the session's files (ldap_session.cpp, ldap_search.cpp) share: the caps on what a
// directory may hand back, and small helpers over libldap's types.

#include <cstddef>
#include <ldap.h>
#include <memory>
#include <string>
#include <string_view>

namespace heirloom::server::ldap_backend {

// Caps on what a directory may hand back, so a hostile or broken one cannot exhaust memory
// through us: longer values are dropped, and extra values and entries are ignored.
inline constexpr std::size_t max_value_bytes = 8192;
inline constexpr std::size_t max_values_per_attribute = 10000;
inline constexpr std::size_t max_entries = 10000;

struct MessageFree {
    void operator()(LDAPMessage* message) const { ldap_msgfree(message); }
};
using MessagePtr = std::unique_ptr<LDAPMessage, MessageFree>;

std::string lower_ascii(std::string_view text);

// A string libldap allocated, made printable and freed; empty for none.
std::string take_ldap_string(char* text);

} // namespace heirloom::server::ldap_backend
