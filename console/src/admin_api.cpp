#include "admin_api.hpp"

#include "heirloom/policy/json.hpp"

#include <fmt/format.h>

namespace heirloom::console {
namespace {

Result<std::unique_ptr<client::ApiClient>> open(const Connection& c) {
    auto api = HL_TRY(client::ApiClient::open(c.server));
    api->set_token(c.token);
    return api;
}

// Runs read on a server answer, turning a wrong shape into an error instead of an exception.
template <class T, class Read>
Result<T> read_answer(const Json& doc, std::string_view what, Read read) {
    try {
        return read(doc);
    } catch (const Json::exception&) {
        return fail(Errc::corrupt, "the server's answer for " + std::string(what) +
                                       " is malformed; is the console as new as the server?");
    }
}

std::string string_or_empty(const Json& doc, const char* key) {
    auto it = doc.find(key);
    return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The JSON form of one item, as the policy library writes it inside a set.
template <class Item>
Json item_json(std::vector<Item> policy::PolicySet::*member, const Item& item, const char* key) {
    policy::PolicySet set;
    (set.*member).push_back(item);
    return policy::to_json(set)[key][0];
}

Status put_item(const Connection& c, const std::string& path, const Json& body) {
    auto api = HL_TRY(open(c));
    HL_TRY(api->put(path, body));
    return {};
}

Status delete_at(const Connection& c, const std::string& path) {
    auto api = HL_TRY(open(c));
    HL_TRY(api->del(path));
    return {};
}

std::string query(const EventFilter& f) {
    std::string q = "limit=" + std::to_string(f.limit);
    if (f.since > 0)
        q += "&since=" + std::to_string(f.since);
    if (f.until > 0)
        q += "&until=" + std::to_string(f.until);
    if (!f.type.empty())
        q += "&type=" + client::url_encode(f.type);
    if (!f.user.empty())
        q += "&user=" + client::url_encode(f.user);
    return q;
}

} // namespace

std::string login_failure_message(const Error& error, const std::string& url) {
    const std::string& m = error.message;
    if (error.code == Errc::crypto)
        return "Wrong user name or password.";
    if (m.find("not trusted") != std::string::npos ||
        m.find("SSL server verification") != std::string::npos)
        return "The certificate of " + url +
               " is not trusted. Choose the CA file that signed it (or add it to the system's "
               "trusted certificates) and try again.";
    if (m.find("cannot connect") != std::string::npos)
        return "The server at " + url +
               " cannot be reached. Check the address and that the server is running.";
    if (error.code == Errc::network && m.find("HTTP 5") == std::string::npos &&
        m.find("directory") == std::string::npos)
        return "The connection to " + url + " failed: " + m;
    if (error.code == Errc::network)
        return "The server cannot ask the directory right now; try again later. (" + m + ")";
    return m;
}

Result<Connection> log_in(const client::ServerOptions& server, const std::string& user,
                          const std::string& password) {
    if (user.empty() || password.empty())
        return fail(Errc::invalid_argument, "Enter your user name and password.");
    auto api = client::ApiClient::open(server);
    if (!api)
        return fail(Errc::invalid_argument, api.error().message);
    auto answer = (*api)->post("/v1/login", {{"user", user}, {"password", password}});
    if (!answer)
        return fail(answer.error().code, login_failure_message(answer.error(), server.url));
    return read_answer<Connection>(
        *answer, "the login", [&](const Json& doc) -> Result<Connection> {
            Connection c{server, doc.at("user").get<std::string>(),
                         string_or_empty(doc, "display_name"), doc.at("token").get<std::string>(),
                         doc.at("expires_at").get<std::int64_t>()};
            if (!doc.at("admin").get<bool>()) {
                (*api)->set_token(c.token);
                (void)(*api)->post("/v1/logout", Json::object());
                return fail(Errc::denied, c.user +
                                              " is not an administrator of this server (not in its "
                                              "admin group). Log in as an administrator.");
            }
            return c;
        });
}

Status log_out(const Connection& c) {
    auto api = HL_TRY(open(c));
    HL_TRY(api->post("/v1/logout", Json::object()));
    return {};
}

Result<PolicyRevision> fetch_policy(const Connection& c) {
    auto api = HL_TRY(open(c));
    Json doc = HL_TRY(api->get("/v1/admin/policy"));
    if (!doc.is_object() || !doc.contains("policy") || !doc.contains("revision"))
        return fail(Errc::corrupt, "the server's policy answer is malformed");
    auto set = HL_TRY_CTX(policy::parse_policy_set(doc["policy"].dump()), "the server's policy");
    return PolicyRevision{doc["revision"].get<std::uint64_t>(), std::move(set)};
}

Status save_workspace(const Connection& c, const policy::Workspace& w) {
    HL_TRY(policy::validate_workspace(w, "workspace"));
    return put_item(c, "/v1/admin/workspaces/" + client::url_encode(w.id),
                    item_json(&policy::PolicySet::workspaces, w, "workspaces"));
}

Status save_app(const Connection& c, const policy::PublishedApp& app) {
    HL_TRY(policy::validate_app(app, "app"));
    return put_item(c, "/v1/admin/apps/" + client::url_encode(app.id),
                    item_json(&policy::PolicySet::apps, app, "apps"));
}

Status save_assignment(const Connection& c, const policy::Assignment& a) {
    HL_TRY(policy::validate_assignment(a, "assignment"));
    return put_item(c, "/v1/admin/assignments/" + client::url_encode(a.id),
                    item_json(&policy::PolicySet::assignments, a, "assignments"));
}

Status save_image_settings(const Connection& c, const policy::ImageRef& image) {
    HL_TRY(policy::validate_image(image, "image"));
    return put_item(c, "/v1/admin/image-settings/" + client::url_encode(image.name),
                    item_json(&policy::PolicySet::images, image, "images"));
}

Status delete_item(const Connection& c, Collection collection, const std::string& id) {
    const char* name = collection == Collection::workspaces ? "workspaces"
                       : collection == Collection::apps     ? "apps"
                                                            : "assignments";
    return delete_at(c, fmt::format("/v1/admin/{}/{}", name, client::url_encode(id)));
}

Result<std::vector<Image>> fetch_images(const Connection& c) {
    auto api = HL_TRY(open(c));
    Json doc = HL_TRY(api->get("/v1/admin/images"));
    return read_answer<std::vector<Image>>(doc, "images", [](const Json& d) {
        std::vector<Image> out;
        for (const auto& i : d.at("images")) {
            Image image{i.at("name").get<std::string>(),
                        i.at("created").get<std::int64_t>(),
                        i.at("latest").get<std::uint64_t>(),
                        {}};
            for (const auto& v : i.at("versions"))
                image.versions.push_back(
                    {v.at("version").get<std::uint64_t>(), v.at("created").get<std::int64_t>(),
                     v.at("virtual_size").get<std::uint64_t>(),
                     v.at("object_bytes").get<std::uint64_t>(), string_or_empty(v, "pushed_by")});
            out.push_back(std::move(image));
        }
        return Result<std::vector<Image>>(std::move(out));
    });
}

Result<std::vector<Endpoint>> fetch_endpoints(const Connection& c) {
    auto api = HL_TRY(open(c));
    Json doc = HL_TRY(api->get("/v1/admin/endpoints"));
    return read_answer<std::vector<Endpoint>>(doc, "endpoints", [](const Json& d) {
        std::vector<Endpoint> out;
        for (const auto& e : d.at("endpoints")) {
            Endpoint endpoint{e.at("id").get<std::string>(),
                              e.at("user").get<std::string>(),
                              e.at("hostname").get<std::string>(),
                              e.at("enrolled").get<std::int64_t>(),
                              e.at("last_contact").get<std::int64_t>(),
                              string_or_empty(e, "last_error"),
                              e.value("last_error_time", std::int64_t{0}),
                              e.at("revoked").get<bool>(),
                              {}};
            for (const auto& i : e.at("images"))
                endpoint.images.push_back(
                    {i.at("image").get<std::string>(), i.at("version").get<std::uint64_t>(),
                     i.at("state").get<std::string>(), i.at("updated").get<std::int64_t>()});
            out.push_back(std::move(endpoint));
        }
        return Result<std::vector<Endpoint>>(std::move(out));
    });
}

Status revoke_endpoint(const Connection& c, const std::string& id) {
    return delete_at(c, "/v1/admin/endpoints/" + client::url_encode(id));
}

Result<std::vector<DirectoryEntry>> search_directory(const Connection& c, PrincipalSearch kind,
                                                     const std::string& text) {
    const char* what = kind == PrincipalSearch::users ? "users" : "groups";
    auto api = HL_TRY(open(c));
    Json doc = HL_TRY(api->get(
        fmt::format("/v1/admin/directory/{}?q={}&limit=200", what, client::url_encode(text))));
    return read_answer<std::vector<DirectoryEntry>>(doc, what, [&](const Json& d) {
        std::vector<DirectoryEntry> out;
        for (const auto& e : d.at(what))
            out.push_back({e.at("name").get<std::string>(), string_or_empty(e, "dn"),
                           string_or_empty(e, "display_name")});
        return Result<std::vector<DirectoryEntry>>(std::move(out));
    });
}

Result<EffectiveView> fetch_effective(const Connection& c, const std::string& user) {
    auto api = HL_TRY(open(c));
    Json doc = HL_TRY(api->get("/v1/admin/effective/" + client::url_encode(user)));
    return read_answer<EffectiveView>(doc, "the effective policy", [&](const Json& d) {
        EffectiveView view{user, d.at("groups").get<std::vector<std::string>>(), {}};
        for (const auto& w : d.at("workspaces")) {
            std::string name = w.at("workspace").at("id").get<std::string>();
            const Json& why = w.at("decided_by");
            for (const char* control :
                 {"clipboard", "file_transfer", "printing", "removable_media"})
                view.controls.push_back({name, control,
                                         w.at("controls").at(control).get<std::string>(),
                                         why.at(control).get<std::string>()});
            const Json& lease = w.at("lease");
            auto expires = lease.at("expires_at").get<std::int64_t>();
            view.controls.push_back({name, "expires_at",
                                     expires == 0 ? "never" : std::to_string(expires),
                                     why.at("expires_at").get<std::string>()});
            view.controls.push_back(
                {name, "offline_limit",
                 std::to_string(lease.at("offline_limit").get<std::int64_t>() / 3600) + " h",
                 why.at("offline_limit").get<std::string>()});
            view.controls.push_back({name, "on_expiry", lease.at("on_expiry").get<std::string>(),
                                     why.at("on_expiry").get<std::string>()});
        }
        return Result<EffectiveView>(std::move(view));
    });
}

Result<std::vector<Event>> fetch_events(const Connection& c, const EventFilter& filter) {
    auto api = HL_TRY(open(c));
    Json doc = HL_TRY(api->get("/v1/admin/events?" + query(filter)));
    return read_answer<std::vector<Event>>(doc, "events", [](const Json& d) {
        std::vector<Event> out;
        for (const auto& e : d.at("events"))
            out.push_back({e.at("id").get<std::int64_t>(), e.at("time").get<std::int64_t>(),
                           string_or_empty(e, "user"), string_or_empty(e, "hostname"),
                           string_or_empty(e, "endpoint"), string_or_empty(e, "type"),
                           string_or_empty(e, "workspace"), string_or_empty(e, "image"),
                           e.value("version", std::uint64_t{0}), string_or_empty(e, "message")});
        return Result<std::vector<Event>>(std::move(out));
    });
}

Result<std::string> fetch_events_csv(const Connection& c, const EventFilter& filter) {
    auto api = HL_TRY(open(c));
    return api->get_text("/v1/admin/events?" + query(filter) + "&format=csv");
}

const std::vector<std::string>& event_types() {
    static const std::vector<std::string> types = {
        "sync-started",   "sync-done",     "sync-failed",   "launch", "launch-failed", "exit",
        "policy-refused", "lease-warning", "lease-expired", "wiped",  "error"};
    return types;
}

} // namespace heirloom::console
