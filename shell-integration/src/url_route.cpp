#include "heirloom/shell/url_route.hpp"

#include "heirloom/shell/desktop_entry.hpp"

#include <algorithm>
#include <charconv>

namespace heirloom::shell {
namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return char(c >= 'A' && c <= 'Z' ? c + 32 : c); });
    return out;
}

int default_port(std::string_view scheme) {
    return scheme == "https" ? 443 : scheme == "http" ? 80 : 0;
}

bool host_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

// Splits "host[:port]" and checks both; port 0 when absent.
Status split_authority(std::string_view authority, std::string& host, int& port) {
    port = 0;
    auto colon = authority.rfind(':');
    std::string_view h = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
        std::string_view p = authority.substr(colon + 1);
        auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
        if (p.empty() || ec != std::errc() || end != p.data() + p.size() || port < 1 ||
            port > 65535)
            return fail(Errc::invalid_argument, "bad port");
    }
    host = lower(h);
    if (host.empty() || host.size() > 253)
        return fail(Errc::invalid_argument, "no host");
    return {};
}

// Glob: '*' matches any run of characters; iterative, linear-ish backtracking on the last star.
bool glob(std::string_view pattern, std::string_view text) {
    std::size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
    while (t < text.size()) {
        if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            mark = t;
        } else if (p < pattern.size() && pattern[p] == text[t]) {
            ++p;
            ++t;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            t = ++mark;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*')
        ++p;
    return p == pattern.size();
}

} // namespace

Result<ParsedUrl> parse_url(std::string_view url) {
    if (url.empty() || url.size() > 8192)
        return fail(Errc::invalid_argument, "not a URL");
    for (char c : url)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
            return fail(Errc::invalid_argument, "a URL with spaces or control characters");
    auto sep = url.find("://");
    if (sep == std::string_view::npos)
        return fail(Errc::invalid_argument, "not a URL (no scheme://)");
    ParsedUrl out;
    out.scheme = lower(url.substr(0, sep));
    if (out.scheme != "http" && out.scheme != "https")
        return fail(Errc::unsupported, "only http and https URLs are redirected");
    std::string_view rest = url.substr(sep + 3);
    auto end = rest.find_first_of("/?#");
    std::string_view authority = rest.substr(0, end);
    if (authority.find('@') != std::string_view::npos)
        return fail(Errc::invalid_argument, "a URL with user information");
    if (authority.find_first_of("[]\\") != std::string_view::npos)
        return fail(Errc::unsupported, "IPv6 literals and backslashes are not matched");
    HL_TRY(split_authority(authority, out.host, out.port));
    for (char c : out.host)
        if (!host_char(c))
            return fail(Errc::invalid_argument, "a host name with unexpected characters");
    if (out.port == 0)
        out.port = default_port(out.scheme);
    std::string_view path = end == std::string_view::npos ? "" : rest.substr(end);
    path = path.substr(0, path.find('#'));
    out.path = path.empty() || path.front() != '/' ? "/" + std::string(path) : std::string(path);
    return out;
}

Result<UrlPattern> parse_url_pattern(std::string_view pattern) {
    auto sep = pattern.find("://");
    if (sep == std::string_view::npos)
        return fail(Errc::invalid_argument, "a URL pattern needs SCHEME://HOST");
    UrlPattern out;
    out.scheme = lower(pattern.substr(0, sep));
    if (out.scheme != "http" && out.scheme != "https" && out.scheme != "*")
        return fail(Errc::invalid_argument, "a URL pattern's scheme is http, https or *");
    std::string_view rest = pattern.substr(sep + 3);
    auto slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    if (authority.find_first_of("@?#[]\\") != std::string_view::npos)
        return fail(Errc::invalid_argument, "a URL pattern's host has unexpected characters");
    HL_TRY(split_authority(authority, out.host, out.port));
    std::string_view bare = out.host;
    if (bare.starts_with("*."))
        bare.remove_prefix(2);
    if (bare.empty() || bare.front() == '.' || bare.back() == '.')
        return fail(Errc::invalid_argument, "a URL pattern needs a host name");
    for (char c : bare)
        if (!host_char(c))
            return fail(Errc::invalid_argument,
                        "a URL pattern's host may only start with *. as a wildcard");
    out.path = slash == std::string_view::npos ? "*" : std::string(rest.substr(slash));
    return out;
}

bool matches(const UrlPattern& pattern, const ParsedUrl& url) {
    if (pattern.scheme != "*" && pattern.scheme != url.scheme)
        return false;
    int port = pattern.port ? pattern.port : default_port(url.scheme);
    if (port != url.port)
        return false;
    if (pattern.host.starts_with("*.")) {
        std::string_view suffix = std::string_view(pattern.host).substr(1); // ".example.com"
        if (url.host.size() <= suffix.size() || !url.host.ends_with(suffix))
            return false;
    } else if (pattern.host != url.host) {
        return false;
    }
    return glob(pattern.path, url.path);
}

std::vector<UrlRoute> url_routes(const policy::EffectivePolicy& policy) {
    std::vector<UrlRoute> routes;
    for (const auto& app : policy.apps) {
        if (!is_safe_id(app.id) || !is_safe_id(app.workspace_id))
            continue;
        UrlRoute route{app.id, app.workspace_id, {}};
        for (const auto& text : app.url_patterns)
            if (auto p = parse_url_pattern(text))
                route.patterns.push_back(std::move(*p));
        if (!route.patterns.empty())
            routes.push_back(std::move(route));
    }
    return routes;
}

std::optional<std::string> route_url(const std::vector<UrlRoute>& routes, std::string_view url) {
    auto parsed = parse_url(url);
    if (!parsed)
        return std::nullopt;
    for (const auto& route : routes)
        for (const auto& pattern : route.patterns)
            if (matches(pattern, *parsed))
                return route.app_id;
    return std::nullopt;
}

Json routes_to_json(const policy::EffectivePolicy& policy, const std::string& previous_handler) {
    Json routes = Json::array();
    for (const auto& app : policy.apps) {
        if (!is_safe_id(app.id) || !is_safe_id(app.workspace_id) || app.url_patterns.empty())
            continue;
        routes.push_back(
            {{"app", app.id}, {"workspace", app.workspace_id}, {"patterns", app.url_patterns}});
    }
    return {{"routes", routes}, {"previous_handler", previous_handler}};
}

Result<RoutesFile> routes_from_json(const Json& doc) {
    RoutesFile out;
    try {
        out.previous_handler = doc.at("previous_handler").get<std::string>();
        for (const auto& r : doc.at("routes")) {
            UrlRoute route{
                r.at("app").get<std::string>(), r.at("workspace").get<std::string>(), {}};
            if (!is_safe_id(route.app_id) || !is_safe_id(route.workspace_id))
                return fail(Errc::corrupt, "URL routes: a bad app id");
            for (const auto& text : r.at("patterns"))
                if (auto p = parse_url_pattern(text.get<std::string>()))
                    route.patterns.push_back(std::move(*p));
            out.routes.push_back(std::move(route));
        }
    } catch (const std::exception&) {
        return fail(Errc::corrupt, "URL routes: not the expected JSON");
    }
    return out;
}

} // namespace heirloom::shell
