// Checks of a directory configuration before anything connects.

#include "config_check.hpp"

#include "../names.hpp"
#include "dn.hpp"

#include <algorithm>
#include <ldap.h>
#include <unistd.h>

namespace heirloom::server::ldap_backend {

namespace {

// An attribute description as a filter may carry it unescaped: a name (letter, then letters,
// digits and hyphens) or a numeric OID.
bool is_attribute_name(std::string_view name) {
    if (name.empty() || name.size() > 128)
        return false;
    const auto alpha = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    };
    const auto digit = [](char c) {
        return c >= '0' && c <= '9';
    };
    if (alpha(name[0]))
        return std::all_of(name.begin(), name.end(),
                           [&](char c) { return alpha(c) || digit(c) || c == '-'; });
    bool after_dot = true;
    for (char c : name) {
        if (c == '.') {
            if (after_dot)
                return false;
            after_dot = true;
        } else if (digit(c)) {
            after_dot = false;
        } else {
            return false;
        }
    }
    return !after_dot;
}

std::string scheme_of(const std::string& uri) {
    const std::size_t colon = uri.find("://");
    std::string scheme = colon == std::string::npos ? std::string() : uri.substr(0, colon);
    std::transform(scheme.begin(), scheme.end(), scheme.begin(), [](char c) {
        return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    });
    return scheme;
}

// Why a configured filter cannot be used: it must be one parenthesised filter with balanced
// parentheses (the directory checks the rest). Empty when fine, or when there is none.
std::string filter_problem(const std::string& filter) {
    if (filter.empty())
        return {};
    if (filter.size() > 4096 || filter.front() != '(' || filter.back() != ')')
        return "must be one LDAP filter in parentheses, such as (objectClass=user)";
    int depth = 0;
    for (char c : filter) {
        depth += c == '(' ? 1 : c == ')' ? -1 : 0;
        if (depth < 0 || static_cast<unsigned char>(c) < 0x20)
            return "has unbalanced parentheses or a control character";
    }
    if (depth != 0)
        return "has unbalanced parentheses";
    return {};
}

} // namespace

std::string config_problem(const DirectoryConfig& config) {
    if (config.uri.empty())
        return "uri is empty: give the directory's address, such as ldap://ldap.example.org:389";
    if (config.uri.find_first_of(" \t\r\n") != std::string::npos)
        return "uri '" + config.uri + "' must be a single ldap:// or ldaps:// address";
    LDAPURLDesc* parsed = nullptr;
    if (ldap_url_parse(config.uri.c_str(), &parsed) != LDAP_URL_SUCCESS)
        return "uri '" + config.uri + "' is not an LDAP URL such as ldap://ldap.example.org:389";
    const bool has_host = parsed->lud_host != nullptr && parsed->lud_host[0] != '\0';
    const bool has_dn = parsed->lud_dn != nullptr && parsed->lud_dn[0] != '\0';
    ldap_free_urldesc(parsed);
    const std::string scheme = scheme_of(config.uri);
    if (scheme != "ldap" && scheme != "ldaps")
        return "uri '" + config.uri + "' must start with ldap:// or ldaps://";
    if (!has_host)
        return "uri '" + config.uri + "' has no host name";
    if (has_dn)
        return "uri '" + config.uri + "' carries a DN: put it in base_dn instead";
    if (scheme == "ldaps" && config.tls != DirectoryTls::ldaps)
        return "uri '" + config.uri + "' is ldaps:// but tls is not ldaps: set tls to ldaps";
    if (scheme == "ldap" && config.tls == DirectoryTls::ldaps)
        return "tls is ldaps but uri '" + config.uri +
               "' is ldap://: use an ldaps:// address or StartTLS";
    if (config.timeout_seconds < 1 || config.timeout_seconds > 300)
        return "timeout_seconds must be between 1 and 300, not " +
               std::to_string(config.timeout_seconds);
    if (config.base_dn.empty() && (config.user_base.empty() || config.group_base.empty()))
        return "base_dn is empty: give the directory's base, such as dc=example,dc=org";
    const std::pair<const char*, const std::string*> dns[] = {{"base_dn", &config.base_dn},
                                                              {"bind_dn", &config.bind_dn},
                                                              {"user_base", &config.user_base},
                                                              {"group_base", &config.group_base}};
    for (const auto& [setting, value] : dns)
        if (!ldap_backend::is_valid_dn(*value))
            return std::string(setting) + " '" + *value + "' is not a distinguished name";
    if (!config.bind_dn.empty() && config.bind_password.empty())
        return "bind_dn is set but the bind password is empty (which LDAP treats as an "
               "anonymous bind): give the service account's password";
    if (config.bind_dn.empty() && !config.bind_password.empty())
        return "a bind password is set but bind_dn is empty: give the service account's DN";
    const std::pair<const char*, const std::string*> attributes[] = {
        {"user_attribute", &config.user_attribute},
        {"user_object_class", &config.user_object_class},
        {"group_attribute", &config.group_attribute},
        {"group_object_class", &config.group_object_class}};
    for (const auto& [setting, value] : attributes)
        if ((setting != std::string_view("group_object_class") || !value->empty()) &&
            !is_attribute_name(*value))
            return std::string(setting) + " '" + *value +
                   "' is not an attribute or class name (letters, digits, hyphens)";
    if (std::string problem = filter_problem(config.user_filter); !problem.empty())
        return "user_filter '" + config.user_filter + "' " + problem;
    if (!config.netbios_domain.empty() && !is_valid_name(config.netbios_domain))
        return "netbios_domain '" + config.netbios_domain + "' is not a name";
    if (config.tls != DirectoryTls::plain && !config.ca_file.empty() &&
        ::access(config.ca_file.c_str(), R_OK) != 0)
        return "ca_file " + config.ca_file + " cannot be read";
    return {};
}

} // namespace heirloom::server::ldap_backend
