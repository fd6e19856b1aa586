// The LDAP backend of the directory: finds users with the service bind, checks passwords by
// binding as the user, and resolves groups through memberOf, member/uniqueMember and memberUid.

#include "../names.hpp"
#include "dn.hpp"
#include "heirloom/server/directory.hpp"
#include "ldap_session.hpp"
#include "sigpipe_guard.hpp"

#include <algorithm>
#include <ldap.h>
#include <optional>
#include <set>
#include <unistd.h>

namespace heirloom::server {

namespace {

using ldap_backend::LdapEntry;
using ldap_backend::LdapSession;
using ldap_backend::Scope;
using ldap_backend::SearchRequest;
using ldap_backend::SearchResult;
using ldap_backend::SigpipeGuard;

// One message for a wrong password, an unknown user and a locked account, so that a caller
// cannot tell which names exist.
constexpr const char* wrong_credentials = "wrong user name or password";

constexpr std::size_t max_password_bytes = 4096;
constexpr int max_groups = 10000;
constexpr std::size_t max_group_reads = 1000; // memberOf values whose DN does not name the group
constexpr std::size_t max_search_limit = 10000;

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

// Why a login name cannot be asked for, checked before any network traffic; empty when fine.
std::string login_name_problem(std::string_view name) {
    if (name.empty())
        return "the user name is empty";
    if (name.size() > max_name_bytes)
        return "the user name is longer than " + std::to_string(max_name_bytes) + " bytes";
    if (!is_valid_name(name))
        return "the user name contains a control character or is not UTF-8 text";
    return {};
}

std::string first_valid(const std::vector<std::string>& values) {
    for (const auto& value : values)
        if (is_valid_name(value))
            return value;
    return {};
}

std::string display_name_of(const LdapEntry& entry) {
    std::string name = first_valid(entry.values("displayName"));
    return name.empty() ? first_valid(entry.values("cn")) : name;
}

bool same_ignoring_ascii_case(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               const auto lower = [](char c) {
                   return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
               };
               return lower(x) == lower(y);
           });
}

class LdapDirectory final : public Directory {
  public:
    explicit LdapDirectory(DirectoryConfig config) : config_(std::move(config)) {
        if (config_.user_base.empty())
            config_.user_base = config_.base_dn;
        if (config_.group_base.empty())
            config_.group_base = config_.base_dn;
        description_ = config_.uri;
        if (config_.tls == DirectoryTls::start_tls)
            description_ += " (StartTLS)";
        else if (config_.tls == DirectoryTls::plain)
            description_ += " (no TLS)";
    }

    Result<DirectoryUser> authenticate(std::string_view user, std::string_view password) override {
        if (std::string problem = login_name_problem(user); !problem.empty())
            return fail(Errc::invalid_argument, problem + ": type the name you log in with");
        if (password.empty())
            return fail(Errc::invalid_argument, "the password is empty: type your password");
        if (password.size() > max_password_bytes)
            return fail(Errc::invalid_argument, "the password is longer than " +
                                                    std::to_string(max_password_bytes) + " bytes");
        SigpipeGuard guard;
        LdapSession session = HL_TRY(open_session());
        std::optional<LdapEntry> entry = HL_TRY(find_user(session, user));
        if (!entry)
            return fail(Errc::crypto, wrong_credentials);
        const ldap_backend::BindOutcome outcome = HL_TRY(session.bind(entry->dn, password));
        if (outcome == ldap_backend::BindOutcome::rejected)
            return fail(Errc::crypto, wrong_credentials);
        // Groups are read as the service account, as lookup reads them.
        HL_TRY(bind_service(session));
        return describe_user(session, *entry, user);
    }

