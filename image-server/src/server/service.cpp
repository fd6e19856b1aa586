#include "heirloom/server/service.hpp"

#include "heirloom/common/crypto.hpp"
#include "heirloom/policy/evaluate.hpp"
#include "heirloom/policy/json.hpp"

#include <charconv>

namespace heirloom::server {
namespace {

std::string token_hash(std::string_view token) {
    return to_hex(crypto::sha256(as_bytes(token)));
}

} // namespace

int http_status(Errc code) {
    switch (code) {
    case Errc::invalid_argument:
    case Errc::corrupt:
    case Errc::unsupported:
        return 400;
    case Errc::crypto:
        return 401;
    case Errc::denied:
        return 403;
    case Errc::not_found:
        return 404;
    case Errc::conflict:
        return 409;
    case Errc::network:
        return 503;
    default:
        return 500;
    }
}

Service::Service(ServiceContext context) : ctx_(std::move(context)) {}

void Service::send_json(Response& response, const Json& body, int status) const {
    response.status = status;
    response.set_content(body.dump(-1, ' ', false, Json::error_handler_t::replace),
                         "application/json");
}

void Service::send_error(Response& response, const Error& error) const {
    int status = http_status(error.code);
    if (status == 500)
        ctx_.log.error("request failed: {}", error.message);
    send_json(response, {{"error", error.message}}, status);
}

Result<std::shared_ptr<const PolicyRevision>> Service::current_policy() {
    {
        std::lock_guard lock(mutex_);
        if (policy_)
            return policy_;
    }
    auto loaded = std::make_shared<const PolicyRevision>(HL_TRY(ctx_.metadata.policy()));
    std::lock_guard lock(mutex_);
    if (!policy_ || policy_->revision < loaded->revision)
        policy_ = loaded;
    return policy_;
}

void Service::policy_changed() {
    std::lock_guard lock(mutex_);
    policy_.reset();
}

policy::EffectivePolicy evaluate_policy(const DirectoryConfig& directory,
                                        const policy::PolicySet& set, std::string_view user,
                                        std::span<const std::string> groups, std::int64_t now) {
    if (directory.type != DirectoryType::active_directory)
        return policy::evaluate(set, user, groups, now);
    const auto lower = [](std::string_view text) {
        std::string out(text);
        for (char& c : out)
            if (c >= 'A' && c <= 'Z')
                c = static_cast<char>(c - 'A' + 'a');
        return out;
    };
    policy::PolicySet folded = set;
    for (auto& assignment : folded.assignments)
        assignment.principal.name = lower(assignment.principal.name);
    std::vector<std::string> folded_groups;
    for (const auto& group : groups)
        folded_groups.push_back(lower(group));
    policy::EffectivePolicy effective = policy::evaluate(folded, lower(user), folded_groups, now);
    effective.user = std::string(user);
    return effective;
}

Result<DirectoryUser> Service::membership(std::string_view user) {
    std::int64_t now = ctx_.now();
    {
        std::lock_guard lock(mutex_);
        auto it = memberships_.find(std::string(user));
        if (it != memberships_.end() &&
            now - it->second.fetched < ctx_.config.membership_cache_seconds)
            return it->second.user;
    }
    auto found = ctx_.directory.lookup(user);
    if (!found) {
        // Fail closed: forget what we knew, so a directory that is down grants nothing.
        std::lock_guard lock(mutex_);
        memberships_.erase(std::string(user));
        return std::unexpected(std::move(found).error());
    }
    std::lock_guard lock(mutex_);
    memberships_[std::string(user)] = {*found, now};
    return *found;
}

Result<Caller> Service::caller(const Request& request) {
    auto bearer = HL_TRY(parse_bearer(request.get_header_value("Authorization")));
    std::string hash = token_hash(bearer.token);
    std::int64_t now = ctx_.now();
    if (bearer.kind == TokenKind::session) {
        {
            std::lock_guard lock(mutex_);
            auto it = sessions_.find(hash);
            if (it != sessions_.end() && it->second.expires > now)
                return it->second.caller;
        }
        // Not seen by this process yet: a login from before a restart.
        Bytes raw = HL_TRY(from_hex(hash));
        auto stored = HL_TRY(ctx_.metadata.session(raw));
        if (!stored || stored->expires <= now)
            return fail(Errc::crypto, "your login has expired or is unknown; log in again");
        Caller c{stored->user, stored->groups, stored->admin, std::nullopt};
        std::lock_guard lock(mutex_);
        sessions_[hash] = {c, stored->expires};
        return c;
    }
    std::optional<AgentRecord> agent;
    {
        std::lock_guard lock(mutex_);
        auto it = agents_.find(hash);
        if (it != agents_.end() && now - it->second.second < 60)
            agent = it->second.first;
    }
    if (!agent) {
        Bytes raw = HL_TRY(from_hex(hash));
        agent = HL_TRY(ctx_.metadata.agent_by_token(raw));
        if (!agent)
            return fail(Errc::crypto, "unknown agent token; enrol this endpoint again");
        std::lock_guard lock(mutex_);
        agents_[hash] = {*agent, now};
    }
    if (agent->revoked)
        return fail(Errc::crypto, "this endpoint was revoked by an administrator; enrol again");
    auto user = membership(agent->user);
    if (!user && user.error().code == Errc::not_found)
        return fail(Errc::crypto, "the user of this endpoint, " + agent->user +
                                      ", is no longer in the directory");
    if (!user)
        return std::unexpected(std::move(user).error());
    Caller c{user->name, user->groups, false, agent};
    c.admin = is_admin(c.groups);
    return c;
}

bool Service::is_admin(const std::vector<std::string>& groups) const {
    return std::any_of(groups.begin(), groups.end(), [&](const std::string& group) {
        return same_group_name(ctx_.config.directory, group, ctx_.config.admin_group);
    });
}

Result<Caller> Service::admin(const Request& request) {
    Caller c = HL_TRY(caller(request));
    if (c.agent || !c.admin)
        return fail(Errc::denied, "only members of " + ctx_.config.admin_group +
                                      " may use the admin API, with a login session");
    return c;
}

Result<std::set<std::string>> Service::assigned_images(const Caller& caller) {
    auto revision = HL_TRY(current_policy());
    std::int64_t now = ctx_.now();
    {
        // Evaluated once per user, policy revision and group list, for as long as groups are
        // trusted: every object request asks, and agents fetch thousands of them.
        std::lock_guard lock(mutex_);
        auto it = assigned_.find(caller.user);
        if (it != assigned_.end() && it->second.revision == revision->revision &&
            it->second.groups == caller.groups &&
            now - it->second.computed <
                std::max<std::int64_t>(1, ctx_.config.membership_cache_seconds))
            return it->second.images;
    }
    auto effective =
        evaluate_policy(ctx_.config.directory, revision->set, caller.user, caller.groups, now);
    std::set<std::string> images;
    for (const auto& w : effective.workspaces)
        images.insert(w.image.name);
    std::lock_guard lock(mutex_);
    assigned_[caller.user] = {revision->revision, caller.groups, images, now};
    return images;
}

Result<std::uint64_t> Service::edit_policy(const Caller& admin,
                                           const std::function<Status(Json& document)>& fn) {
    std::lock_guard edit(policy_edit_);
    auto revision = HL_TRY(ctx_.metadata.policy());
    Json document = policy::to_json(revision.set);
    HL_TRY(fn(document));
    auto set = HL_TRY(policy::parse_policy_set(document.dump()));
    auto saved = HL_TRY(ctx_.metadata.save_policy(set, admin.user, ctx_.now(), revision.revision));
    policy_changed();
    ctx_.log.info("policy revision {} saved by {}", saved, admin.user);
    return saved;
}

Status Service::ensure_policy_image(const Caller& admin, const std::string& name) {
    auto revision = HL_TRY(current_policy());
    for (const auto& image : revision->set.images)
        if (image.name == name)
            return {};
    HL_TRY(edit_policy(admin, [&](Json& doc) -> Status {
        doc["images"].push_back({{"name", name}});
        return {};
    }));
    return {};
}

void Service::install(httplib::Server& server) {
    auto bind = [this](void (Service::*fn)(const Request&, Response&)) {
        return [this, fn](const Request& q, Response& r) {
            (this->*fn)(q, r);
        };
    };
    auto bind_reader =
        [this](void (Service::*fn)(const Request&, Response&, const httplib::ContentReader&)) {
            return [this, fn](const Request& q, Response& r, const httplib::ContentReader& reader) {
                (this->*fn)(q, r, reader);
            };
        };
    const std::string id = "([A-Za-z0-9][A-Za-z0-9._-]{0,63})";
    const std::string items = "(workspaces|apps|assignments|image-settings)";

    // Refuse large bodies before they are read, except on the upload routes, which stream.
    server.set_pre_routing_handler([this](const Request& q, Response& r) {
        bool upload = q.method == "PUT" && q.path.starts_with("/v1/admin/images/");
        bool policy = q.method == "PUT" && q.path == "/v1/admin/policy";
        bool apps = q.method == "PUT" && q.path.starts_with("/v1/agent/images/") &&
                    q.path.ends_with("/apps");
        std::size_t limit = policy ? policy::max_policy_document
                            : apps ? max_app_report_body
                                   : max_json_body;
        std::string length = q.get_header_value("Content-Length");
        std::uint64_t declared = 0;
        auto parsed = std::from_chars(length.data(), length.data() + length.size(), declared);
        bool too_big = !length.empty() && (parsed.ec != std::errc() || declared > limit);
        if (!upload && (too_big || q.has_header("Transfer-Encoding"))) {
            send_json(r, {{"error", "request body too large"}}, 413);
            return httplib::Server::HandlerResponse::Handled;
        }
        return httplib::Server::HandlerResponse::Unhandled;
    });
    server.set_exception_handler([this](const Request&, Response& r, std::exception_ptr e) {
        std::string what = "unknown";
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            what = x.what();
        } catch (...) {
        }
        ctx_.log.error("request failed with an exception: {}", what);
        send_json(r, {{"error", "internal error; see the server log"}}, 500);
    });
    server.set_error_handler([this](const Request&, Response& r) {
        if (r.body.empty())
            send_json(r, {{"error", r.status == 404 ? "no such API route" : "request failed"}},
                      r.status);
    });
    server.set_logger([this](const Request& q, const Response& r) {
        // Method, path and status only: never headers or bodies, which carry tokens.
        if (r.status >= 500)
            ctx_.log.warn("{} {} {} {}", q.remote_addr, q.method, q.path, r.status);
        else
            ctx_.log.debug("{} {} {} {}", q.remote_addr, q.method, q.path, r.status);
    });

