#pragma once

// URL redirection: which published app (a browser in a workspace) opens a URL, by the apps'
// url_patterns. Pattern syntax (docs/shell-integration.md):
//
//   SCHEME://HOST[:PORT][/PATH]
//
//   SCHEME  http, https, or * for both
//   HOST    a host name, compared case-insensitively; "*.example.com" matches every subdomain
//           of example.com (at any depth) but not example.com itself; no other wildcards
//   PORT    optional; without it the scheme's default port (80, 443) is required
//   PATH    a glob on the URL's path and query: * matches any run of characters (also /),
//           everything else matches itself; no path means every path
//
// URLs with user information (user@host), without a host, or with control characters or
// spaces never match: they go to the host's browser.

#include "heirloom/common/error.hpp"
#include "heirloom/common/json.hpp"
#include "heirloom/policy/evaluate.hpp"

#include <optional>
#include <string>
#include <vector>

namespace heirloom::shell {

// A URL split into what patterns compare.
struct ParsedUrl {
    std::string scheme; // lower case
    std::string host;   // lower case
    int port = 0;       // explicit or the scheme's default
    std::string path;   // path and query, "/" at least; the fragment is dropped
};
Result<ParsedUrl> parse_url(std::string_view url);

struct UrlPattern {
    std::string scheme; // "http", "https" or "*"
    std::string host;   // lower case; "*.example.com" for subdomains
    int port = 0;       // 0: the scheme's default
    std::string path;   // glob; "*" when the pattern had none
};
Result<UrlPattern> parse_url_pattern(std::string_view pattern);
bool matches(const UrlPattern& pattern, const ParsedUrl& url);

// One app that takes URLs, with its patterns (those that parse).
struct UrlRoute {
    std::string app_id;
    std::string workspace_id;
    std::vector<UrlPattern> patterns;
};

// The routes of a policy, in policy order; patterns that do not parse are left out.
std::vector<UrlRoute> url_routes(const policy::EffectivePolicy& policy);
// The app that opens url: the first route with a matching pattern.
std::optional<std::string> route_url(const std::vector<UrlRoute>& routes, std::string_view url);

// The routes file that publish writes and heirloom-open reads: the routes' patterns as text
// and the desktop id of the handler that had http before us ("" when none was known).
Json routes_to_json(const policy::EffectivePolicy& policy, const std::string& previous_handler);
struct RoutesFile {
    std::vector<UrlRoute> routes;
    std::string previous_handler;
};
Result<RoutesFile> routes_from_json(const Json& doc);

} // namespace heirloom::shell