    Result<DirectoryUser> lookup(std::string_view user) override {
        if (std::string problem = login_name_problem(user); !problem.empty())
            return fail(Errc::invalid_argument, problem);
        SigpipeGuard guard;
        LdapSession session = HL_TRY(open_session());
        std::optional<LdapEntry> entry = HL_TRY(find_user(session, user));
        if (!entry)
            return fail(Errc::not_found, "directory " + description_ + " has no user named '" +
                                             std::string(user) + "'");
        return describe_user(session, *entry, user);
    }

    Result<std::vector<DirectoryEntry>> search_users(std::string_view text,
                                                     std::size_t limit) override {
        std::string filter = "(&(objectClass=" + config_.user_object_class + ")";
        filter += text.empty() ? "(" + config_.user_attribute + "=*)"
                               : any_name_matches(text, config_.user_attribute);
        filter += ")";
        return search_entries(text, limit, EntryKind::user, filter);
    }

    Result<std::vector<DirectoryEntry>> search_groups(std::string_view text,
                                                      std::size_t limit) override {
        std::string filter = "(&(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)"
                             "(objectClass=posixGroup))";
        filter += text.empty() ? "(" + config_.group_attribute + "=*)"
                               : any_name_matches(text, config_.group_attribute);
        filter += ")";
        return search_entries(text, limit, EntryKind::group, filter);
    }

    std::string describe() const override { return description_; }

  private:
    // A connection with the service bind (or none, for anonymous searches).
    Result<LdapSession> open_session() {
        LdapSession session = HL_TRY(LdapSession::open(config_, description_));
        if (!config_.bind_dn.empty())
            HL_TRY(bind_service(session));
        return session;
    }

    // Binds as the service account, or anonymously when there is none.
    Status bind_service(LdapSession& session) {
        const bool anonymous = config_.bind_dn.empty();
        const ldap_backend::BindOutcome outcome =
            HL_TRY(session.bind(config_.bind_dn, anonymous ? "" : config_.bind_password));
        if (outcome == ldap_backend::BindOutcome::accepted)
            return {};
        return fail(Errc::network,
                    "directory " + description_ + " rejected the service account " +
                        (anonymous ? std::string("(anonymous)") : config_.bind_dn) +
                        ": check bind_dn and the bind password file in the server configuration");
    }

    // "(|(attribute=*text*)(cn=*text*)(displayName=*text*))", the name attribute once.
    static std::string any_name_matches(std::string_view text, const std::string& attribute) {
        const std::string pattern = "=*" + escape_filter_value(text) + "*)";
        std::string filter = "(|(" + attribute + pattern;
        for (const char* other : {"cn", "displayName"})
            if (!same_ignoring_ascii_case(attribute, other))
                filter += "(" + std::string(other) + pattern;
        return filter + ")";
    }

    Status base_missing(std::string_view base, std::string_view setting) const {
        const std::string who =
            config_.bind_dn.empty() ? "anonymous searches" : "the service account";
        return fail(Errc::network, "directory " + description_ + " has no entry " +
                                       std::string(base) + " that " + who + " may see: check " +
                                       std::string(setting) +
                                       " (or base_dn) and bind_dn in the "
                                       "server configuration");
    }

    // The user's entry, none when no entry has that name, Errc::corrupt when several do.
    Result<std::optional<LdapEntry>> find_user(LdapSession& session, std::string_view user) {
        SearchRequest request;
        request.base = config_.user_base;
        request.filter = "(&(objectClass=" + config_.user_object_class + ")(" +
                         config_.user_attribute + "=" + escape_filter_value(user) + "))";
        request.attributes = {config_.user_attribute, "cn", "displayName", "memberOf"};
        request.size_limit = 2;
        SearchResult found = HL_TRY(session.search(request));
        if (found.base_missing)
            return std::unexpected(base_missing(config_.user_base, "user_base").error());
        if (found.entries.size() > 1 || found.truncated)
            return fail(Errc::corrupt, "directory " + description_ + " has several users whose " +
                                           config_.user_attribute + " is '" + std::string(user) +
                                           "': make login names unique, or change user_attribute");
        if (found.entries.empty())
            return std::optional<LdapEntry>();
        if (found.entries.front().dn.empty())
            return fail(Errc::corrupt,
                        "directory " + description_ + " returned a user entry without a DN");
        return std::optional<LdapEntry>(std::move(found.entries.front()));
    }

