#include "heirloom/server/metadata.hpp"

#include "heirloom/common/json.hpp"
#include "heirloom/policy/json.hpp"
#include "sqlite.hpp"

#include <sqlite3.h>

namespace heirloom::server {
namespace {

using sql::Statement;

// Each migration takes the schema from version i to i + 1. Never edit one that has shipped:
// add another.
constexpr std::string_view migrations[] = {
    R"(CREATE TABLE policy_revisions(revision INTEGER PRIMARY KEY, created INTEGER NOT NULL,
           author TEXT NOT NULL, document TEXT NOT NULL);
       CREATE TABLE counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
       INSERT INTO counters VALUES('policy_serial', 0);
       CREATE TABLE images(name TEXT PRIMARY KEY, family_id TEXT NOT NULL,
           created INTEGER NOT NULL);
       CREATE TABLE versions(image TEXT NOT NULL REFERENCES images(name),
           version INTEGER NOT NULL, created INTEGER NOT NULL, virtual_size INTEGER NOT NULL,
           chunks INTEGER NOT NULL, object_bytes INTEGER NOT NULL,
           manifest_bytes INTEGER NOT NULL, pushed_by TEXT NOT NULL,
           PRIMARY KEY(image, version));
       CREATE TABLE agents(id TEXT PRIMARY KEY, token_hash BLOB NOT NULL UNIQUE,
           user TEXT NOT NULL, hostname TEXT NOT NULL, enrolled INTEGER NOT NULL,
           last_contact INTEGER NOT NULL, last_error TEXT NOT NULL DEFAULT '',
           last_error_time INTEGER NOT NULL DEFAULT 0, revoked INTEGER NOT NULL DEFAULT 0);
       CREATE TABLE agent_images(agent TEXT NOT NULL REFERENCES agents(id),
           image TEXT NOT NULL, version INTEGER NOT NULL, state TEXT NOT NULL,
           updated INTEGER NOT NULL, PRIMARY KEY(agent, image));
       CREATE TABLE events(id INTEGER PRIMARY KEY, agent TEXT NOT NULL, user TEXT NOT NULL,
           time INTEGER NOT NULL, received INTEGER NOT NULL, type TEXT NOT NULL,
           workspace TEXT NOT NULL, image TEXT NOT NULL, version INTEGER NOT NULL,
           message TEXT NOT NULL);
       CREATE INDEX events_received ON events(received);
       CREATE TABLE sessions(token_hash BLOB PRIMARY KEY, user TEXT NOT NULL,
           groups TEXT NOT NULL, admin INTEGER NOT NULL, expires INTEGER NOT NULL);)",
    // What guests report they hold, per image version (metadata_apps.cpp).
    R"(CREATE TABLE app_reports(image TEXT NOT NULL, version INTEGER NOT NULL,
           agent TEXT NOT NULL, user TEXT NOT NULL, reported INTEGER NOT NULL,
           PRIMARY KEY(image, version));
       CREATE TABLE reported_apps(image TEXT NOT NULL, version INTEGER NOT NULL,
           id TEXT NOT NULL, name TEXT NOT NULL, command TEXT NOT NULL,
           file_types TEXT NOT NULL, icon BLOB, position INTEGER NOT NULL,
           PRIMARY KEY(image, version, id),
           FOREIGN KEY(image, version) REFERENCES app_reports(image, version)
               ON DELETE CASCADE);)",
};

constexpr std::string_view agent_columns =
    "id, token_hash, user, hostname, enrolled, last_contact, last_error, last_error_time, "
    "revoked";

AgentRecord read_agent(const Statement& s) {
    return AgentRecord{s.text(0),    s.blob(1), s.text(2),    s.text(3),        s.integer(4),
                       s.integer(5), s.text(6), s.integer(7), s.integer(8) != 0};
}

bool is_failure(std::string_view type) {
    return type == "sync-failed" || type == "error" || type == "policy-refused" ||
           type == "launch-failed";
}

} // namespace

Result<std::unique_ptr<Metadata>> Metadata::open(const fs::path& file) {
    sqlite3* db = nullptr;
    int rc =
        sqlite3_open_v2(file.c_str(), &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    std::unique_ptr<Metadata> meta(new Metadata(db));
    if (rc != SQLITE_OK)
        return fail(Errc::io, "open metadata database " + file.string() + ": " +
                                  (db ? sqlite3_errmsg(db) : "out of memory"));
    sqlite3_busy_timeout(db, 5000);
    HL_TRY_CTX(sql::exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                             "PRAGMA foreign_keys=ON;"),
               file.string());
    HL_TRY_CTX(meta->migrate(), file.string());
    return meta;
}

Metadata::~Metadata() {
    sqlite3_close_v2(db_);
}

