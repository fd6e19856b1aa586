// Routes for everyone, agents and logged-in users: logins, enrolment, signed policies, image
// keys and objects, and event reports.

#include "heirloom/common/crypto.hpp"
#include "heirloom/policy/evaluate.hpp"
#include "heirloom/policy/signed.hpp"
#include "heirloom/server/service.hpp"

#include <algorithm>
#include <cctype>
#include <optional>

namespace heirloom::server {
namespace {

// A new random token of the given kind, "s.<64 hex>" or "a.<64 hex>".
std::string new_token(char kind) {
    Bytes raw(32);
    crypto::random_bytes(raw);
    std::string token = std::string(1, kind) + "." + to_hex(raw);
    crypto::secure_wipe(raw);
    return token;
}

std::string token_hash_hex(std::string_view token) {
    return to_hex(crypto::sha256(as_bytes(token)));
}

// Logins that fail say the same thing whatever the cause, so names cannot be probed.
Error login_error(const Error& e) {
    if (e.code == Errc::crypto)
        return Error{Errc::crypto, "wrong user name or password"};
    if (e.code == Errc::network)
        return Error{Errc::network, "the directory cannot be reached, so nobody can log in "
                                    "right now; try again later or tell your administrator"};
    return e;
}

} // namespace

void Service::server_info(const Request&, Response& response) {
    send_json(response, {{"product", "heirloom-server"},
                         {"api", 1},
                         {"signing_public_key", to_hex(ctx_.keys.public_key)}});
}

namespace {

// The token of "Authorization: Negotiate TOKEN" (the scheme in any case), if that is the header.
std::optional<std::string_view> negotiate_token(const std::string& header) {
    constexpr std::string_view scheme = "negotiate ";
    if (header.size() <= scheme.size())
        return std::nullopt;
    for (std::size_t i = 0; i < scheme.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(header[i])) != scheme[i])
            return std::nullopt;
    return std::string_view(header).substr(scheme.size());
}

} // namespace

Result<DirectoryUser> Service::login_user(const Request& request, Response& response, bool enrol,
                                          std::string& hostname, bool& sso) {
    const std::string what = enrol ? "enrolment" : "login";
    const std::string header = request.get_header_value("Authorization");
    sso = false;
    if (auto token = negotiate_token(header)) {
        sso = true;
        hostname = HL_TRY(parse_negotiated(request.body, enrol));
        if (ctx_.negotiate == nullptr)
            return fail(Errc::crypto, "this server does not take Kerberos logins: log in with "
                                      "your password");
        // The reason a ticket is refused is for this log; the caller may use the password.
        const auto refused = [&](const std::string& reason) {
            ctx_.log.info("Kerberos {} refused: {}", what, reason);
            return Error{Errc::crypto,
                         "your Kerberos ticket was not accepted: log in with your password"};
        };
        auto accepted = ctx_.negotiate->accept(*token);
        if (!accepted)
            return std::unexpected(refused(accepted.error().message));
        if (!accepted->reply.empty())
            response.set_header("WWW-Authenticate", "Negotiate " + accepted->reply);
        const std::string realm = ctx_.config.kerberos_realm.empty()
                                      ? negotiate::realm_of_base_dn(ctx_.config.directory.base_dn)
                                      : ctx_.config.kerberos_realm;
        auto name = negotiate::user_of_principal(accepted->principal, realm);
        if (!name)
            return std::unexpected(
                refused("principal " + accepted->principal + " is not a user of realm " + realm));
        auto user = ctx_.directory.lookup(*name);
        if (!user && user.error().code != Errc::network)
            return std::unexpected(refused(user.error().message));
        if (!user)
            return std::unexpected(login_error(user.error()));
        return user;
    }
    Credentials credentials;
    if (enrol) {
        credentials = HL_TRY(parse_enrol(request.body));
        hostname = credentials.hostname;
    } else {
        credentials = HL_TRY(parse_login(request.body));
    }
    auto user = ctx_.directory.authenticate(credentials.user, credentials.password);
    if (!user) {
        // The directory's reason (an Active Directory account disabled, locked, expired...)
        // is for this log only: the caller is told what login_error says.
        ctx_.log.info("{} refused for a user: {}: {}", what, errc_name(user.error().code),
                      user.error().message);
        return std::unexpected(login_error(user.error()));
    }
    return user;
}

void Service::login(const Request& request, Response& response) {
    std::string hostname;
    bool sso = false;
    auto user = login_user(request, response, false, hostname, sso);
    if (!user)
        return send_error(response, user.error());
    Caller c{user->name, user->groups, false, std::nullopt};
    c.admin = is_admin(c.groups);
    std::string token = new_token('s');
    std::int64_t expires = ctx_.now() + ctx_.config.session_seconds;
    auto hash = crypto::sha256(as_bytes(token));
    SessionRecord record{
        Bytes(hash.begin(), hash.end()), c.user, c.groups, c.admin, ctx_.now(), expires};
    if (auto saved = ctx_.metadata.add_session(record); !saved)
        return send_error(response, saved.error());
    {
        std::lock_guard lock(mutex_);
        std::erase_if(sessions_, [&](const auto& s) { return s.second.expires <= ctx_.now(); });
        sessions_[token_hash_hex(token)] = {c, expires};
        memberships_[user->name] = {*user, ctx_.now()};
    }
    ctx_.log.info("{} logged in{}{}", c.user, sso ? " with Kerberos" : "",
                  c.admin ? " (admin)" : "");
    send_json(response, {{"token", token},
                         {"user", c.user},
                         {"display_name", user->display_name},
                         {"groups", c.groups},
                         {"admin", c.admin},
                         {"expires_at", expires}});
}

