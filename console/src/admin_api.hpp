#pragma once

// The console's view of the server's admin API (docs/api.md): plain values and blocking calls,
// no Qt, so every call can run on a worker thread with its own connection. Each call opens a
// fresh ApiClient from the Connection, because one ApiClient must not be shared by threads.

#include "heirloom/client/api_client.hpp"
#include "heirloom/policy/model.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace heirloom::console {

// A logged-in admin session: where the server is and the session token.
struct Connection {
    client::ServerOptions server;
    std::string user;
    std::string display_name;
    std::string token;
    std::int64_t expires_at = 0;
};

// Logs in with directory credentials. Fails with a message for a person when the password is
// wrong, the server cannot be reached, its certificate is not trusted, or the user is no admin.
Result<Connection> log_in(const client::ServerOptions& server, const std::string& user,
                          const std::string& password);

// Ends the session on the server: its token stops working.
Status log_out(const Connection& c);

// What a failed login means for the person at the keyboard, from the client's error.
std::string login_failure_message(const Error& error, const std::string& url);

// The whole policy set and the revision it was read at.
struct PolicyRevision {
    std::uint64_t revision = 0;
    policy::PolicySet set;
};
Result<PolicyRevision> fetch_policy(const Connection& c);

// Which kind of policy item a call is about (the collections of the admin API).
enum class Collection { workspaces, apps, assignments };

// Validates the item with the policy library, then creates or replaces it on the server.
Status save_workspace(const Connection& c, const policy::Workspace& workspace);
Status save_app(const Connection& c, const policy::PublishedApp& app);
Status save_assignment(const Connection& c, const policy::Assignment& assignment);
// An image's roll-out settings: the minimum version endpoints may run and the version they
// are pinned to (the image-settings collection).
Status save_image_settings(const Connection& c, const policy::ImageRef& image);
// Deletes an item; the server refuses (conflict) while other items refer to it.
Status delete_item(const Connection& c, Collection collection, const std::string& id);

struct ImageVersion {
    std::uint64_t version = 0;
    std::int64_t created = 0;
    std::uint64_t virtual_size = 0;
    std::uint64_t object_bytes = 0;
    std::string pushed_by;
};
struct Image {
    std::string name;
    std::int64_t created = 0;
    std::uint64_t latest = 0;
    std::vector<ImageVersion> versions;
};
Result<std::vector<Image>> fetch_images(const Connection& c);

struct EndpointImage {
    std::string image;
    std::uint64_t version = 0;
    std::string state;
    std::int64_t updated = 0;
};
struct Endpoint {
    std::string id;
    std::string user;
    std::string hostname;
    std::int64_t enrolled = 0;
    std::int64_t last_contact = 0;
    std::string last_error;
    std::int64_t last_error_time = 0;
    bool revoked = false;
    std::vector<EndpointImage> images;
};
Result<std::vector<Endpoint>> fetch_endpoints(const Connection& c);
Status revoke_endpoint(const Connection& c, const std::string& id);

enum class PrincipalSearch { users, groups };
struct DirectoryEntry {
    std::string name;
    std::string dn;
    std::string display_name;
};
Result<std::vector<DirectoryEntry>> search_directory(const Connection& c, PrincipalSearch kind,
                                                     const std::string& text);

// One control of one workspace in a user's effective policy, and the assignment that decided
// it ("why does Bob get clipboard off?").
struct EffectiveControl {
    std::string workspace;
    std::string control;
    std::string value;
    std::string decided_by;
};
struct EffectiveView {
    std::string user;
    std::vector<std::string> groups;
    std::vector<EffectiveControl> controls;
};
Result<EffectiveView> fetch_effective(const Connection& c, const std::string& user);

struct EventFilter {
    std::int64_t since = 0; // unix seconds, 0 = no bound
    std::int64_t until = 0;
    std::string type; // empty = every type
    std::string user;
    std::size_t limit = 1000;
};
struct Event {
    std::int64_t id = 0;
    std::int64_t time = 0;
    std::string user;
    std::string hostname;
    std::string endpoint;
    std::string type;
    std::string workspace;
    std::string image;
    std::uint64_t version = 0;
    std::string message;
};
Result<std::vector<Event>> fetch_events(const Connection& c, const EventFilter& filter);
// The same report as CSV, exactly as the server writes it (formula cells already defused).
Result<std::string> fetch_events_csv(const Connection& c, const EventFilter& filter);

// The event types agents report (docs/api.md), for the report's filter.
const std::vector<std::string>& event_types();

} // namespace heirloom::console