    server.Get("/v1/server", bind(&Service::server_info));
    server.Post("/v1/login", bind(&Service::login));
    server.Post("/v1/logout", bind(&Service::logout));
    server.Post("/v1/enrol", bind(&Service::enrol));
    server.Get("/v1/agent/policy", bind(&Service::agent_policy));
    server.Get("/v1/agent/images/" + id + "/key", bind(&Service::agent_image_key));
    server.Post("/v1/agent/events", bind(&Service::agent_events));
    server.Put("/v1/agent/images/" + id + "/versions/([0-9]{1,19})/apps",
               bind(&Service::agent_app_report));
    server.Get("/v1/images/" + id + "/repo/([A-Za-z0-9._/-]{1,200})", bind(&Service::image_object));

    server.Get("/v1/admin/policy", bind(&Service::admin_policy_get));
    server.Put("/v1/admin/policy", bind(&Service::admin_policy_put));
    server.Get("/v1/admin/" + items, bind(&Service::admin_item_list));
    server.Put("/v1/admin/" + items + "/" + id, bind(&Service::admin_item_put));
    server.Delete("/v1/admin/" + items + "/" + id, bind(&Service::admin_item_delete));
    server.Get("/v1/admin/images", bind(&Service::admin_images));
    server.Post("/v1/admin/images", bind(&Service::admin_image_create));
    server.Get("/v1/admin/images/" + id + "/key", bind(&Service::admin_image_key));
    server.Post("/v1/admin/images/" + id + "/missing", bind(&Service::admin_image_missing));
    server.Put("/v1/admin/images/" + id + "/objects/([a-z0-9/-]{1,200})",
               bind_reader(&Service::admin_image_upload));
    server.Put("/v1/admin/images/" + id + "/versions/([0-9]{1,19})",
               bind_reader(&Service::admin_image_commit));
    server.Get("/v1/admin/images/" + id + "/apps", bind(&Service::admin_image_apps));
    server.Get("/v1/admin/images/" + id + "/versions/([0-9]{1,19})/apps/" + id + "/icon",
               bind(&Service::admin_app_icon));
    server.Get("/v1/admin/directory/(users|groups)", bind(&Service::admin_directory));
    server.Get("/v1/admin/effective/([^/]{1,256})", bind(&Service::admin_effective));
    server.Get("/v1/admin/endpoints", bind(&Service::admin_endpoints));
    server.Delete("/v1/admin/endpoints/" + id, bind(&Service::admin_endpoint_revoke));
    server.Get("/v1/admin/events", bind(&Service::admin_events));
}

} // namespace heirloom::server
