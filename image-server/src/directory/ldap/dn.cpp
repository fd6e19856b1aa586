#include "dn.hpp"

#include <ldap.h>
#include <memory>
#include <vector>

namespace heirloom::server::ldap_backend {

namespace {

struct DnFree {
    void operator()(LDAPRDN* dn) const { ldap_dnfree(dn); }
};
using DnPtr = std::unique_ptr<LDAPRDN, DnFree>;

// Parses a non-empty DN; null when it is not one. The text is copied, since libldap wants a C
// string, and a DN containing NUL is not a DN.
DnPtr parse(std::string_view text) {
    if (text.find('\0') != std::string_view::npos)
        return nullptr;
    const std::string copy(text);
    LDAPDN dn = nullptr;
    if (ldap_str2dn(copy.c_str(), &dn, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS)
        return nullptr;
    return DnPtr(dn);
}

std::string_view view(const berval& value) {
    return value.bv_val == nullptr ? std::string_view()
                                   : std::string_view(value.bv_val, value.bv_len);
}

bool equal_ignoring_ascii_case(std::string_view a, std::string_view b) {
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i];
        char y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = static_cast<char>(y - 'A' + 'a');
        if (x != y)
            return false;
    }
    return true;
}

std::vector<LDAPRDN> rdns(LDAPDN dn) {
    std::vector<LDAPRDN> out;
    for (std::size_t i = 0; dn != nullptr && dn[i] != nullptr; ++i)
        out.push_back(dn[i]);
    return out;
}

std::size_t ava_count(LDAPRDN rdn) {
    std::size_t n = 0;
    while (rdn[n] != nullptr)
        ++n;
    return n;
}

// Two RDNs match when they hold the same attribute=value pairs in the same order (multi-valued
// RDNs are rare enough in bases that their order need not be normalised).
bool same_rdn(LDAPRDN a, LDAPRDN b) {
    const std::size_t n = ava_count(a);
    if (n != ava_count(b))
        return false;
    for (std::size_t i = 0; i < n; ++i) {
        if (!equal_ignoring_ascii_case(view(a[i]->la_attr), view(b[i]->la_attr)) ||
            !equal_ignoring_ascii_case(view(a[i]->la_value), view(b[i]->la_value)))
            return false;
    }
    return true;
}

} // namespace

bool is_valid_dn(std::string_view text) {
    if (text.empty())
        return true;
    return parse(text) != nullptr;
}

std::optional<std::string> first_rdn_value(std::string_view dn, std::string_view attribute) {
    DnPtr parsed = parse(dn);
    if (parsed == nullptr)
        return std::nullopt;
    LDAPRDN first = parsed.get()[0];
    if (first == nullptr || ava_count(first) != 1)
        return std::nullopt;
    const LDAPAVA* ava = first[0];
    if ((ava->la_flags & LDAP_AVA_BINARY) != 0 ||
        !equal_ignoring_ascii_case(view(ava->la_attr), attribute))
        return std::nullopt;
    return std::string(view(ava->la_value));
}

bool is_within(std::string_view dn, std::string_view base) {
    if (base.empty())
        return true;
    DnPtr parsed_dn = parse(dn);
    DnPtr parsed_base = parse(base);
    if (parsed_dn == nullptr || parsed_base == nullptr)
        return false;
    const std::vector<LDAPRDN> entry = rdns(parsed_dn.get());
    const std::vector<LDAPRDN> suffix = rdns(parsed_base.get());
    if (suffix.size() > entry.size())
        return false;
    const std::size_t offset = entry.size() - suffix.size();
    for (std::size_t i = 0; i < suffix.size(); ++i)
        if (!same_rdn(entry[offset + i], suffix[i]))
            return false;
    return true;
}

} // namespace heirloom::server::ldap_backend