Status Metadata::migrate() {
    auto version = HL_TRY(Statement::prepare(db_, "PRAGMA user_version"));
    HL_TRY(version.step());
    auto have = static_cast<std::size_t>(version.integer(0));
    if (have > std::size(migrations))
        return fail(Errc::unsupported,
                    "the database was written by a newer heirloom-server (schema " +
                        std::to_string(have) + "); upgrade this server");
    for (std::size_t i = have; i < std::size(migrations); ++i) {
        auto tx = HL_TRY(sql::Transaction::begin(db_));
        HL_TRY_CTX(sql::exec(db_, migrations[i]), "migration " + std::to_string(i + 1));
        HL_TRY(sql::exec(db_, "PRAGMA user_version=" + std::to_string(i + 1)));
        HL_TRY(tx.commit());
    }
    return {};
}

Result<PolicyRevision> Metadata::policy() {
    std::lock_guard lock(mutex_);
    auto s = HL_TRY(
        Statement::prepare(db_, "SELECT revision, created, author, document FROM policy_revisions "
                                "ORDER BY revision DESC LIMIT 1"));
    PolicyRevision r;
    if (!HL_TRY(s.step()))
        return r;
    r.revision = static_cast<std::uint64_t>(s.integer(0));
    r.created = s.integer(1);
    r.author = s.text(2);
    r.set = HL_TRY_CTX(policy::parse_policy_set(s.text(3)),
                       "policy revision " + std::to_string(r.revision));
    return r;
}

Result<std::uint64_t> Metadata::save_policy(const policy::PolicySet& set, std::string_view author,
                                            std::int64_t now,
                                            std::optional<std::uint64_t> expected_revision) {
    std::string document = policy::to_json(set).dump();
    std::lock_guard lock(mutex_);
    auto tx = HL_TRY(sql::Transaction::begin(db_));
    auto latest =
        HL_TRY(Statement::prepare(db_, "SELECT COALESCE(MAX(revision), 0) FROM policy_revisions"));
    HL_TRY(latest.step());
    auto current = static_cast<std::uint64_t>(latest.integer(0));
    if (expected_revision && *expected_revision != current)
        return fail(Errc::conflict, "the policy changed since revision " +
                                        std::to_string(*expected_revision) + " (now " +
                                        std::to_string(current) + "); reload and try again");
    auto insert = HL_TRY(Statement::prepare(
        db_, "INSERT INTO policy_revisions(revision, created, author, document) VALUES(?,?,?,?)"));
    insert.bind(1, static_cast<std::int64_t>(current + 1)).bind(2, now).bind(3, author);
    insert.bind(4, std::string_view(document));
    HL_TRY(insert.run());
    HL_TRY(tx.commit());
    return current + 1;
}

Result<std::uint64_t> Metadata::next_serial() {
    std::lock_guard lock(mutex_);
    auto s = HL_TRY(Statement::prepare(
        db_, "UPDATE counters SET value = value + 1 WHERE name = 'policy_serial' RETURNING value"));
    if (!HL_TRY(s.step()))
        return fail(Errc::corrupt, "metadata database: the policy serial counter is missing");
    auto value = static_cast<std::uint64_t>(s.integer(0));
    HL_TRY(s.run());
    return value;
}

Status Metadata::add_image(const ImageRecord& image) {
    std::lock_guard lock(mutex_);
    auto s = HL_TRY(
        Statement::prepare(db_, "INSERT INTO images(name, family_id, created) VALUES(?,?,?)"));
    s.bind(1, image.name).bind(2, image.family_id).bind(3, image.created);
    auto done = s.run();
    if (!done && done.error().code == Errc::conflict)
        return fail(Errc::conflict, "image " + image.name + " already exists");
    return done;
}

Result<std::optional<ImageRecord>> Metadata::image(std::string_view name) {
    std::lock_guard lock(mutex_);
    auto s = HL_TRY(
        Statement::prepare(db_, "SELECT name, family_id, created FROM images WHERE name = ?"));
    s.bind(1, name);
    if (!HL_TRY(s.step()))
        return std::optional<ImageRecord>();
    return ImageRecord{s.text(0), s.text(1), s.integer(2)};
}

Result<std::vector<ImageRecord>> Metadata::images() {
    std::lock_guard lock(mutex_);
    auto s = HL_TRY(
        Statement::prepare(db_, "SELECT name, family_id, created FROM images ORDER BY name"));
    std::vector<ImageRecord> out;
    while (HL_TRY(s.step()))
        out.push_back({s.text(0), s.text(1), s.integer(2)});
    return out;
}

