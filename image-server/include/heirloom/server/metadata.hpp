#pragma once

// The server's metadata in SQLite (WAL): the policy set as numbered revisions, images and
// their versions, enrolled agents and what they run, and agent events. Chunk objects live
// outside it as immutable files (image_store.hpp). Every call is one transaction and the
// object is safe to share between threads. The schema is versioned (PRAGMA user_version)
// and upgraded by migrations when opened.

#include "heirloom/common/bytes.hpp"
#include "heirloom/common/file.hpp"
#include "heirloom/policy/model.hpp"
#include "heirloom/server/app_report.hpp"

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace heirloom::server {

struct PolicyRevision {
    std::uint64_t revision = 0; // 0: nothing saved yet (an empty set)
    std::int64_t created = 0;
    std::string author;
    policy::PolicySet set;
};

struct ImageRecord {
    std::string name;
    std::string family_id; // hex
    std::int64_t created = 0;
};

struct VersionRecord {
    std::string image;
    std::uint64_t version = 0;
    std::int64_t created = 0;
    std::uint64_t virtual_size = 0;
    std::uint64_t chunks = 0;
    std::uint64_t object_bytes = 0; // chunk objects this version references
    std::uint64_t manifest_bytes = 0;
    std::string pushed_by;
};

struct AgentRecord {
    std::string id;
    Bytes token_hash; // SHA-256 of the agent's bearer token; the token itself is never stored
    std::string user;
    std::string hostname;
    std::int64_t enrolled = 0;
    std::int64_t last_contact = 0;
    std::string last_error;
    std::int64_t last_error_time = 0;
    bool revoked = false;
};

// What one endpoint reported about one image.
struct AgentImage {
    std::string image;
    std::uint64_t version = 0;
    std::string state; // the type of the last event about it: sync-done, sync-failed, launch...
    std::int64_t updated = 0;
};

struct Endpoint {
    AgentRecord agent;
    std::vector<AgentImage> images;
};

// Something an agent reports; see docs/api.md for the types.
struct Event {
    std::string type;
    std::int64_t time = 0; // when it happened, by the endpoint's clock
    std::string workspace;
    std::string image;
    std::uint64_t version = 0;
    std::string message;
};

struct EventRecord {
    std::int64_t id = 0;
    std::string agent;
    std::string user;
    std::string hostname;
    std::int64_t received = 0; // by the server's clock
    Event event;
};

// A login session. Only the token's hash is stored, so a copy of the database logs nobody in.
struct SessionRecord {
    Bytes token_hash;
    std::string user;
    std::vector<std::string> groups;
    bool admin = false;
    std::int64_t created = 0;
    std::int64_t expires = 0;
};

// The apps a guest reported for one image version, and which endpoint relayed them when.
struct AppReport {
    std::string image;
    std::uint64_t version = 0;
    std::string agent;
    std::string user;
    std::string hostname; // of the agent, when it is still known
    std::int64_t reported = 0;
    std::vector<ReportedApp> apps; // icons left out when listing; has_icon says which have one
    std::vector<bool> has_icon;
};

struct EventFilter {
    std::int64_t since = 0; // received at or after
    std::int64_t until = 0; // received before; 0 = no bound
    std::string type;
    std::string user;
    std::string agent;
    std::size_t limit = 1000;
};

class Metadata {
  public:
    // Opens (creating and migrating) the database file.
    static Result<std::unique_ptr<Metadata>> open(const fs::path& file);
    ~Metadata();
    Metadata(const Metadata&) = delete;
    Metadata& operator=(const Metadata&) = delete;

    // The newest policy revision (revision 0 and an empty set before the first save).
    Result<PolicyRevision> policy();
    // Saves set as a new revision; when expected_revision is given and is no longer the newest,
    // nothing is saved and Errc::conflict says someone else saved first.
    Result<std::uint64_t> save_policy(const policy::PolicySet& set, std::string_view author,
                                      std::int64_t now,
                                      std::optional<std::uint64_t> expected_revision);
    // A number that is larger each time it is asked for, across restarts (policy serials).
    Result<std::uint64_t> next_serial();

    Status add_image(const ImageRecord& image);
    Result<std::optional<ImageRecord>> image(std::string_view name);
    Result<std::vector<ImageRecord>> images();
    Status add_version(const VersionRecord& version);
    Result<std::vector<VersionRecord>> versions(std::string_view image);

    Status add_agent(const AgentRecord& agent);
    Result<std::optional<AgentRecord>> agent_by_token(ByteView token_hash);
    // Records contact; a non-empty error is kept as the endpoint's last error.
    Status touch_agent(std::string_view id, std::int64_t now);
    Status revoke_agent(std::string_view id);
    Result<std::vector<Endpoint>> endpoints();

    // Login sessions survive a restart of the server; expired ones are purged on the way.
    Status add_session(const SessionRecord& session);
    Result<std::optional<SessionRecord>> session(ByteView token_hash);
    Status remove_session(ByteView token_hash);

    // Stores events from an agent and updates what the endpoint is known to run.
    Status add_events(const AgentRecord& agent, const std::vector<Event>& events,
                      std::int64_t received);
    Result<std::vector<EventRecord>> events(const EventFilter& filter);

    // Keeps report's apps for its image version, replacing an earlier report for that version.
    Status save_app_report(const AppReport& report);
    // The report for image at version, or at the newest version that has one; icons are left
    // out (has_icon tells).
    Result<std::optional<AppReport>> app_report(std::string_view image,
                                                std::optional<std::uint64_t> version);
    // The icon of one reported app, if it has one.
    Result<std::optional<Bytes>> app_icon(std::string_view image, std::uint64_t version,
                                          std::string_view id);

  private:
    explicit Metadata(sqlite3* db) : db_(db) {}
    Status migrate();
    std::mutex mutex_;
    sqlite3* db_;
};

} // namespace heirloom::server
