#pragma once

// One connection to an LDAP directory for one Directory call, on one thread. Every network
// wait is bounded by the call's deadline: the TCP connect by libldap's network timeout, each
// answer by ldap_result with the time that is left, and everything else (TLS handshakes, a
// directory that stops halfway through an answer) by a watchdog that shuts the socket down
// when the deadline passes. A directory that accepts connections but never answers (stopped
// with SIGSTOP, wedged) thus gives Errc::network once the deadline passes.

#include "heirloom/server/directory.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct ldap;    // libldap's LDAP handle (typedef struct ldap LDAP)
struct ldapmsg; // libldap's LDAPMessage

namespace heirloom::server::ldap_backend {

using Clock = std::chrono::steady_clock;

// An entry of a search result: its DN and the values of the attributes that were asked for.
struct LdapEntry {
    std::string dn;
    std::vector<std::pair<std::string, std::vector<std::string>>> attributes; // lower-case names

    // The values of an attribute (any case), or none when the entry lacks it.
    const std::vector<std::string>& values(std::string_view attribute) const;
};

// Text from the directory (a DN, a diagnostic message) made safe to show in a message or log:
// control characters become spaces, and it is cut short past 300 bytes.
std::string printable(std::string_view text);

enum class Scope { base, subtree };

struct SearchRequest {
    std::string base;
    Scope scope = Scope::subtree;
    std::string filter;
    std::vector<std::string> attributes;
    int size_limit = 0; // entries; 0 asks for no limit beyond the server's own
};

struct SearchResult {
    std::vector<LdapEntry> entries;
    bool truncated = false;    // the size limit cut the answer short
    bool base_missing = false; // the search base does not exist (noSuchObject)
};

// What a simple bind said about the credentials.
enum class BindOutcome {
    accepted,
    rejected, // invalidCredentials or inappropriateAuthentication: wrong, unknown or locked
};

struct ConnectionGuard; // the watchdog of one connection

class LdapSession {
  public:
    // Connects (with StartTLS when configured). description names the directory in messages.
    static Result<LdapSession> open(const DirectoryConfig& config, const std::string& description);

    LdapSession(LdapSession&& other) noexcept;
    LdapSession& operator=(LdapSession&&) = delete;
    LdapSession(const LdapSession&) = delete;
    LdapSession& operator=(const LdapSession&) = delete;
    ~LdapSession();

    // A simple bind; an empty dn and password make the connection anonymous again. Errors are
    // for everything but a verdict on the credentials (the service account's rejection is the
    // caller's to turn into an error). A rejection's diagnostic message (Active Directory's
    // says why: "... data 533 ...") goes to *rejection when given.
    Result<BindOutcome> bind(std::string_view dn, std::string_view password,
                             std::string* rejection = nullptr);

    // A search, in pages of the paged-results control (RFC 2696) for subtree searches, so a
    // directory's per-search limit (Active Directory's 1,000) does not cut the answer short.
    Result<SearchResult> search(const SearchRequest& request);

  private:
    LdapSession(::ldap* handle, const DirectoryConfig& config, std::string description);

    Status configure(const DirectoryConfig& config);
    Status connect();
    Status start_tls();
    // Waits for the answer to msgid until the deadline; the caller frees *message.
    Status wait_for(int msgid, std::string_view doing, ::ldapmsg** message);
    // The error for a libldap failure code (connection, TLS, timeout) while doing something.
    Error local_error(int code, std::string_view doing) const;
    Error timeout_error(std::string_view doing) const;
    Error tls_error(int code) const;
    // libldap's name for a failure code, with its diagnostic message when that says more.
    std::string describe_code(int code) const;
    std::string diagnostic() const;

    std::unique_ptr<ConnectionGuard> guard_; // outlives ld_, whose callbacks use it
    ::ldap* ld_ = nullptr;
    std::string description_;
    int timeout_seconds_ = 0;
    Clock::time_point deadline_;
    bool start_tls_ = false;
};

} // namespace heirloom::server::ldap_backend