    // The login name as the directory spells it: the value that matches what was typed (the
    // attribute may hold several), or the only one.
    Result<std::string> login_name_of(const LdapEntry& entry, std::string_view typed) const {
        std::vector<std::string> valid;
        for (const auto& value : entry.values(config_.user_attribute))
            if (is_valid_name(value))
                valid.push_back(value);
        for (const auto& value : valid)
            if (same_ignoring_ascii_case(value, typed))
                return value;
        if (valid.size() == 1)
            return valid.front();
        return fail(Errc::corrupt, "directory " + description_ + ": user entry " +
                                       ldap_backend::printable(entry.dn) + " has no usable " +
                                       config_.user_attribute + " value matching '" +
                                       std::string(typed) + "' (missing, too long, or not text)");
    }

    Result<DirectoryUser> describe_user(LdapSession& session, const LdapEntry& entry,
                                        std::string_view typed) {
        DirectoryUser user;
        user.name = HL_TRY(login_name_of(entry, typed));
        user.dn = entry.dn;
        user.display_name = display_name_of(entry);
        user.groups = HL_TRY(groups_of(session, entry, user.name));
        return user;
    }

    Result<std::vector<std::string>> groups_of(LdapSession& session, const LdapEntry& entry,
                                               const std::string& name) {
        const GroupMembership how = config_.membership;
        std::set<std::string> groups;
        if (how == GroupMembership::automatic || how == GroupMembership::member_of)
            HL_TRY(add_member_of_groups(session, entry, groups));
        if (how == GroupMembership::automatic || how == GroupMembership::group_member)
            HL_TRY(add_searched_groups(session,
                                       "(|(member=" + escape_filter_value(entry.dn) +
                                           ")(uniqueMember=" + escape_filter_value(entry.dn) + "))",
                                       name, groups));
        if (how == GroupMembership::automatic || how == GroupMembership::posix)
            HL_TRY(add_searched_groups(
                session, "(&(objectClass=posixGroup)(memberUid=" + escape_filter_value(name) + "))",
                name, groups));
        return std::vector<std::string>(groups.begin(), groups.end());
    }

    // A group entry's name: its RDN value when the RDN is the name attribute, else the first
    // usable value of that attribute.
    std::string group_name_of(const LdapEntry& group) const {
        if (auto rdn = ldap_backend::first_rdn_value(group.dn, config_.group_attribute))
            if (is_valid_name(*rdn))
                return *rdn;
        return first_valid(group.values(config_.group_attribute));
    }

    // The groups named by the user's memberOf values that lie under group_base. Most DNs name
    // the group in their RDN ("cn=finance,ou=groups,..."); the others are read.
    Status add_member_of_groups(LdapSession& session, const LdapEntry& user,
                                std::set<std::string>& groups) {
        std::size_t reads = 0;
        for (const auto& dn : user.values("memberOf")) {
            if (!ldap_backend::is_within(dn, config_.group_base))
                continue;
            if (auto rdn = ldap_backend::first_rdn_value(dn, config_.group_attribute)) {
                if (is_valid_name(*rdn))
                    groups.insert(*rdn);
                continue;
            }
            if (++reads > max_group_reads)
                return fail(Errc::corrupt, "directory " + description_ + ": user " +
                                               ldap_backend::printable(user.dn) +
                                               " is a memberOf more than " +
                                               std::to_string(max_group_reads) +
                                               " groups whose DN does not name them");
            SearchRequest request;
            request.base = dn;
            request.scope = Scope::base;
            request.filter = "(objectClass=*)";
            request.attributes = {config_.group_attribute};
            request.size_limit = 1;
            SearchResult found = HL_TRY(session.search(request));
            for (const auto& group : found.entries) // none when the group is gone
                if (std::string name = group_name_of(group); !name.empty())
                    groups.insert(name);
        }
        return {};
    }

