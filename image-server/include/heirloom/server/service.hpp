#pragma once

// The server's HTTP API (docs/api.md) over its parts: the directory for logins and groups,
// the metadata, the image store and the signing keys. Who may do what:
//
//   anyone                 GET /v1/server, POST /v1/login, POST /v1/enrol
//   an enrolled agent      its user's signed policy, image keys and objects of the images
//                          assigned to that user, event reports, the apps guests of those
//                          images hold
//   a logged-in user       objects of the images assigned to them
//   the admin group        everything under /v1/admin
//
// Agents' group memberships are looked up with the service bind and trusted for
// membership_cache_seconds; when the directory cannot be asked after that, requests that need
// them fail (503) rather than trust stale or missing groups.

#include "heirloom/common/json.hpp"
#include "heirloom/common/log.hpp"
#include "heirloom/negotiate/negotiate.hpp"
#include "heirloom/policy/evaluate.hpp"
#include "heirloom/server/config.hpp"
#include "heirloom/server/directory.hpp"
#include "heirloom/server/image_store.hpp"
#include "heirloom/server/metadata.hpp"
#include "heirloom/server/requests.hpp"

#include <chrono>
#include <functional>
#include <httplib.h>
#include <map>
#include <memory>
#include <mutex>
#include <set>

namespace heirloom::server {

// Everything the service needs, owned by the caller (the program's main, or a test).
struct ServiceContext {
    const ServerConfig& config;
    const Log& log;
    Directory& directory;
    Metadata& metadata;
    ImageStore& images;
    const ServerKeys& keys;
    std::function<std::int64_t()> now; // unix seconds
    // Kerberos single sign-on: accepts "Authorization: Negotiate" logins; none: passwords only.
    negotiate::Acceptor* negotiate = nullptr;
};

// policy::evaluate with names compared as the directory compares them: for Active Directory a
// user or group the policy spells in another case is the same one.
policy::EffectivePolicy evaluate_policy(const DirectoryConfig& directory,
                                        const policy::PolicySet& set, std::string_view user,
                                        std::span<const std::string> groups, std::int64_t now);

// Who is calling, once their token checked out.
struct Caller {
    std::string user;
    std::vector<std::string> groups;
    bool admin = false;
    std::optional<AgentRecord> agent; // set for agents
};

class Service {
  public:
    explicit Service(ServiceContext context);
    // Registers every route on server.
    void install(httplib::Server& server);

  private:
    using Request = httplib::Request;
    using Response = httplib::Response;

    struct Session {
        Caller caller;
        std::int64_t expires = 0;
    };
    struct Assigned {
        std::uint64_t revision = 0;
        std::vector<std::string> groups;
        std::set<std::string> images;
        std::int64_t computed = 0;
    };
    struct Membership {
        DirectoryUser user;
        std::int64_t fetched = 0;
    };

    // Identity and access.
    Result<Caller> caller(const Request& request);
    Result<Caller> admin(const Request& request);
    Result<DirectoryUser> membership(std::string_view user);
    // The user of a login or enrolment: the one a Kerberos token in "Authorization: Negotiate"
    // proves (sso set), else the one whose password the body holds. hostname is the
    // enrolment's. Errors are logged with their reason and fit for the caller.
    Result<DirectoryUser> login_user(const Request& request, Response& response, bool enrol,
                                     std::string& hostname, bool& sso);
    // True when one of groups is the admin group.
    bool is_admin(const std::vector<std::string>& groups) const;
    Result<std::set<std::string>> assigned_images(const Caller& caller);
    Result<std::shared_ptr<const PolicyRevision>> current_policy();
    void policy_changed();

    // Routes for agents and users (routes_agent.cpp).
    void server_info(const Request& request, Response& response);
    void login(const Request& request, Response& response);
    void logout(const Request& request, Response& response);
    void enrol(const Request& request, Response& response);
    void agent_policy(const Request& request, Response& response);
    void agent_image_key(const Request& request, Response& response);
    void agent_events(const Request& request, Response& response);
    void image_object(const Request& request, Response& response);

    // What guests hold (routes_apps.cpp).
    void agent_app_report(const Request& request, Response& response);
    void admin_image_apps(const Request& request, Response& response);
    void admin_app_icon(const Request& request, Response& response);

    // Routes for admins (routes_admin.cpp, routes_images.cpp).
    void admin_policy_get(const Request& request, Response& response);
    void admin_policy_put(const Request& request, Response& response);
    void admin_item_list(const Request& request, Response& response);
    void admin_item_put(const Request& request, Response& response);
    void admin_item_delete(const Request& request, Response& response);
    void admin_images(const Request& request, Response& response);
    void admin_image_create(const Request& request, Response& response);
    void admin_image_key(const Request& request, Response& response);
    void admin_image_missing(const Request& request, Response& response);
    void admin_image_upload(const Request& request, Response& response,
                            const httplib::ContentReader& reader);
    void admin_image_commit(const Request& request, Response& response,
                            const httplib::ContentReader& reader);
    void admin_directory(const Request& request, Response& response);
    void admin_effective(const Request& request, Response& response);
    void admin_endpoints(const Request& request, Response& response);
    void admin_endpoint_revoke(const Request& request, Response& response);
    void admin_events(const Request& request, Response& response);

    // Changes the policy set by editing its JSON form: fn gets the document and changes it;
    // the result is validated as a whole and saved as a new revision.
    Result<std::uint64_t> edit_policy(const Caller& admin,
                                      const std::function<Status(Json& document)>& fn);
    Status ensure_policy_image(const Caller& admin, const std::string& name);

    // Sends an error as {"error": message} with the status that fits its code.
    void send_error(Response& response, const Error& error) const;
    void send_json(Response& response, const Json& body, int status = 200) const;

    ServiceContext ctx_;
    std::mutex mutex_;
    std::map<std::string, Session> sessions_;       // by SHA-256 of the token, hex
    std::map<std::string, Membership> memberships_; // by user name
    std::map<std::string, std::pair<AgentRecord, std::int64_t>> agents_; // by token hash, hex
    std::map<std::string, Assigned> assigned_; // images each user may fetch, by user
    std::shared_ptr<const PolicyRevision> policy_;
    std::mutex policy_edit_;
};

// The status code an error maps to: invalid_argument/corrupt 400, crypto (a login or token
// that does not check out) 401, denied 403, not_found 404, conflict 409, network 503,
// anything else 500.
int http_status(Errc code);

} // namespace heirloom::server
