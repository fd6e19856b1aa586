#include "heirloom/server/requests.hpp"

#include "heirloom/common/crypto.hpp"
#include "heirloom/common/events.hpp"
#include "heirloom/common/json.hpp"
#include "heirloom/policy/json.hpp"
#include "heirloom/policy/model.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>

namespace heirloom::server {
namespace {

Result<Json> parse_body(std::string_view body) {
    if (body.size() > max_json_body)
        return fail(Errc::invalid_argument, "request body is larger than 1 MiB");
    Json doc = HL_TRY_CTX(parse_json(body, max_json_body), "request body");
    if (!doc.is_object())
        return fail(Errc::invalid_argument, "request body: expected a JSON object");
    return doc;
}

Status only_keys(const Json& doc, std::string_view path,
                 std::initializer_list<std::string_view> allowed) {
    for (const auto& [key, value] : doc.items())
        if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
            return fail(Errc::invalid_argument, std::string(path) + (path.empty() ? "" : ".") +
                                                    key.substr(0, 64) + ": unknown field");
    return {};
}

Result<std::string> string_field(const Json& doc, std::string_view key, std::size_t max,
                                 bool required = true) {
    auto it = doc.find(key);
    if (it == doc.end()) {
        if (required)
            return fail(Errc::invalid_argument, std::string(key) + ": missing");
        return std::string();
    }
    if (!it->is_string())
        return fail(Errc::invalid_argument, std::string(key) + ": expected a string");
    const auto& value = it->get_ref<const std::string&>();
    if (value.size() > max)
        return fail(Errc::invalid_argument,
                    std::string(key) + ": longer than " + std::to_string(max) + " bytes");
    return value;
}

Result<Credentials> parse_credentials(std::string_view body, bool enrol) {
    Json doc = HL_TRY(parse_body(body));
    if (enrol)
        HL_TRY(only_keys(doc, "", {"user", "password", "hostname"}));
    else
        HL_TRY(only_keys(doc, "", {"user", "password"}));
    Credentials c;
    c.user = HL_TRY(string_field(doc, "user", policy::limits::name_length));
    HL_TRY(policy::check_name(c.user, "user"));
    c.password = HL_TRY(string_field(doc, "password", 1024));
    if (auto it = doc.find("password"); it != doc.end() && it->is_string()) {
        auto& stored = it->get_ref<std::string&>();
        crypto::secure_wipe({reinterpret_cast<std::uint8_t*>(stored.data()), stored.size()});
    }
    if (c.password.empty())
        return fail(Errc::invalid_argument, "password: empty passwords are refused");
    if (enrol) {
        c.hostname = HL_TRY(string_field(doc, "hostname", policy::limits::host_length));
        HL_TRY(policy::check_name(c.hostname, "hostname"));
    }
    return c;
}

} // namespace

Credentials::~Credentials() {
    crypto::secure_wipe({reinterpret_cast<std::uint8_t*>(password.data()), password.size()});
}

Result<Credentials> parse_login(std::string_view body) {
    return parse_credentials(body, false);
}

Result<std::string> parse_negotiated(std::string_view body, bool enrol) {
    Json doc = HL_TRY(parse_body(body.empty() ? std::string_view("{}") : body));
    if (!enrol) {
        HL_TRY(only_keys(doc, "", {}));
        return std::string();
    }
    HL_TRY(only_keys(doc, "", {"hostname"}));
    std::string hostname = HL_TRY(string_field(doc, "hostname", policy::limits::host_length));
    HL_TRY(policy::check_name(hostname, "hostname"));
    return hostname;
}

Result<Credentials> parse_enrol(std::string_view body) {
    return parse_credentials(body, true);
}

bool known_event_type(std::string_view type) {
    return is_agent_event_type(type);
}

Result<std::vector<Event>> parse_events(std::string_view body) {
    Json doc = HL_TRY(parse_body(body));
    HL_TRY(only_keys(doc, "", {"events"}));
    auto it = doc.find("events");
    if (it == doc.end() || !it->is_array())
        return fail(Errc::invalid_argument, "events: expected an array");
    if (it->size() > max_events_per_report)
        return fail(Errc::invalid_argument, "events: more than " +
                                                std::to_string(max_events_per_report) +
                                                " in one report");
    std::vector<Event> out;
    for (std::size_t i = 0; i < it->size(); ++i) {
        const Json& e = (*it)[i];
        std::string path = "events[" + std::to_string(i) + "]";
        if (!e.is_object())
            return fail(Errc::invalid_argument, path + ": expected an object");
        HL_TRY_CTX(only_keys(e, "", {"type", "time", "workspace", "image", "version", "message"}),
                   path);
        Event ev;
        ev.type = HL_TRY_CTX(string_field(e, "type", 32), path);
        if (!known_event_type(ev.type))
            return fail(Errc::invalid_argument, path + ".type: unknown event type");
        auto time = e.find("time");
        if (time == e.end() || !time->is_number_integer() || time->get<std::int64_t>() < 0 ||
            time->get<std::int64_t>() > policy::limits::max_time)
            return fail(Errc::invalid_argument, path + ".time: expected unix seconds");
        ev.time = time->get<std::int64_t>();
        ev.workspace = HL_TRY_CTX(string_field(e, "workspace", 64, false), path);
        if (!ev.workspace.empty())
            HL_TRY(policy::check_id(ev.workspace, path + ".workspace"));
        ev.image = HL_TRY_CTX(string_field(e, "image", 64, false), path);
        if (!ev.image.empty())
            HL_TRY(policy::check_id(ev.image, path + ".image"));
        if (auto v = e.find("version"); v != e.end()) {
            if (!v->is_number_unsigned() ||
                v->get<std::uint64_t>() > std::uint64_t(std::numeric_limits<std::int64_t>::max()))
                return fail(Errc::invalid_argument, path + ".version: expected a version number");
            ev.version = v->get<std::uint64_t>();
        }
        ev.message = HL_TRY_CTX(string_field(e, "message", max_event_message, false), path);
        if (!ev.message.empty())
            HL_TRY(policy::check_name(ev.message.substr(0, policy::limits::name_length),
                                      path + ".message"));
        out.push_back(std::move(ev));
    }
    return out;
}

Result<std::vector<std::string>> parse_object_list(std::string_view body, std::size_t max_objects) {
    Json doc = HL_TRY(parse_body(body));
    HL_TRY(only_keys(doc, "", {"objects"}));
    auto it = doc.find("objects");
    if (it == doc.end() || !it->is_array())
        return fail(Errc::invalid_argument, "objects: expected an array");
    if (it->size() > max_objects)
        return fail(Errc::invalid_argument,
                    "objects: more than " + std::to_string(max_objects) + " in one request");
    std::vector<std::string> out;
    for (const auto& v : *it) {
        if (!v.is_string() || v.get_ref<const std::string&>().size() > 200)
            return fail(Errc::invalid_argument, "objects: expected object paths");
        out.push_back(v.get<std::string>());
    }
    return out;
}

Result<std::string> parse_image_create(std::string_view body) {
    Json doc = HL_TRY(parse_body(body));
    HL_TRY(only_keys(doc, "", {"name"}));
    std::string name = HL_TRY(string_field(doc, "name", 64));
    HL_TRY(policy::check_id(name, "name"));
    return name;
}

Result<PolicyUpdate> parse_policy_update(std::string_view body) {
    if (body.size() > policy::max_policy_document)
        return fail(Errc::invalid_argument, "policy: larger than 8 MiB");
    Json doc = HL_TRY_CTX(parse_json(body, policy::max_policy_document), "request body");
    if (!doc.is_object())
        return fail(Errc::invalid_argument, "request body: expected a JSON object");
    HL_TRY(only_keys(doc, "", {"revision", "policy"}));
    PolicyUpdate update;
    if (auto r = doc.find("revision"); r != doc.end()) {
        if (!r->is_number_unsigned())
            return fail(Errc::invalid_argument, "revision: expected a revision number");
        update.revision = r->get<std::uint64_t>();
    }
    auto p = doc.find("policy");
    if (p == doc.end())
        return fail(Errc::invalid_argument, "policy: missing");
    update.policy_json = p->dump();
    return update;
}

Result<BearerToken> parse_bearer(std::string_view header) {
    constexpr std::string_view scheme = "Bearer ";
    if (header.empty())
        return fail(Errc::crypto, "log in first: this needs an Authorization: Bearer token");
    if (!header.starts_with(scheme) || header.size() != scheme.size() + 66)
        return fail(Errc::crypto, "malformed Authorization header: expected Bearer and a token");
    std::string_view token = header.substr(scheme.size());
    BearerToken out{TokenKind::session, std::string(token)};
    if (token.starts_with("a."))
        out.kind = TokenKind::agent;
    else if (!token.starts_with("s."))
        return fail(Errc::crypto, "malformed token");
    for (char c : token.substr(2))
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return fail(Errc::crypto, "malformed token");
    return out;
}

Result<std::uint64_t> parse_version_number(std::string_view text) {
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value == 0 ||
        text.front() == '0' || value > std::uint64_t(std::numeric_limits<std::int64_t>::max()))
        return fail(Errc::invalid_argument, "expected a version number from 1");
    return value;
}