    Status add_searched_groups(LdapSession& session, const std::string& filter,
                               const std::string& user, std::set<std::string>& groups) {
        SearchRequest request;
        request.base = config_.group_base;
        request.filter = filter;
        request.attributes = {config_.group_attribute};
        request.size_limit = max_groups;
        SearchResult found = HL_TRY(session.search(request));
        if (found.base_missing)
            return base_missing(config_.group_base, "group_base");
        if (found.truncated)
            return fail(Errc::corrupt,
                        "directory " + description_ + " cut the list of groups of '" + user +
                            "' short (a size limit): raise the limit for the service account");
        for (const auto& group : found.entries)
            if (std::string name = group_name_of(group); !name.empty())
                groups.insert(name);
        return {};
    }

    enum class EntryKind { user, group };

    Result<std::vector<DirectoryEntry>> search_entries(std::string_view text, std::size_t limit,
                                                       EntryKind kind, const std::string& filter) {
        const bool users = kind == EntryKind::user;
        const std::string& base = users ? config_.user_base : config_.group_base;
        const std::string& name_attribute =
            users ? config_.user_attribute : config_.group_attribute;
        if (text.size() > max_name_bytes || (!text.empty() && !is_valid_name(text)))
            return fail(Errc::invalid_argument,
                        "the search text is too long, not UTF-8 or has control characters");
        if (limit == 0)
            return std::vector<DirectoryEntry>();
        SigpipeGuard guard;
        LdapSession session = HL_TRY(open_session());
        SearchRequest request;
        request.base = base;
        request.filter = filter;
        request.attributes = {name_attribute, "cn", "displayName"};
        request.size_limit = static_cast<int>(std::min(limit, max_search_limit));
        SearchResult found = HL_TRY(session.search(request));
        if (found.base_missing)
            return std::unexpected(base_missing(base, users ? "user_base" : "group_base").error());
        std::vector<DirectoryEntry> entries;
        for (const auto& entry : found.entries) {
            DirectoryEntry out;
            out.name = users ? first_valid(entry.values(name_attribute)) : group_name_of(entry);
            if (out.name.empty() || entry.dn.empty())
                continue; // not something a user could pick
            out.dn = entry.dn;
            out.display_name = display_name_of(entry);
            entries.push_back(std::move(out));
        }
        std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
            return a.name != b.name ? a.name < b.name : a.dn < b.dn;
        });
        return entries;
    }

    DirectoryConfig config_;
    std::string description_;
};

std::string scheme_of(const std::string& uri) {
    const std::size_t colon = uri.find("://");
    std::string scheme = colon == std::string::npos ? std::string() : uri.substr(0, colon);
    std::transform(scheme.begin(), scheme.end(), scheme.begin(), [](char c) {
        return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    });
    return scheme;
}

// Why the configuration cannot work; empty when it can.
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
        {"group_attribute", &config.group_attribute}};
    for (const auto& [setting, value] : attributes)
        if (!is_attribute_name(*value))
            return std::string(setting) + " '" + *value +
                   "' is not an attribute or class name (letters, digits, hyphens)";
    if (config.tls != DirectoryTls::plain && !config.ca_file.empty() &&
        ::access(config.ca_file.c_str(), R_OK) != 0)
        return "ca_file " + config.ca_file + " cannot be read";
    return {};
}

} // namespace

Result<std::unique_ptr<Directory>> open_ldap_directory(const DirectoryConfig& config) {
    if (std::string problem = config_problem(config); !problem.empty())
        return fail(Errc::invalid_argument, "directory configuration: " + problem);
    return std::unique_ptr<Directory>(std::make_unique<LdapDirectory>(config));
}

} // namespace heirloom::server
