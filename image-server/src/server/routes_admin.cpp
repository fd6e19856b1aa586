// Admin routes for the policy (the whole set and its items), the directory, effective
// policies, endpoints and the event report.

#include "heirloom/policy/evaluate.hpp"
#include "heirloom/policy/json.hpp"
#include "heirloom/policy/signed.hpp"
#include "heirloom/server/service.hpp"

#include <fmt/format.h>

namespace heirloom::server {
namespace {

// The policy set's JSON array behind a collection in the URL, and the key that names items.
struct Collection {
    const char* array;
    const char* key;
};

Collection collection(std::string_view name) {
    if (name == "workspaces")
        return {"workspaces", "id"};
    if (name == "apps")
        return {"apps", "id"};
    if (name == "assignments")
        return {"assignments", "id"};
    return {"images", "name"}; // image-settings
}

// One CSV field (RFC 4180). Fields that a spreadsheet would run as a formula get a leading
// apostrophe: event messages come from endpoints and are not trusted.
std::string csv_field(std::string_view value) {
    std::string v(value);
    if (!v.empty() && (v[0] == '=' || v[0] == '+' || v[0] == '-' || v[0] == '@'))
        v.insert(0, "'");
    if (v.find_first_of(",\"\r\n") == std::string::npos)
        return v;
    std::string out = "\"";
    for (char c : v) {
        if (c == '"')
            out += '"';
        out += c;
    }
    return out + "\"";
}

Json endpoint_json(const Endpoint& e) {
    Json images = Json::array();
    for (const auto& i : e.images)
        images.push_back({{"image", i.image},
                          {"version", i.version},
                          {"state", i.state},
                          {"updated", i.updated}});
    return {{"id", e.agent.id},
            {"user", e.agent.user},
            {"hostname", e.agent.hostname},
            {"enrolled", e.agent.enrolled},
            {"last_contact", e.agent.last_contact},
            {"last_error", e.agent.last_error},
            {"last_error_time", e.agent.last_error_time},
            {"revoked", e.agent.revoked},
            {"images", images}};
}

} // namespace

void Service::admin_policy_get(const Request& request, Response& response) {
    auto a = admin(request);
    if (!a)
        return send_error(response, a.error());
    auto revision = ctx_.metadata.policy();
    if (!revision)
        return send_error(response, revision.error());
    send_json(response, {{"revision", revision->revision},
                         {"created", revision->created},
                         {"author", revision->author},
                         {"policy", policy::to_json(revision->set)}});
}

void Service::admin_policy_put(const Request& request, Response& response) {
    auto a = admin(request);
    if (!a)
        return send_error(response, a.error());
    auto update = parse_policy_update(request.body);
    if (!update)
        return send_error(response, update.error());
    auto set = policy::parse_policy_set(update->policy_json);
    if (!set)
        return send_error(response, set.error());
    std::lock_guard edit(policy_edit_);
    auto saved = ctx_.metadata.save_policy(*set, a->user, ctx_.now(), update->revision);
    if (!saved)
        return send_error(response, saved.error());
    policy_changed();
    ctx_.log.info("policy revision {} saved by {}", *saved, a->user);
    send_json(response, {{"revision", *saved}});
}

void Service::admin_item_list(const Request& request, Response& response) {
    auto a = admin(request);
    if (!a)
        return send_error(response, a.error());
    auto revision = ctx_.metadata.policy();
    if (!revision)
        return send_error(response, revision.error());
    Collection c = collection(request.matches[1].str());
    Json doc = policy::to_json(revision->set);
    send_json(response, {{"revision", revision->revision}, {"items", doc[c.array]}});
}

void Service::admin_item_put(const Request& request, Response& response) {
    auto a = admin(request);
    if (!a)
        return send_error(response, a.error());
    Collection c = collection(request.matches[1].str());
    std::string id = request.matches[2];
    auto item = parse_json(request.body, max_json_body);
    if (!item)
        return send_error(response, item.error().context("request body"));
    if (!item->is_object())
        return send_error(response,
                          Error{Errc::invalid_argument, "request body: expected a JSON object"});
    auto named = item->find(c.key);
    if (named == item->end())
        (*item)[c.key] = id;
    else if (!named->is_string() || named->get<std::string>() != id)
        return send_error(response,
                          Error{Errc::invalid_argument,
                                std::string(c.key) + ": must match the URL (" + id + ")"});
    bool created = true;
    auto saved = edit_policy(*a, [&](Json& doc) -> Status {
        for (auto& existing : doc[c.array])
            if (existing[c.key] == id) {
                existing = *item;
                created = false;
                return {};
            }
        doc[c.array].push_back(*item);
        return {};
    });
    if (!saved)
        return send_error(response, saved.error());
    send_json(response, {{"revision", *saved}, {"created", created}}, created ? 201 : 200);
}

void Service::admin_item_delete(const Request& request, Response& response) {
    auto a = admin(request);
    if (!a)
        return send_error(response, a.error());
    Collection c = collection(request.matches[1].str());
    std::string id = request.matches[2];
    auto saved = edit_policy(*a, [&](Json& doc) -> Status {
        auto& list = doc[c.array];
        for (auto it = list.begin(); it != list.end(); ++it)
            if ((*it)[c.key] == id) {
                list.erase(it);
                return {};
            }
        return fail(Errc::not_found, "no " + request.matches[1].str() + " item " + id);
    });
    if (!saved) {
        Error e = saved.error();
        if (e.code == Errc::invalid_argument)
            e = Error{Errc::conflict, "still in use: " + e.message};
        return send_error(response, e);
    }
    send_json(response, {{"revision", *saved}});
}

void Service::admin_directory(const Request& request, Response& response) {
    auto a = admin(request);
    if (!a)
        return send_error(response, a.error());
    std::string text = request.get_param_value("q");
    if (text.size() > 256)
        return send_error(response, Error{Errc::invalid_argument, "q: longer than 256 bytes"});
    std::size_t limit = 200;
    if (request.has_param("limit")) {
        auto n = parse_version_number(request.get_param_value("limit"));
        if (!n || *n > 1000)
            return send_error(response, Error{Errc::invalid_argument, "limit: 1 to 1000"});
        limit = *n;
    }
    bool users = request.matches[1] == "users";
    auto found = users ? ctx_.directory.search_users(text, limit)
                       : ctx_.directory.search_groups(text, limit);
    if (!found)
        return send_error(response, found.error());
    Json list = Json::array();
    for (const auto& e : *found)
        list.push_back({{"name", e.name}, {"dn", e.dn}, {"display_name", e.display_name}});
    send_json(response, {{users ? "users" : "groups", list}});
}

void Service::admin_effective(const Request& request, Response& response) {
    auto a = admin(request);
    if (!a)
        return send_error(response, a.error());
    auto user = ctx_.directory.lookup(request.matches[1].str());
    if (!user)
        return send_error(response, user.error());
    auto revision = current_policy();
    if (!revision)
        return send_error(response, revision.error());
    auto effective = evaluate_policy(ctx_.config.directory, (*revision)->set, user->name,
                                     user->groups, ctx_.now());
    Json doc = policy::to_json(effective);
    doc["groups"] = user->groups;
    doc["revision"] = (*revision)->revision;
    send_json(response, doc);
}

void Service::admin_endpoints(const Request& request, Response& response) {
    auto a = admin(request);
    if (!a)
        return send_error(response, a.error());
    auto endpoints = ctx_.metadata.endpoints();
    if (!endpoints)
        return send_error(response, endpoints.error());
    Json list = Json::array();
    for (const auto& e : *endpoints)
        list.push_back(endpoint_json(e));
    send_json(response, {{"endpoints", list}});
}

void Service::admin_endpoint_revoke(const Request& request, Response& response) {
    auto a = admin(request);
    if (!a)
        return send_error(response, a.error());
    std::string id = request.matches[1];
    if (auto done = ctx_.metadata.revoke_agent(id); !done)
        return send_error(response, done.error());
    {
        std::lock_guard lock(mutex_);
        std::erase_if(agents_, [&](const auto& entry) { return entry.second.first.id == id; });
    }
    ctx_.log.info("endpoint {} revoked by {}", id, a->user);
    response.status = 204;
}

void Service::admin_events(const Request& request, Response& response) {
    auto a = admin(request);
    if (!a)
        return send_error(response, a.error());
    std::multimap<std::string, std::string> params(request.params.begin(), request.params.end());
    auto filter = parse_event_filter(params);
    if (!filter)
        return send_error(response, filter.error());
    auto events = ctx_.metadata.events(*filter);
    if (!events)
        return send_error(response, events.error());
    std::string format = request.get_param_value("format");
    if (format == "csv") {
        std::string csv = "id,received,time,user,endpoint,hostname,type,workspace,image,version,"
                          "message\r\n";
        for (const auto& e : *events)
            csv +=
                fmt::format("{},{},{},{},{},{},{},{},{},{},{}\r\n", e.id, e.received, e.event.time,
                            csv_field(e.user), csv_field(e.agent), csv_field(e.hostname),
                            csv_field(e.event.type), csv_field(e.event.workspace),
                            csv_field(e.event.image), e.event.version, csv_field(e.event.message));
        response.set_header("Content-Disposition", "attachment; filename=\"heirloom-events.csv\"");
        response.set_content(csv, "text/csv; charset=utf-8");
        return;
    }
    if (!format.empty() && format != "json")
        return send_error(response, Error{Errc::invalid_argument, "format: json or csv"});
    Json list = Json::array();
    for (const auto& e : *events)
        list.push_back({{"id", e.id},
                        {"received", e.received},
                        {"time", e.event.time},
                        {"user", e.user},
                        {"endpoint", e.agent},
                        {"hostname", e.hostname},
                        {"type", e.event.type},
                        {"workspace", e.event.workspace},
                        {"image", e.event.image},
                        {"version", e.event.version},
                        {"message", e.event.message}});
    send_json(response, {{"events", list}});
}

} // namespace heirloom::server
