#pragma once

// The directory: who a user is and which groups they are in. The server binds as the user to
// check a password (it never stores one), and uses its own service bind (or an anonymous one)
// to look up users and groups. Backends: directory/ldap/ (OpenLDAP's libldap).

#include "heirloom/common/error.hpp"

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace heirloom::server {

// How group membership is found. Auto asks every way and merges the answers, which works with
// OpenLDAP's groupOfNames + memberOf overlay and with posixGroup alike.
enum class GroupMembership {
    automatic,    // all of the below
    member_of,    // the user entry's memberOf values under group_base (memberOf overlay, AD)
    group_member, // groups whose member (or uniqueMember) attribute holds the user's DN
    posix,        // posixGroup entries whose memberUid holds the user's name
    in_chain,     // Active Directory: groups holding the user directly or through nested groups
                  // (the LDAP_MATCHING_RULE_IN_CHAIN rule), and the primary group (primaryGroupID)
};

// What kind of directory it is. The type sets defaults for the attributes, classes and
// membership below (apply_directory_profile), and for Active Directory also how logins and
// group names are read: sAMAccountName, user@upn-suffix and DOMAIN\name log the same user in;
// group names compare without regard to case; disabled and expired accounts get no policy.
enum class DirectoryType { openldap, active_directory, posix };

// Transport security. StartTLS is the default for ldap:// URIs; ldaps:// implies Ldaps.
// Plain is refused unless the operator asks for it explicitly (tests, a loopback directory).
enum class DirectoryTls { start_tls, ldaps, plain };

struct DirectoryConfig {
    DirectoryType type = DirectoryType::openldap;
    std::string uri; // "ldap://host:389" or "ldaps://host:636"
    DirectoryTls tls = DirectoryTls::start_tls;
    std::string ca_file;       // trust these CAs for the directory's certificate (empty: system's)
    std::string base_dn;       // "dc=example,dc=org"
    std::string bind_dn;       // service account for searches; empty = anonymous searches
    std::string bind_password; // read from a file by the caller, never from argv or logs
    std::string user_base;     // where users live; empty = base_dn
    std::string group_base;    // where groups live; empty = base_dn
    std::string user_attribute = "uid";              // the login name attribute
    std::string user_object_class = "inetOrgPerson"; // what a user entry is
    std::string user_filter; // what a user entry is; empty: (objectClass=user_object_class)
    std::string group_attribute = "cn"; // a group's name
    std::string group_object_class;     // empty: groupOfNames, groupOfUniqueNames or posixGroup
    std::string netbios_domain;         // AD: DOMAIN of DOMAIN\name; empty: base_dn's first dc=
    GroupMembership membership = GroupMembership::automatic;
    int timeout_seconds = 5; // 1 to 300; each call (connect, TLS, binds, searches) ends by then
};

// Sets the defaults of a directory type: user attribute and object class, user filter, group
// object class and membership (docs/server.md lists them). Connection settings and bases are
// left alone.
void apply_directory_profile(DirectoryConfig& config, DirectoryType type);

// Whether two group names name the same group as the directory compares them: exactly, or for
// Active Directory without regard to (ASCII) case.
bool same_group_name(const DirectoryConfig& config, std::string_view a, std::string_view b);

// A user as the directory describes them.
struct DirectoryUser {
    std::string name; // the login name, exactly as the directory spells it
    std::string dn;
    std::string display_name;        // displayName, else cn; may be empty
    std::vector<std::string> groups; // group names, sorted, no duplicates
};

// A user or group found by a search, for admins browsing the directory.
struct DirectoryEntry {
    std::string name;
    std::string dn;
    std::string display_name;
};

// A directory connection factory. Implementations are thread-safe: each call may run on its
// own connection. Errors: Errc::invalid_argument for an empty password or a bad name (empty,
// over 256 bytes, control characters, not UTF-8), before any network traffic; Errc::crypto
// for wrong credentials, an unknown, locked, disabled or expired user or one who must change
// their password (the message starts "wrong user name or password" for all of them; when the
// directory said why, as Active Directory does, the reason follows after ": " for the server's
// log, and callers must be shown only the first part); Errc::not_found from lookup for an
// unknown user; Errc::denied from lookup for a user the directory has disabled or expired;
// Errc::network when the directory is down, slow (past timeout_seconds), fails TLS, or refuses the
// service account or its searches (a server configuration problem, never the user's); Errc::corrupt
// for a result that makes no sense (a login name matching two entries). Messages never contain a
// password.
class Directory {
  public:
    virtual ~Directory() = default;

    // Checks the user's password by binding as them, then returns who they are and their groups.
    virtual Result<DirectoryUser> authenticate(std::string_view user,
                                               std::string_view password) = 0;

    // Looks a user and their groups up with the service bind (for agents that proved identity
    // with their token).
    virtual Result<DirectoryUser> lookup(std::string_view user) = 0;

    // Users and groups whose name, cn or displayName contains text (empty: all), at most
    // limit, sorted by name. Entries without a usable name are left out.
    virtual Result<std::vector<DirectoryEntry>> search_users(std::string_view text,
                                                             std::size_t limit) = 0;
    virtual Result<std::vector<DirectoryEntry>> search_groups(std::string_view text,
                                                              std::size_t limit) = 0;

    // "ldap://directory.example.org:389 (StartTLS)", for messages.
    virtual std::string describe() const = 0;
};

// Escapes a value for use inside an LDAP search filter (RFC 4515): * ( ) \ and NUL become
// \2a \28 \29 \5c \00, so a user name can never change the filter's structure. Control
// characters and bytes that are not well-formed UTF-8 are escaped as well; UTF-8 text is kept.
std::string escape_filter_value(std::string_view value);

// Opens the LDAP backend. Checks the configuration but does not connect yet.
Result<std::unique_ptr<Directory>> open_ldap_directory(const DirectoryConfig& config);

} // namespace heirloom::server