Status Metadata::add_version(const VersionRecord& v) {
    std::lock_guard lock(mutex_);
    auto s = HL_TRY(Statement::prepare(db_, "INSERT OR REPLACE INTO versions(image, version, "
                                            "created, virtual_size, chunks, object_bytes, "
                                            "manifest_bytes, pushed_by) VALUES(?,?,?,?,?,?,?,?)"));
    s.bind(1, v.image).bind(2, static_cast<std::int64_t>(v.version)).bind(3, v.created);
    s.bind(4, static_cast<std::int64_t>(v.virtual_size));
    s.bind(5, static_cast<std::int64_t>(v.chunks));
    s.bind(6, static_cast<std::int64_t>(v.object_bytes));
    s.bind(7, static_cast<std::int64_t>(v.manifest_bytes)).bind(8, v.pushed_by);
    return s.run();
}

Result<std::vector<VersionRecord>> Metadata::versions(std::string_view image) {
    std::lock_guard lock(mutex_);
    auto s = HL_TRY(Statement::prepare(
        db_, "SELECT image, version, created, virtual_size, chunks, object_bytes, manifest_bytes, "
             "pushed_by FROM versions WHERE image = ? ORDER BY version"));
    s.bind(1, image);
    std::vector<VersionRecord> out;
    while (HL_TRY(s.step()))
        out.push_back({s.text(0), static_cast<std::uint64_t>(s.integer(1)), s.integer(2),
                       static_cast<std::uint64_t>(s.integer(3)),
                       static_cast<std::uint64_t>(s.integer(4)),
                       static_cast<std::uint64_t>(s.integer(5)),
                       static_cast<std::uint64_t>(s.integer(6)), s.text(7)});
    return out;
}

Status Metadata::add_agent(const AgentRecord& a) {
    std::lock_guard lock(mutex_);
    auto s = HL_TRY(Statement::prepare(
        db_, "INSERT INTO agents(id, token_hash, user, hostname, enrolled, last_contact) "
             "VALUES(?,?,?,?,?,?)"));
    s.bind(1, a.id).bind(2, ByteView(a.token_hash)).bind(3, a.user).bind(4, a.hostname);
    s.bind(5, a.enrolled).bind(6, a.last_contact);
    return s.run();
}

Result<std::optional<AgentRecord>> Metadata::agent_by_token(ByteView token_hash) {
    std::lock_guard lock(mutex_);
    auto s = HL_TRY(Statement::prepare(db_, "SELECT " + std::string(agent_columns) +
                                                " FROM agents WHERE token_hash = ?"));
    s.bind(1, token_hash);
    if (!HL_TRY(s.step()))
        return std::optional<AgentRecord>();
    return read_agent(s);
}

Status Metadata::touch_agent(std::string_view id, std::int64_t now) {
    std::lock_guard lock(mutex_);
    auto s = HL_TRY(Statement::prepare(db_, "UPDATE agents SET last_contact = ? WHERE id = ?"));
    s.bind(1, now).bind(2, id);
    return s.run();
}

Status Metadata::revoke_agent(std::string_view id) {
    std::lock_guard lock(mutex_);
    auto s = HL_TRY(Statement::prepare(db_, "UPDATE agents SET revoked = 1 WHERE id = ?"));
    s.bind(1, id);
    HL_TRY(s.run());
    if (sqlite3_changes(db_) == 0)
        return fail(Errc::not_found, "no endpoint " + std::string(id));
    return {};
}

Result<std::vector<Endpoint>> Metadata::endpoints() {
    std::lock_guard lock(mutex_);
    auto s = HL_TRY(Statement::prepare(db_, "SELECT " + std::string(agent_columns) +
                                                " FROM agents ORDER BY last_contact DESC"));
    std::vector<Endpoint> out;
    while (HL_TRY(s.step()))
        out.push_back({read_agent(s), {}});
    auto images = HL_TRY(Statement::prepare(
        db_, "SELECT image, version, state, updated FROM agent_images WHERE agent = ? "
             "ORDER BY image"));
    for (auto& e : out) {
        images.bind(1, e.agent.id);
        while (HL_TRY(images.step()))
            e.images.push_back({images.text(0), static_cast<std::uint64_t>(images.integer(1)),
                                images.text(2), images.integer(3)});
        images.reset();
    }
    return out;
}

