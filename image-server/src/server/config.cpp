#include "heirloom/server/config.hpp"

#include "heirloom/common/json.hpp"

#include <charconv>
#include <functional>
#include <map>

namespace heirloom::server {
namespace {

// Reads the members of one JSON object with a handler per key; unknown keys are errors, so a
// misspelt setting is never silently ignored.
using Handler = std::function<Status(const Json&, const std::string& path)>;

Status read_object(const Json& object, const std::string& path,
                   const std::map<std::string, Handler>& handlers) {
    if (!object.is_object())
        return fail(Errc::invalid_argument, path + ": expected an object");
    for (const auto& [key, value] : object.items()) {
        auto it = handlers.find(key);
        std::string at = path.empty() ? key : path + "." + key;
        if (it == handlers.end())
            return fail(Errc::invalid_argument, at + ": unknown setting");
        HL_TRY(it->second(value, at));
    }
    return {};
}

Handler string_value(std::string& out) {
    return [&out](const Json& v, const std::string& path) -> Status {
        if (!v.is_string())
            return fail(Errc::invalid_argument, path + ": expected a string");
        out = v.get<std::string>();
        return {};
    };
}

Handler path_value(fs::path& out) {
    return [&out](const Json& v, const std::string& path) -> Status {
        if (!v.is_string() || v.get<std::string>().empty())
            return fail(Errc::invalid_argument, path + ": expected a non-empty path");
        out = v.get<std::string>();
        return {};
    };
}

Handler flag(bool& out) {
    return [&out](const Json& v, const std::string& path) -> Status {
        if (!v.is_boolean())
            return fail(Errc::invalid_argument, path + ": expected true or false");
        out = v.get<bool>();
        return {};
    };
}

template <class T> Handler number(T& out, std::int64_t lo, std::int64_t hi) {
    return [&out, lo, hi](const Json& v, const std::string& path) -> Status {
        if (!v.is_number_integer() || v.get<std::int64_t>() < lo || v.get<std::int64_t>() > hi)
            return fail(Errc::invalid_argument, path + ": expected a whole number from " +
                                                    std::to_string(lo) + " to " +
                                                    std::to_string(hi));
        out = static_cast<T>(v.get<std::int64_t>());
        return {};
    };
}

template <class E> Handler choice(E& out, std::vector<std::pair<std::string_view, E>> options) {
    return [&out, options = std::move(options)](const Json& v, const std::string& path) -> Status {
        std::string all;
        for (const auto& [name, value] : options) {
            if (v.is_string() && v.get<std::string>() == name) {
                out = value;
                return {};
            }
            all += (all.empty() ? "" : ", ") + std::string(name);
        }
        return fail(Errc::invalid_argument, path + ": expected one of " + all);
    };
}

const std::vector<std::pair<std::string_view, GroupMembership>> membership_names = {
    {"automatic", GroupMembership::automatic},       {"member-of", GroupMembership::member_of},
    {"group-member", GroupMembership::group_member}, {"posix", GroupMembership::posix},
    {"in-chain", GroupMembership::in_chain},
};
const std::vector<std::pair<std::string_view, DirectoryType>> type_names = {
    {"openldap", DirectoryType::openldap},
    {"active-directory", DirectoryType::active_directory},
    {"posix", DirectoryType::posix},
};
const std::vector<std::pair<std::string_view, DirectoryTls>> tls_names = {
    {"start-tls", DirectoryTls::start_tls},
    {"ldaps", DirectoryTls::ldaps},
    {"plain", DirectoryTls::plain},
};

} // namespace

std::string_view to_string(GroupMembership membership) {
    for (const auto& [name, value] : membership_names)
        if (value == membership)
            return name;
    return "?";
}

std::string_view to_string(DirectoryType type) {
    for (const auto& [name, value] : type_names)
        if (value == type)
            return name;
    return "?";
}

std::optional<DirectoryType> directory_type_named(std::string_view name) {
    for (const auto& [known, value] : type_names)
        if (known == name)
            return value;
    return std::nullopt;
}

std::string_view to_string(DirectoryTls tls) {
    for (const auto& [name, value] : tls_names)
        if (value == tls)
            return name;
    return "?";
}

Status parse_listen(std::string_view text, std::string& host, int& port) {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
        return fail(Errc::invalid_argument,
                    "listen address '" + std::string(text) + "': expected HOST:PORT");
    std::string_view h = text.substr(0, colon);
    std::string_view p = text.substr(colon + 1);
    if (h.size() >= 2 && h.front() == '[' && h.back() == ']')
        h = h.substr(1, h.size() - 2);
    int value = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
    if (ec != std::errc() || end != p.data() + p.size() || value < 0 || value > 65535)
        return fail(Errc::invalid_argument,
                    "listen address '" + std::string(text) + "': port must be 0-65535");
    host = std::string(h);
    port = value;
    return {};
}

Result<ServerConfig> parse_config(std::string_view text) {
    Json doc = HL_TRY_CTX(parse_json(text, 1 << 20), "configuration");
    ServerConfig c;
    std::string listen;
    std::string level;
    DirectoryConfig& d = c.directory;
    // The type's defaults first, so that the keys below override them whatever their order.
    if (doc.is_object() && doc.contains("directory") && doc["directory"].is_object() &&
        doc["directory"].contains("type") && doc["directory"]["type"].is_string())
        if (auto type = directory_type_named(doc["directory"]["type"].get<std::string>()))
            apply_directory_profile(d, *type);
    std::map<std::string, Handler> directory = {
        {"type", choice(d.type, type_names)},
        {"uri", string_value(d.uri)},
        {"tls", choice(d.tls, tls_names)},
        {"ca_file", string_value(d.ca_file)},
        {"base_dn", string_value(d.base_dn)},
        {"bind_dn", string_value(d.bind_dn)},
        {"bind_password_file", path_value(c.directory_password_file)},
        {"user_base", string_value(d.user_base)},
        {"group_base", string_value(d.group_base)},
        {"user_attribute", string_value(d.user_attribute)},
        {"user_object_class", string_value(d.user_object_class)},
        {"user_filter", string_value(d.user_filter)},
        {"group_attribute", string_value(d.group_attribute)},
        {"group_object_class", string_value(d.group_object_class)},
        {"netbios_domain", string_value(d.netbios_domain)},
        {"membership", choice(d.membership, membership_names)},
        {"timeout_seconds", number(d.timeout_seconds, 1, 120)},
    };
    std::map<std::string, Handler> limits = {
        {"max_connections", number(c.max_connections, 1, 1000000)},
        {"max_active_requests", number(c.max_active_requests, 1, 100000)},
        {"header_timeout_seconds", number(c.header_timeout_seconds, 1, 600)},
        {"minimum_request_rate", number(c.minimum_request_rate, 0, 1ll << 30)},
        {"keep_alive_seconds", number(c.keep_alive_seconds, 1, 600)},
        {"max_upload_object", number(c.max_upload_object, 1 << 20, 1ll << 32)},
        {"session_seconds", number(c.session_seconds, 60, 30 * 86400)},
        {"membership_cache_seconds", number(c.membership_cache_seconds, 0, 86400)},
        {"min_policy_seconds", number(c.min_policy_seconds, 60, 366 * 86400)},
    };
    std::map<std::string, Handler> top = {
        {"listen", string_value(listen)},
        {"data_dir", path_value(c.data_dir)},
        {"tls_certificate", path_value(c.tls_certificate)},
        {"tls_key", path_value(c.tls_key)},
        {"plain_http", flag(c.plain_http)},
        {"admin_group", string_value(c.admin_group)},
        {"kerberos_keytab", path_value(c.kerberos_keytab)},
        {"kerberos_realm", string_value(c.kerberos_realm)},
        {"log_level", string_value(level)},
        {"directory",
         [&](const Json& v, const std::string& path) {
             return read_object(v, path, directory);
         }},
        {"limits",
         [&](const Json& v, const std::string& path) {
             return read_object(v, path, limits);
         }},
    };
    HL_TRY_CTX(read_object(doc, "", top), "configuration");
    if (!listen.empty())
        HL_TRY_CTX(parse_listen(listen, c.listen_host, c.listen_port), "configuration");
    if (!level.empty()) {
        const std::map<std::string, LogLevel> levels = {{"debug", LogLevel::debug},
                                                        {"info", LogLevel::info},
                                                        {"warn", LogLevel::warn},
                                                        {"error", LogLevel::error}};
        auto it = levels.find(level);
        if (it == levels.end())
            return fail(Errc::invalid_argument,
                        "configuration: log_level: expected debug, info, warn or error");
        c.log_level = it->second;
    }
    return c;
}

Result<ServerConfig> load_config(const fs::path& path) {
    std::string text = HL_TRY(read_text_file(path));
    auto config = parse_config(text);
    if (!config)
        return std::unexpected(std::move(config).error().context(path.string()));
    return config;
}

Json config_to_json(const ServerConfig& c) {
    const DirectoryConfig& d = c.directory;
    bool v6 = c.listen_host.find(':') != std::string::npos;
    std::string listen =
        (v6 ? "[" + c.listen_host + "]" : c.listen_host) + ":" + std::to_string(c.listen_port);
    const std::map<LogLevel, std::string> levels = {{LogLevel::debug, "debug"},
                                                    {LogLevel::info, "info"},
                                                    {LogLevel::warn, "warn"},
                                                    {LogLevel::error, "error"}};
    Json directory = {
        {"type", std::string(to_string(d.type))},
        {"uri", d.uri},
        {"tls", std::string(to_string(d.tls))},
        {"ca_file", d.ca_file},
        {"base_dn", d.base_dn},
        {"bind_dn", d.bind_dn},
        {"user_base", d.user_base},
        {"group_base", d.group_base},
        {"user_attribute", d.user_attribute},
        {"user_object_class", d.user_object_class},
        {"user_filter", d.user_filter},
        {"group_attribute", d.group_attribute},
        {"group_object_class", d.group_object_class},
        {"membership", std::string(to_string(d.membership))},
        {"timeout_seconds", d.timeout_seconds},
    };
    if (!d.netbios_domain.empty())
        directory["netbios_domain"] = d.netbios_domain;
    if (!c.directory_password_file.empty())
        directory["bind_password_file"] = c.directory_password_file.string();
    Json doc = {
        {"listen", listen},
        {"data_dir", c.data_dir.string()},
        {"plain_http", c.plain_http},
        {"admin_group", c.admin_group},
        {"log_level", levels.at(c.log_level)},
        {"directory", directory},
        {"limits",
         {{"max_connections", c.max_connections},
          {"max_active_requests", c.max_active_requests},
          {"header_timeout_seconds", c.header_timeout_seconds},
          {"minimum_request_rate", c.minimum_request_rate},
          {"keep_alive_seconds", c.keep_alive_seconds},
          {"max_upload_object", c.max_upload_object},
          {"session_seconds", c.session_seconds},
          {"membership_cache_seconds", c.membership_cache_seconds},
          {"min_policy_seconds", c.min_policy_seconds}}},
    };
    if (!c.kerberos_keytab.empty())
        doc["kerberos_keytab"] = c.kerberos_keytab.string();
    if (!c.kerberos_realm.empty())
        doc["kerberos_realm"] = c.kerberos_realm;
    if (!c.tls_certificate.empty())
        doc["tls_certificate"] = c.tls_certificate.string();
    if (!c.tls_key.empty())
        doc["tls_key"] = c.tls_key.string();
    return doc;
}

Status finish_config(ServerConfig& config) {
    if (config.directory.uri.empty())
        return fail(Errc::invalid_argument,
                    "no directory: set directory.uri (or --ldap-uri), e.g. ldap://dc.example.org; "
                    "a new server is set up with 'heirloom-server init'");
    if (!config.plain_http && (config.tls_certificate.empty() || config.tls_key.empty()))
        return fail(Errc::invalid_argument,
                    "no TLS certificate and key: set tls_certificate and tls_key (or --tls-cert "
                    "and --tls-key), or serve plain HTTP with --plain-http on a trusted network");
    if (config.directory.base_dn.empty())
        return fail(Errc::invalid_argument,
                    "no directory base DN: set directory.base_dn (or --ldap-base-dn)");
    if (config.admin_group.empty())
        return fail(Errc::invalid_argument, "admin_group must name a directory group");
    if (!config.directory.bind_dn.empty()) {
        if (config.directory_password_file.empty())
            return fail(Errc::invalid_argument,
                        "directory.bind_dn is set but directory.bind_password_file is not");
        std::string password = HL_TRY_CTX(read_text_file(config.directory_password_file, 4096),
                                          "directory password file");
        while (!password.empty() && (password.back() == '\n' || password.back() == '\r'))
            password.pop_back();
        if (password.empty())
            return fail(Errc::invalid_argument, "directory password file " +
                                                    config.directory_password_file.string() +
                                                    " is empty");
        config.directory.bind_password = std::move(password);
    }
    return {};
}

} // namespace heirloom::server
