// The LDAP backend of the directory: finds users with the service bind, checks passwords by
// binding as the user, and resolves groups through memberOf, member/uniqueMember and memberUid.

#include "../names.hpp"
#include "active_directory.hpp"
#include "config_check.hpp"
#include "dn.hpp"
#include "heirloom/server/directory.hpp"
#include "ldap_session.hpp"
#include "sigpipe_guard.hpp"

#include <algorithm>
#include <chrono>
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
// Active Directory's matching rule for "member, directly or through nested groups".
constexpr const char* in_chain_rule = "1.2.840.113556.1.4.1941";
// Active Directory's bitwise-and rule, and the "account disabled" bit of userAccountControl.
constexpr const char* not_disabled = "(!(userAccountControl:1.2.840.113556.1.4.803:=2))";

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
            return fail(Errc::crypto, refused("no user with that name"));
        std::string rejection;
        const ldap_backend::BindOutcome outcome =
            HL_TRY(session.bind(entry->dn, password, &rejection));
        if (outcome == ldap_backend::BindOutcome::rejected)
            return fail(Errc::crypto, refused(ldap_backend::ad_bind_refusal(rejection)));
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
        if (active_directory()) {
            const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
            if (std::string problem = ldap_backend::ad_account_problem(*entry, now);
                !problem.empty())
                return fail(Errc::denied, "directory " + description_ + ": the account of '" +
                                              std::string(user) + "' is " + problem);
        }
        return describe_user(session, *entry, user);
    }

    Result<std::vector<DirectoryEntry>> search_users(std::string_view text,
                                                     std::size_t limit) override {
        std::string filter = "(&" + user_class_filter();
        if (active_directory())
            filter += not_disabled; // people who can log in, not krbtgt or left staff
        filter += text.empty() ? "(" + config_.user_attribute + "=*)"
                               : any_name_matches(text, config_.user_attribute);
        filter += ")";
        return search_entries(text, limit, EntryKind::user, filter);
    }

    Result<std::vector<DirectoryEntry>> search_groups(std::string_view text,
                                                      std::size_t limit) override {
        std::string filter = "(&" + group_class_filter();
        filter += text.empty() ? "(" + config_.group_attribute + "=*)"
                               : any_name_matches(text, config_.group_attribute);
        filter += ")";
        return search_entries(text, limit, EntryKind::group, filter);
    }

    std::string describe() const override { return description_; }

  private:
    bool active_directory() const { return config_.type == DirectoryType::active_directory; }

    // The message of a refused login: the same for every cause, with the directory's reason
    // after it for Active Directory (for the server's log, never for the caller).
    std::string refused(const std::string& reason) const {
        if (!active_directory() || reason.empty())
            return wrong_credentials;
        return std::string(wrong_credentials) + ": " + reason;
    }

    std::string user_class_filter() const {
        return config_.user_filter.empty() ? "(objectClass=" + config_.user_object_class + ")"
                                           : config_.user_filter;
    }

    std::string group_class_filter() const {
        if (!config_.group_object_class.empty())
            return "(objectClass=" + config_.group_object_class + ")";
        return "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)"
               "(objectClass=posixGroup))";
    }

    // The attribute and value a typed login name is looked up by: the user attribute, or for
    // Active Directory also a user principal name or DOMAIN\name of this domain. Nothing when
    // the name cannot be one of this directory's users.
    std::optional<std::pair<std::string, std::string>> login_key(std::string_view typed) const {
        if (!active_directory())
            return std::pair{config_.user_attribute, std::string(typed)};
        const auto login = ldap_backend::parse_ad_login_name(typed);
        if (!login)
            return std::nullopt;
        switch (login->form) {
        case ldap_backend::AdLoginName::Form::principal:
            return std::pair{std::string("userPrincipalName"), login->name};
        case ldap_backend::AdLoginName::Form::down_level:
            if (!ldap_backend::is_own_domain(config_, login->domain))
                return std::nullopt;
            break;
        case ldap_backend::AdLoginName::Form::account:
            break;
        }
        return std::pair{config_.user_attribute, login->name};
    }

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
        const auto key = login_key(user);
        if (!key)
            return std::optional<LdapEntry>();
        SearchRequest request;
        request.base = config_.user_base;
        request.filter = "(&" + user_class_filter() + "(" + key->first + "=" +
                         escape_filter_value(key->second) + "))";
        request.attributes = {config_.user_attribute, "cn", "displayName", "memberOf"};
        if (active_directory())
            for (const char* more :
                 {"userAccountControl", "accountExpires", "objectSid", "primaryGroupID"})
                request.attributes.emplace_back(more);
        request.size_limit = 2;
        SearchResult found = HL_TRY(session.search(request));
        if (found.base_missing)
            return std::unexpected(base_missing(config_.user_base, "user_base").error());
        if (found.entries.size() > 1 || found.truncated)
            return fail(Errc::corrupt, "directory " + description_ + " has several users whose " +
                                           key->first + " is '" + std::string(user) +
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
        // One canonical name whatever form was typed: the user attribute's value.
        const auto key = login_key(typed);
        const bool by_name = key && key->first == config_.user_attribute;
        user.name = HL_TRY(login_name_of(entry, by_name ? std::string_view(key->second) : typed));
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
        if (how == GroupMembership::in_chain)
            HL_TRY(add_chained_groups(session, entry, name, groups));
        return std::vector<std::string>(groups.begin(), groups.end());
    }

    // Active Directory: the groups holding the user directly or through nested groups, the
    // primary group (Domain Users, which member does not list) and the groups holding that.
    Status add_chained_groups(LdapSession& session, const LdapEntry& entry, const std::string& name,
                              std::set<std::string>& groups) {
        const std::string chained = std::string("(member:") + in_chain_rule + ":=";
        HL_TRY(add_searched_groups(
            session, "(&" + group_class_filter() + chained + escape_filter_value(entry.dn) + "))",
            name, groups));
        const auto& sids = entry.values("objectSid");
        const auto& ids = entry.values("primaryGroupID");
        if (sids.size() != 1 || ids.size() != 1)
            return {};
        const auto sid = ldap_backend::primary_group_sid(sids.front(), ids.front());
        if (!sid)
            return {};
        SearchRequest request;
        request.base = config_.group_base;
        request.filter = "(&" + group_class_filter() +
                         "(objectSid=" + ldap_backend::binary_filter_value(*sid) + "))";
        request.attributes = {config_.group_attribute};
        request.size_limit = 1;
        SearchResult found = HL_TRY(session.search(request));
        for (const auto& group : found.entries) {
            if (std::string group_name = group_name_of(group); !group_name.empty())
                groups.insert(group_name);
            if (!group.dn.empty())
                HL_TRY(add_searched_groups(session,
                                           "(&" + group_class_filter() + chained +
                                               escape_filter_value(group.dn) + "))",
                                           name, groups));
        }
        return {};
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

} // namespace

Result<std::unique_ptr<Directory>> open_ldap_directory(const DirectoryConfig& config) {
    if (std::string problem = ldap_backend::config_problem(config); !problem.empty())
        return fail(Errc::invalid_argument, "directory configuration: " + problem);
    return std::unique_ptr<Directory>(std::make_unique<LdapDirectory>(config));
}

} // namespace heirloom::server