Status Metadata::add_events(const AgentRecord& agent, const std::vector<Event>& events,
                            std::int64_t received) {
    std::lock_guard lock(mutex_);
    auto tx = HL_TRY(sql::Transaction::begin(db_));
    for (const auto& e : events) {
        auto insert = HL_TRY(Statement::prepare(
            db_, "INSERT INTO events(agent, user, time, received, type, workspace, image, "
                 "version, message) VALUES(?,?,?,?,?,?,?,?,?)"));
        insert.bind(1, agent.id).bind(2, agent.user).bind(3, e.time).bind(4, received);
        insert.bind(5, e.type).bind(6, e.workspace).bind(7, e.image);
        insert.bind(8, static_cast<std::int64_t>(e.version)).bind(9, e.message);
        HL_TRY(insert.run());
        if (!e.image.empty()) {
            auto state = HL_TRY(Statement::prepare(
                db_, "INSERT INTO agent_images(agent, image, version, state, updated) "
                     "VALUES(?,?,?,?,?) ON CONFLICT(agent, image) DO UPDATE SET "
                     "version = CASE WHEN excluded.version > 0 THEN excluded.version "
                     "ELSE version END, state = excluded.state, updated = excluded.updated"));
            state.bind(1, agent.id).bind(2, e.image);
            state.bind(3, static_cast<std::int64_t>(e.version)).bind(4, e.type);
            state.bind(5, received);
            HL_TRY(state.run());
        }
        if (is_failure(e.type)) {
            auto error = HL_TRY(Statement::prepare(
                db_, "UPDATE agents SET last_error = ?, last_error_time = ? WHERE id = ?"));
            error.bind(1, e.type + (e.message.empty() ? "" : ": " + e.message));
            error.bind(2, received).bind(3, agent.id);
            HL_TRY(error.run());
        }
    }
    auto touch = HL_TRY(Statement::prepare(db_, "UPDATE agents SET last_contact = ? WHERE id = ?"));
    touch.bind(1, received).bind(2, agent.id);
    HL_TRY(touch.run());
    return tx.commit();
}

Status Metadata::add_session(const SessionRecord& session) {
    std::lock_guard lock(mutex_);
    auto purge = HL_TRY(Statement::prepare(db_, "DELETE FROM sessions WHERE expires <= ?"));
    purge.bind(1, session.created);
    HL_TRY(purge.run());
    auto s = HL_TRY(Statement::prepare(
        db_, "INSERT INTO sessions(token_hash, user, groups, admin, expires) VALUES(?,?,?,?,?)"));
    Json groups = session.groups;
    s.bind(1, ByteView(session.token_hash)).bind(2, session.user).bind(3, groups.dump());
    s.bind(4, session.admin ? 1 : 0).bind(5, session.expires);
    return s.run();
}

Result<std::optional<SessionRecord>> Metadata::session(ByteView token_hash) {
    std::lock_guard lock(mutex_);
    auto s = HL_TRY(Statement::prepare(
        db_, "SELECT token_hash, user, groups, admin, expires FROM sessions WHERE token_hash = ?"));
    s.bind(1, token_hash);
    if (!HL_TRY(s.step()))
        return std::optional<SessionRecord>();
    SessionRecord r{s.blob(0), s.text(1), {}, s.integer(3) != 0, 0, s.integer(4)};
    auto groups = parse_json(s.text(2));
    if (!groups || !groups->is_array())
        return fail(Errc::corrupt, "metadata database: a session's groups are damaged");
    for (const auto& g : *groups)
        if (g.is_string())
            r.groups.push_back(g.get<std::string>());
    return r;
}

Status Metadata::remove_session(ByteView token_hash) {
    std::lock_guard lock(mutex_);
    auto s = HL_TRY(Statement::prepare(db_, "DELETE FROM sessions WHERE token_hash = ?"));
    s.bind(1, token_hash);
    return s.run();
}

Result<std::vector<EventRecord>> Metadata::events(const EventFilter& f) {
    std::lock_guard lock(mutex_);
    auto s = HL_TRY(Statement::prepare(
        db_, "SELECT e.id, e.agent, e.user, COALESCE(a.hostname, ''), e.received, e.type, e.time, "
             "e.workspace, e.image, e.version, e.message FROM events e "
             "LEFT JOIN agents a ON a.id = e.agent WHERE e.received >= ? "
             "AND (? = 0 OR e.received < ?) AND (? = '' OR e.type = ?) "
             "AND (? = '' OR e.user = ?) AND (? = '' OR e.agent = ?) "
             "ORDER BY e.id DESC LIMIT ?"));
    s.bind(1, f.since).bind(2, f.until).bind(3, f.until).bind(4, f.type).bind(5, f.type);
    s.bind(6, f.user).bind(7, f.user).bind(8, f.agent).bind(9, f.agent);
    s.bind(10, static_cast<std::int64_t>(f.limit));
    std::vector<EventRecord> out;
    while (HL_TRY(s.step())) {
        EventRecord r;
        r.id = s.integer(0);
        r.agent = s.text(1);
        r.user = s.text(2);
        r.hostname = s.text(3);
        r.received = s.integer(4);
        r.event = Event{
            s.text(5), s.integer(6), s.text(7), s.text(8), static_cast<std::uint64_t>(s.integer(9)),
            s.text(10)};
        out.push_back(std::move(r));
    }
    return out;
}

} // namespace heirloom::server