Result<EventFilter> parse_event_filter(const std::multimap<std::string, std::string>& params) {
    EventFilter f;
    for (const auto& [key, value] : params) {
        auto number = [&](std::int64_t& out, std::int64_t max) -> Status {
            std::int64_t v = 0;
            auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
            if (value.empty() || ec != std::errc() || end != value.data() + value.size() || v < 0 ||
                v > max)
                return fail(Errc::invalid_argument,
                            key + ": expected a whole number up to " + std::to_string(max));
            out = v;
            return {};
        };
        if (key == "since")
            HL_TRY(number(f.since, policy::limits::max_time));
        else if (key == "until")
            HL_TRY(number(f.until, policy::limits::max_time));
        else if (key == "limit") {
            std::int64_t limit = 0;
            HL_TRY(number(limit, 100000));
            f.limit = static_cast<std::size_t>(limit);
        } else if (key == "type") {
            if (!known_event_type(value))
                return fail(Errc::invalid_argument, "type: unknown event type");
            f.type = value;
        } else if (key == "user") {
            HL_TRY(policy::check_name(value, "user"));
            f.user = value;
        } else if (key == "agent") {
            HL_TRY(policy::check_id(value, "agent"));
            f.agent = value;
        } else if (key != "format")
            return fail(Errc::invalid_argument, key.substr(0, 64) + ": unknown parameter");
    }
    return f;
}

} // namespace heirloom::server