void Service::logout(const Request& request, Response& response) {
    auto bearer = parse_bearer(request.get_header_value("Authorization"));
    if (!bearer || bearer->kind != TokenKind::session)
        return send_error(response, Error{Errc::crypto, "not logged in"});
    auto hash = crypto::sha256(as_bytes(bearer->token));
    if (auto removed = ctx_.metadata.remove_session(hash); !removed)
        return send_error(response, removed.error());
    std::lock_guard lock(mutex_);
    sessions_.erase(to_hex(hash));
    response.status = 204;
}

void Service::enrol(const Request& request, Response& response) {
    std::string hostname;
    bool sso = false;
    auto user = login_user(request, response, true, hostname, sso);
    if (!user)
        return send_error(response, user.error());
    Bytes id(8);
    crypto::random_bytes(id);
    std::string token = new_token('a');
    AgentRecord agent;
    agent.id = "ep-" + to_hex(id);
    auto hash = crypto::sha256(as_bytes(token));
    agent.token_hash.assign(hash.begin(), hash.end());
    agent.user = user->name;
    agent.hostname = hostname;
    agent.enrolled = agent.last_contact = ctx_.now();
    if (auto added = ctx_.metadata.add_agent(agent); !added)
        return send_error(response, added.error());
    {
        std::lock_guard lock(mutex_);
        memberships_[user->name] = {*user, ctx_.now()};
    }
    ctx_.log.info("endpoint {} ({}) enrolled for {}{}", agent.id, agent.hostname, agent.user,
                  sso ? " with Kerberos" : "");
    send_json(response,
              {{"agent_id", agent.id},
               {"agent_token", token},
               {"user", agent.user},
               {"signing_public_key", to_hex(ctx_.keys.public_key)}},
              201);
}

void Service::agent_policy(const Request& request, Response& response) {
    auto c = caller(request);
    if (!c)
        return send_error(response, c.error());
    if (!c->agent)
        return send_error(response, Error{Errc::denied, "signed policies are for enrolled agents"});
    auto revision = current_policy();
    if (!revision)
        return send_error(response, revision.error());
    std::int64_t now = ctx_.now();
    auto effective =
        evaluate_policy(ctx_.config.directory, (*revision)->set, c->user, c->groups, now);
    // Valid as long as the longest offline limit, so an agent can run that long offline.
    std::int64_t lifetime = ctx_.config.min_policy_seconds;
    for (const auto& w : effective.workspaces)
        lifetime = std::max(lifetime, w.lease.offline_limit);
    auto serial = ctx_.metadata.next_serial();
    if (!serial)
        return send_error(response, serial.error());
    auto envelope = policy::sign_policy(effective, now, now + lifetime, *serial, ctx_.keys.secret);
    if (!envelope)
        return send_error(response, envelope.error());
    if (auto touched = ctx_.metadata.touch_agent(c->agent->id, now); !touched)
        ctx_.log.warn("endpoint {}: {}", c->agent->id, touched.error().message);
    response.set_header("Cache-Control", "no-store");
    response.set_content(std::string(envelope->begin(), envelope->end()), "application/json");
}

void Service::agent_image_key(const Request& request, Response& response) {
    auto c = caller(request);
    if (!c)
        return send_error(response, c.error());
    std::string name = request.matches[1];
    auto images = assigned_images(*c);
    if (!images)
        return send_error(response, images.error());
    if (!images->contains(name))
        return send_error(response,
                          Error{Errc::denied, "image " + name + " is not assigned to " + c->user});
    auto secret = ctx_.images.family_secret(name);
    if (!secret)
        return send_error(response, secret.error());
    trim::FamilyKeys keys(*secret);
    response.set_header("Cache-Control", "no-store");
    send_json(response, {{"image", name},
                         {"family_id", to_hex(keys.family_id())},
                         {"family_secret", to_hex(*secret)}});
    crypto::secure_wipe(*secret);
}

void Service::agent_events(const Request& request, Response& response) {
    auto c = caller(request);
    if (!c)
        return send_error(response, c.error());
    if (!c->agent)
        return send_error(response, Error{Errc::denied, "event reports are for enrolled agents"});
    auto events = parse_events(request.body);
    if (!events)
        return send_error(response, events.error());
    if (auto stored = ctx_.metadata.add_events(*c->agent, *events, ctx_.now()); !stored)
        return send_error(response, stored.error());
    send_json(response, {{"stored", events->size()}});
}

void Service::image_object(const Request& request, Response& response) {
    auto c = caller(request);
    if (!c)
        return send_error(response, c.error());
    std::string name = request.matches[1];
    std::string path = request.matches[2];
    if (!c->admin) {
        auto images = assigned_images(*c);
        if (!images)
            return send_error(response, images.error());
        if (!images->contains(name))
            return send_error(
                response, Error{Errc::denied, "image " + name + " is not assigned to " + c->user});
    }
    auto file = ctx_.images.object_file(name, path);
    if (!file)
        return send_error(response, file.error());
    auto bytes = read_text_file(*file, trim::max_manifest_size);
    if (!bytes) {
        if (!fs::exists(*file))
            return send_error(response, Error{Errc::not_found, "no object " + path});
        return send_error(response, bytes.error());
    }
    bool pointer = path.ends_with("/latest");
    response.set_header("Cache-Control", pointer ? "no-cache" : "private, max-age=31536000");
    response.set_header("Content-Type", "application/octet-stream");
    response.body = std::move(*bytes); // chunks are large: no copy
}

} // namespace heirloom::server
