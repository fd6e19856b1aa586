#pragma once

// Parsers for what clients send the server: JSON request bodies, the Authorization header and
// query parameters. Everything here faces the network, so it is strict (unknown fields and
// wrong types refused, every string and list bounded) and fuzzed (tests/fuzz/fuzz_requests).

#include "heirloom/common/error.hpp"
#include "heirloom/server/metadata.hpp"

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace heirloom::server {

// Largest JSON body accepted anywhere but the upload routes.
inline constexpr std::size_t max_json_body = 1u << 20;
// Events one report may carry, and the longest event message kept.
inline constexpr std::size_t max_events_per_report = 256;
inline constexpr std::size_t max_event_message = 1024;

struct Credentials {
    std::string user;
    std::string password; // wiped by the destructor
    std::string hostname; // enrolment only
    Credentials() = default;
    Credentials(Credentials&&) = default;
    Credentials& operator=(Credentials&&) = default;
    ~Credentials();
};

// {"user": "...", "password": "..."}; an empty password is refused here, before any bind.
Result<Credentials> parse_login(std::string_view body);
// The body of a Kerberos (Negotiate) login or enrolment: {} or {"hostname": ...}; the user
// comes from the token. Returns the hostname (empty for a login).
Result<std::string> parse_negotiated(std::string_view body, bool enrol);
// {"user": "...", "password": "...", "hostname": "..."}.
Result<Credentials> parse_enrol(std::string_view body);
// {"events": [{"type", "time", "workspace", "image", "version", "message"}, ...]}.
Result<std::vector<Event>> parse_events(std::string_view body);
// {"objects": ["chunks/ab/ab…", "deltas/…", ...]}, at most max_objects entries.
Result<std::vector<std::string>> parse_object_list(std::string_view body, std::size_t max_objects);
// {"name": "payroll"}.
Result<std::string> parse_image_create(std::string_view body);
// {"revision": N, "policy": {...}}: the set is returned as JSON text for parse_policy_set.
struct PolicyUpdate {
    std::optional<std::uint64_t> revision;
    std::string policy_json;
};
Result<PolicyUpdate> parse_policy_update(std::string_view body);

// The event types agents report.
bool known_event_type(std::string_view type);

// The token of "Authorization: Bearer <token>"; tokens are "s." (login sessions) or "a."
// (agents) followed by 64 lowercase hex digits.
enum class TokenKind { session, agent };
struct BearerToken {
    TokenKind kind;
    std::string token;
};
Result<BearerToken> parse_bearer(std::string_view header);

// Query parameters of the event report.
Result<EventFilter> parse_event_filter(const std::multimap<std::string, std::string>& params);

// A version number in a URL: decimal, 1 to 2^63-1, no sign, no leading zeros.
Result<std::uint64_t> parse_version_number(std::string_view text);

} // namespace heirloom::server
