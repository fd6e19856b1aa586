#include "heirloom/agent/agent.hpp"

#include "heirloom/agent/app_report.hpp"
#include "heirloom/agent/workspace_vm.hpp"
#include "heirloom/client/api_client.hpp"
#include "heirloom/common/events.hpp"
#include "heirloom/common/url.hpp"
#include "heirloom/shell/menu.hpp"
#include "heirloom/trim/image_reader.hpp"
#include "heirloom/trim/keys.hpp"
#include "heirloom/trim/progress.hpp"
#include "heirloom/trim/repository.hpp"
#include "heirloom/trim/store.hpp"
#include "heirloom/trim/sync.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <set>
#include <sys/stat.h>

namespace heirloom::agent {
namespace {

constexpr std::string_view enrolment_label = "enrolment";
constexpr std::string_view policy_label = "policy";
constexpr std::size_t max_pending_events = 256;

std::string image_secret_name(std::string_view image) {
    return "image-" + std::string(image);
}

// Progress of one workspace's sync, published into its status.
class StatusProgress : public trim::Progress {
  public:
    StatusProgress(std::mutex& mutex, WorkspaceStatus& status) : mutex_(mutex), status_(status) {}
    void update(std::string_view stage, std::uint64_t done, std::uint64_t total) override {
        std::lock_guard lock(mutex_);
        status_.stage = stage;
        status_.progress_done = done;
        status_.progress_total = total;
    }

  private:
    std::mutex& mutex_;
    WorkspaceStatus& status_;
};

template <class T> Result<T> field(const Json& doc, const char* key, std::string_view where) {
    try {
        return doc.at(key).get<T>();
    } catch (const std::exception&) {
        return fail(Errc::corrupt, std::string(where) + ": missing or bad '" + key + "'");
    }
}

} // namespace

Json to_json(const WorkspaceStatus& s) {
    Json j = {{"id", s.id},
              {"display_name", s.display_name},
              {"image", s.image},
              {"state", s.state},
              {"bytes_network", s.bytes_network},
              {"bytes_seeds", s.bytes_seeds},
              {"lease_ends", s.lease_ends},
              {"lease_state", s.lease_state},
              {"last_error", s.last_error}};
    j["current_version"] = s.current_version ? Json(*s.current_version) : Json(nullptr);
    j["available_version"] = s.available_version ? Json(*s.available_version) : Json(nullptr);
    if (s.state == "syncing")
        j["progress"] = {
            {"stage", s.stage}, {"done", s.progress_done}, {"total", s.progress_total}};
    return j;
}

Result<AgentSettings> parse_settings(std::string_view text) {
    Json doc = HL_TRY(parse_json(text, 1 << 20));
    if (!doc.is_object())
        return fail(Errc::invalid_argument, "agent settings: expected a JSON object");
    AgentSettings s;
    for (auto& [key, value] : doc.items()) {
        try {
            if (key == "policy_refresh_seconds")
                s.policy_refresh_seconds = std::clamp(value.get<int>(), 10, 86400);
            else if (key == "lease_warning_seconds")
                s.lease_warning_seconds =
                    std::clamp<std::int64_t>(value.get<std::int64_t>(), 0, 30 * 86400);
            else if (key == "sync_workers")
                s.sync_workers = std::clamp(value.get<unsigned>(), 1u, 32u);
            else if (key == "max_bytes_per_second")
                s.max_bytes_per_second =
                    value.get<std::uint64_t>() == 0
                        ? 0
                        : std::max<std::uint64_t>(value.get<std::uint64_t>(), 64 << 10);
            else if (key == "network_timeout_seconds")
                s.network_timeout_seconds = std::clamp(value.get<int>(), 1, 600);
            else if (key == "seeds") {
                if (!value.is_object())
                    throw std::invalid_argument("seeds");
                for (auto& [workspace, folders] : value.items())
                    for (const auto& folder : folders.get<std::vector<std::string>>())
                        s.seeds[workspace].push_back(folder);
            } else if (key == "media_roots") {
                for (const auto& folder : value.get<std::vector<std::string>>())
                    s.media_roots.push_back(folder);
            } else if (key == "vm_boot_timeout_seconds") {
                s.vm_boot_timeout_seconds = std::clamp(value.get<int>(), 10, 3600);
            } else if (key == "vm_idle_suspend_seconds") {
                s.vm_idle_suspend_seconds = std::clamp(value.get<int>(), 0, 7 * 86400);
            } else if (key == "vm_display") {
                s.vm_display = value.get<bool>();
            } else if (key == "menu_entries") {
                s.menu_entries = value.get<bool>();
            } else if (key == "accel") {
                s.accel = value.get<std::string>();
                if (s.accel != "auto" && s.accel != "kvm" && s.accel != "tcg")
                    return fail(Errc::invalid_argument,
                                "agent settings: accel must be auto, kvm or tcg");
            } else
                return fail(Errc::invalid_argument,
                            "agent settings: unknown key '" + printable(key) + "'");
        } catch (const std::exception&) {
            return fail(Errc::invalid_argument,
                        "agent settings: '" + printable(key) + "' has the wrong type");
        }
    }
    return s;
}

Result<AgentSettings> load_settings(const fs::path& file) {
    if (!fs::exists(file))
        return AgentSettings{};
    std::string text = HL_TRY(read_text_file(file, 1 << 20));
    return HL_TRY_CTX(parse_settings(text), file.string());
}

struct Agent::Impl {
    Impl(AgentPaths p, AgentSettings s, Vault v)
        : paths(std::move(p)), settings(std::move(s)), vault(std::move(v)),
          clock(TrustedClock::fresh(vault, paths.state / "clock.json")) {}

    AgentPaths paths;
    AgentSettings settings;
    Vault vault;
    TrustedClock clock;

    std::mutex mutex; // everything below
    std::optional<Enrolment> enrolment;
    std::string token;
    std::optional<policy::SignedPolicy> policy;
    std::uint64_t min_serial = 0;
    std::int64_t last_contact = 0; // trusted time of the last policy from the server
    std::int64_t next_refresh = 0;
    std::map<std::string, WorkspaceStatus> workspaces;
    std::map<std::string, policy::Lease> leases; // of the workspaces in the current policy
    std::set<std::string> warned;                // workspaces warned about their lease
    std::vector<Json> events;
    std::string last_error;
    std::string trust_problem; // a cache or anchor refused; cleared by the next policy fetched
    std::chrono::steady_clock::time_point next_clock_save{};

    std::mutex cycle_mutex; // one cycle at a time

    // The user's menu entries (heirloom_shell), unless the settings turned them off.
    std::optional<shell::ShellPaths> shell_paths;
    std::optional<shell::Programs> shell_programs;
    std::mutex menu_mutex; // one publish at a time

    // Makes the menu match the current policy (none: every entry of ours goes). Call without
    // mutex held.
    void publish_menu() {
        if (!shell_paths || !shell_programs)
            return;
        std::optional<policy::EffectivePolicy> current;
        {
            std::lock_guard lock(mutex);
            if (policy)
                current = policy->policy;
        }
        std::lock_guard menu(menu_mutex);
        auto done = current ? shell::publish(*shell_paths, *shell_programs, *current)
                            : shell::unpublish(*shell_paths);
        if (!done) {
            std::lock_guard lock(mutex);
            event("menu-failed", "", "", std::nullopt, done.error().message);
        }
    }

    // What guests listed, for the server at the next cycle, by "image/version" (under mutex).
    std::map<std::string, AppReport> app_reports;

    // A guest listed its apps: they are reported to the server for the image version the VM
    // runs (at the next cycle, when they changed), and the icons of those the policy publishes
    // from workspace id are converted and cached (a refused icon is an event), and the menu
    // shows them.
    void guest_apps(const std::string& id, const std::string& image, std::uint64_t version,
                    const std::vector<guest::App>& apps) {
        {
            auto report = make_app_report(id, image, version, apps);
            std::lock_guard lock(mutex);
            app_reports.insert_or_assign(image + "/" + std::to_string(version), std::move(report));
        }
        if (!shell_paths)
            return;
        std::set<std::string> published;
        {
            std::lock_guard lock(mutex);
            if (policy)
                for (const auto& a : policy->policy.apps)
                    if (a.workspace_id == id)
                        published.insert(a.id);
        }
        for (const auto& app : apps) {
            if (!published.contains(app.id))
                continue;
            auto stored = shell::store_guest_icon(*shell_paths, id, app.id, app.icon_png);
            if (!stored) {
                std::lock_guard lock(mutex);
                event("guest-error", id, "", std::nullopt,
                      "the icon of '" + app.id + "' was refused: " + stored.error().message);
            }
        }
        publish_menu();
    }

    // Running workspace VMs. vm_mutex guards the map and is held while one starts, so a
    // workspace never gets two VMs; status() only looks when it is free.
    std::mutex vm_mutex;
    std::map<std::string, std::unique_ptr<WorkspaceVm>> vms;
    std::set<std::string> vms_to_stop;   // (under mutex) revoked or expired: enforce() stops them
    std::set<std::string> images_in_use; // (under mutex) by a running VM: not pruned by a sync
    std::map<std::string, std::set<std::int64_t>> suspended_apps; // (vm_mutex) at suspend

    fs::path overlays() const { return paths.state / "overlays"; }
    fs::path overlay_file(const std::string& id) const { return overlays() / (id + ".qcow2"); }
    fs::path overlay_base_file(const std::string& id) const { return overlays() / (id + ".base"); }
    fs::path state_file(const std::string& id) const { return overlays() / (id + ".state"); }
    static std::string state_secret_name(const std::string& id) { return "vmstate-" + id; }

    // Forgets a suspended VM's state (and, for a revertible workspace, the overlay it needs).
    void drop_state(const std::string& id, bool revertible) {
        std::error_code ec;
        fs::remove(state_file(id), ec);
        (void)vault.remove(state_secret_name(id));
        if (revertible)
            fs::remove(overlay_file(id), ec);
    }
    static std::string overlay_secret_name(const std::string& id) { return "overlay-" + id; }

    // Deletes a workspace's overlay (the user's writes) and its key.
    void wipe_overlay(const std::string& id) {
        std::error_code ec;
        for (const auto& entry : fs::directory_iterator(overlays(), ec)) {
            std::string name = entry.path().filename().string();
            if (name.starts_with(id + ".") && (name.ends_with(".qcow2") || name.ends_with(".base")))
                fs::remove(entry.path(), ec);
        }
        (void)vault.remove(overlay_secret_name(id));
    }

    fs::path enrolment_file() const { return paths.state / "enrolment.json"; }
    fs::path policy_file() const { return paths.state / "policy.signed"; }
    fs::path policy_state_file() const { return paths.state / "policy-state.json"; }

    void event(std::string type, const std::string& workspace, const std::string& image,
               std::optional<std::uint64_t> version, std::string message) {
        if (!is_agent_event_type(type)) {
            // The server refuses a batch holding a type it does not know: send it as an error.
            message = type + ": " + message;
            type = "error";
        }
        Json e = {{"type", std::move(type)}, {"time", clock.now()}};
        if (!workspace.empty())
            e["workspace"] = workspace;
        if (!image.empty())
            e["image"] = image;
        if (version)
            e["version"] = *version;
        if (!message.empty())
            e["message"] = message.substr(0, 1000);
        if (events.size() >= max_pending_events)
            events.erase(events.begin());
        events.push_back(std::move(e));
    }

    Result<std::unique_ptr<client::ApiClient>> api() const {
        client::ServerOptions options{enrolment->server, enrolment->ca_file,
                                      settings.network_timeout_seconds};
        auto c = HL_TRY(client::ApiClient::open(options));
        c->set_token(token);
        return c;
    }

    Status load_enrolment() {
        if (!fs::exists(enrolment_file()))
            return {};
        std::string text = HL_TRY(vault.read_authenticated(enrolment_file(), enrolment_label));
        Json doc = HL_TRY_CTX(parse_json(text), enrolment_file().string());
        Enrolment e;
        e.server = HL_TRY(field<std::string>(doc, "server", "enrolment"));
        e.ca_file = HL_TRY(field<std::string>(doc, "ca_file", "enrolment"));
        e.user = HL_TRY(field<std::string>(doc, "user", "enrolment"));
        e.agent_id = HL_TRY(field<std::string>(doc, "agent_id", "enrolment"));
        e.hostname = HL_TRY(field<std::string>(doc, "hostname", "enrolment"));
        std::string key = HL_TRY(field<std::string>(doc, "server_key", "enrolment"));
        e.server_key = HL_TRY_CTX(from_hex_fixed<32>(key), "enrolment server_key");
        Bytes t = HL_TRY(vault.get("agent-token"));
        token.assign(t.begin(), t.end());
        crypto::secure_wipe(t);
        enrolment = std::move(e);
        return {};
    }

    // The cached policy, verified again: its signature against the pinned key, its user, and
    // its serial against the authenticated record of what was fetched. A cache that fails is
    // deleted: the workspaces then wait for the server.
    void load_cached_policy() {
        if (!enrolment || !fs::exists(policy_file()))
            return;
        auto loaded = [&]() -> Status {
            std::string state = HL_TRY(vault.read_authenticated(policy_state_file(), policy_label));
            Json doc = HL_TRY(parse_json(state));
            auto serial = HL_TRY(field<std::uint64_t>(doc, "serial", "policy state"));
            auto contact = HL_TRY(field<std::int64_t>(doc, "last_contact", "policy state"));
            auto fetched = HL_TRY(field<std::int64_t>(doc, "verified_at", "policy state"));
            Bytes envelope = HL_TRY(read_file(policy_file(), policy::max_signed_policy));
            auto verified = HL_TRY(policy::verify_policy(envelope, enrolment->server_key,
                                                         enrolment->user, fetched, serial));
            if (verified.serial != serial || serial < clock.policy_serial())
                return fail(Errc::crypto, "the cached policy is not the one last fetched");
            policy = std::move(verified);
            min_serial = serial;
            last_contact = contact;
            return {};
        }();
        if (!loaded) {
            trust_problem = "cached policy refused: " + loaded.error().message;
            event("policy-refused", "", "", std::nullopt, trust_problem);
            std::error_code ec;
            fs::remove(policy_file(), ec);
            fs::remove(policy_state_file(), ec);
            policy.reset();
            return;
        }
        adopt_policy_workspaces();
    }

    void adopt_policy_workspaces() {
        std::map<std::string, WorkspaceStatus> next;
        leases.clear();
        for (const auto& w : policy->policy.workspaces) {
            WorkspaceStatus s;
            if (auto it = workspaces.find(w.workspace.id); it != workspaces.end())
                s = it->second;
            s.id = w.workspace.id;
            s.display_name = w.workspace.display_name;
            s.image = w.image.name;
            if (s.state.empty() || s.state == "revoked" || s.state == "wiped")
                s.state = "not-synced";
            s.current_version = local_version(s.image);
            if (s.current_version && s.state == "not-synced")
                s.state = "ready";
            leases[s.id] = w.lease;
            next[s.id] = std::move(s);
        }
        for (auto& [id, old] : workspaces)
            if (!next.contains(id) && (old.state == "revoked" || old.state == "wiped"))
                next[id] = old; // shown until the agent restarts
        workspaces = std::move(next);
    }

    std::optional<std::uint64_t> local_version(const std::string& image) const {
        fs::path dir = paths.image_store(image);
        if (!fs::exists(dir))
            return std::nullopt;
        auto store = trim::Store::open(dir);
        if (!store)
            return std::nullopt;
        auto v = store->current_version(image);
        return v ? *v : std::nullopt;
    }

    Status save_policy_state(std::int64_t verified_at) {
        Json doc = {
            {"serial", min_serial}, {"last_contact", last_contact}, {"verified_at", verified_at}};
        return vault.write_authenticated(policy_state_file(), policy_label, doc.dump());
    }

    // Removes an image's store and key, unless another workspace still uses the image.
    void wipe_image(const std::string& workspace, const std::string& image) {
        for (const auto& [id, s] : workspaces)
            if (id != workspace && s.image == image && s.state != "revoked" && s.state != "wiped" &&
                s.state != "expired")
                return;
        std::error_code ec;
        fs::remove_all(paths.image_store(image), ec);
        (void)vault.remove(image_secret_name(image));
        event("wiped", workspace, image, std::nullopt,
              ec ? "wipe incomplete: " + ec.message() : std::string());
    }

    // A workspace the policy no longer gives: stopped, and wiped if its lease said so.
    void revoke(const std::string& id, const policy::Lease& lease, const std::string& why) {
        auto& s = workspaces[id];
        s.state = "revoked";
        s.last_error = why;
        vms_to_stop.insert(id);
        event("lease-expired", id, s.image, s.current_version, why);
        if (lease.on_expiry == policy::OnExpiry::stop_and_wipe) {
            wipe_overlay(id);
            wipe_image(id, s.image);
            s.state = "wiped";
            s.current_version.reset();
        }
    }

    std::int64_t lease_end(const policy::Lease& lease) const {
        std::int64_t end = policy ? policy->expires_at : 0;
        if (lease.expires_at > 0)
            end = std::min(end, lease.expires_at);
        // An offline limit shorter than two refreshes means "online only": the workspace runs
        // while the agent reaches the server at least that often.
        std::int64_t offline =
            std::max<std::int64_t>(lease.offline_limit, 2LL * settings.policy_refresh_seconds);
        return std::min(end, last_contact + offline);
    }

    // How long before its end a lease is warned about: the setting, but never more than a
    // quarter of the offline limit (else a short limit would warn all the time).
    std::int64_t warning_window(const policy::Lease& lease) const {
        std::int64_t offline =
            std::max<std::int64_t>(lease.offline_limit, 2LL * settings.policy_refresh_seconds);
        return std::min(settings.lease_warning_seconds, offline / 4);
    }

    void enforce_locked() {
        std::int64_t now = clock.now();
        for (auto& [id, s] : workspaces) {
            auto lease = leases.find(id);
            if (lease == leases.end())
                continue;
            s.lease_ends = lease_end(lease->second);
            if (now >= s.lease_ends) {
                s.lease_state = "expired";
                if (s.state != "expired" && s.state != "wiped") {
                    s.state = "expired";
                    s.last_error = "the lease ended: connect to the server to renew it";
                    vms_to_stop.insert(id);
                    event("lease-expired", id, s.image, s.current_version, s.last_error);
                    if (lease->second.on_expiry == policy::OnExpiry::stop_and_wipe) {
                        wipe_overlay(id);
                        wipe_image(id, s.image);
                        s.state = "wiped";
                        s.current_version.reset();
                    }
                }
            } else if (now + warning_window(lease->second) >= s.lease_ends) {
                s.lease_state = "warning";
                if (warned.insert(id).second)
                    event("lease-warning", id, s.image, s.current_version,
                          "the lease ends in " + std::to_string((s.lease_ends - now) / 60) +
                              " minutes unless the server is reached");
            } else {
                s.lease_state = "valid";
                warned.erase(id);
                if (s.state == "expired")
                    s.state = s.current_version ? "ready" : "not-synced";
            }
        }
    }

    Status refresh_policy() {
        auto c = HL_TRY(api());
        auto text = c->get_text("/v1/agent/policy");
        std::lock_guard lock(mutex);
        if (!text) {
            if (text.error().code == Errc::crypto || text.error().code == Errc::denied) {
                // The server no longer accepts this endpoint (revoked, or its user left the
                // directory): every workspace is revoked as its lease says.
                std::string why = "the server refused this endpoint: " + text.error().message;
                for (auto& [id, lease] : leases)
                    revoke(id, lease, why);
                leases.clear();
                policy.reset();
                std::error_code ec;
                fs::remove(policy_file(), ec);
                fs::remove(policy_state_file(), ec);
            }
            return std::unexpected(std::move(text).error());
        }
        std::int64_t now = clock.now();
        auto verified = policy::verify_policy(as_bytes(*text), enrolment->server_key,
                                              enrolment->user, now, min_serial);
        if (!verified) {
            event("policy-refused", "", "", std::nullopt, verified.error().message);
            return fail(verified.error().code,
                        "the server's policy was refused: " + verified.error().message);
        }
        // Workspaces this policy no longer gives are revoked first, while their status (and
        // the image they use) is still known.
        std::set<std::string> kept;
        for (const auto& w : verified->policy.workspaces)
            kept.insert(w.workspace.id);
        for (auto& [id, lease] : leases)
            if (!kept.contains(id))
                revoke(id, lease, "the workspace is no longer assigned to " + enrolment->user);
        policy = std::move(*verified);
        min_serial = policy->serial;
        clock.set_policy_serial(min_serial);
        last_contact = now;
        HL_TRY(write_file_atomic(policy_file(), as_bytes(*text), Durability::fsync,
                                 FileMode::owner_only));
        HL_TRY(save_policy_state(now));
        HL_TRY(clock.save());
        adopt_policy_workspaces();
        trust_problem.clear();
        next_refresh = now + settings.policy_refresh_seconds;
        return {};
    }

    Result<trim::KeySet> image_keys(client::ApiClient& c, const std::string& image) {
        auto stored = vault.get(image_secret_name(image));
        crypto::Key secret{};
        if (stored && stored->size() == secret.size()) {
            std::copy(stored->begin(), stored->end(), secret.begin());
        } else {
            Json doc = HL_TRY(c.get("/v1/agent/images/" + client::url_encode(image) + "/key"));
            std::string hex = HL_TRY(field<std::string>(doc, "family_secret", "image key"));
            secret = HL_TRY_CTX(from_hex_fixed<32>(hex), "image key");
            HL_TRY(vault.put(image_secret_name(image), secret));
        }
        trim::KeySet keys{trim::FamilyKeys(secret), enrolment->server_key, std::nullopt};
        crypto::secure_wipe(secret);
        if (stored)
            crypto::secure_wipe(*stored);
        return keys;
    }

    std::set<fs::path> media_seen; // media folders found at the last look

    std::vector<fs::path> media_folders() const {
        std::vector<fs::path> out;
        for (const auto& root : settings.media_roots) {
            std::error_code ec;
            for (const auto& entry : fs::directory_iterator(root, ec))
                if (entry.is_directory(ec) && trim::is_media_folder(entry.path()))
                    out.push_back(entry.path());
        }
        return out;
    }

    // A media folder holding image's repository (its version pointer and manifests).
    std::optional<fs::path> media_holding(const std::string& image) const {
        for (auto& folder : media_folders()) {
            std::error_code ec;
            if (fs::exists(folder / trim::latest_path(image), ec))
                return folder;
        }
        return std::nullopt;
    }

    std::vector<fs::path> seeds_for(const std::string& workspace) const {
        std::vector<fs::path> out;
        if (auto it = settings.seeds.find(workspace); it != settings.seeds.end())
            for (const auto& folder : it->second)
                if (fs::is_directory(folder))
                    out.push_back(folder);
        for (auto& folder : media_folders())
            out.push_back(std::move(folder));
        return out;
    }

    Status sync_workspace(const std::string& id) {
        std::string image;
        {
            std::lock_guard lock(mutex);
            auto& s = workspaces.at(id);
            if (s.state == "expired" || s.state == "wiped" || s.state == "revoked" ||
                !leases.contains(id))
                return {};
            image = s.image;
            s.state = "syncing";
            s.stage.clear();
            s.progress_done = s.progress_total = 0;
        }
        auto c = api();
        Result<trim::SyncResult> result = std::unexpected(Error{Errc::io, ""});
        if (!c) {
            result = std::unexpected(c.error());
        } else {
            auto keys = image_keys(**c, image);
            if (!keys) {
                result = std::unexpected(keys.error());
            } else {
                HL_TRY(ensure_private_dir(paths.images()));
                trim::SyncOptions o;
                o.from = enrolment->server + "/v1/images/" + client::url_encode(image) + "/repo";
                o.image = image;
                o.store = paths.image_store(image);
                o.seeds = seeds_for(id);
                o.source.ca_file = enrolment->ca_file;
                o.source.timeout_seconds = settings.network_timeout_seconds;
                o.source.max_connections = static_cast<int>(settings.sync_workers);
                o.source.bearer_token = token;
                o.source.max_bytes_per_second = settings.max_bytes_per_second;
                o.workers = settings.sync_workers;
                // Received chunks are made durable often: a transfer cut by a crash or a stop
                // loses at most this much.
                o.checkpoint_bytes = 32ull << 20;
                o.now = clock.now();
                {
                    // A running VM reads its version's chunks: keep every version until it stops.
                    std::lock_guard lock(mutex);
                    if (images_in_use.contains(image))
                        o.keep_versions = 1u << 20;
                }
                StatusProgress progress(mutex, workspaces.at(id));
                o.progress = &progress;
                result = trim::sync_image(o, *keys);
                // Offline (a branch office cut off, a laptop on a train): removable media
                // carrying the image serve as the repository, verified with the same keys and
                // the pinned server key; the server is asked again at the next sync.
                if (!result && result.error().code == Errc::network) {
                    if (auto media = media_holding(image)) {
                        o.from = media->string();
                        auto from_media = trim::sync_image(o, *keys);
                        if (from_media) {
                            // What came from the media's repository counts as seeded: none of
                            // it crossed the network.
                            from_media->from_seeds.push_back(
                                {media->string(), from_media->bytes_fetched});
                            from_media->bytes_fetched = 0;
                        }
                        result = std::move(from_media);
                    }
                }
            }
        }
        std::lock_guard lock(mutex);
        auto& s = workspaces.at(id);
        if (!result) {
            s.state = s.current_version ? "ready" : "error";
            s.last_error = result.error().message;
            event("sync-failed", id, image, s.current_version, s.last_error);
            return std::unexpected(result.error());
        }
        s.state = "ready";
        s.last_error.clear();
        s.current_version = result->version;
        s.available_version = result->version;
        std::uint64_t seeds = 0;
        for (const auto& from : result->from_seeds)
            if (from.seed != "zero") // all-zero blocks come from nowhere
                seeds += from.bytes;
        if (result->changed) {
            s.bytes_network = result->bytes_fetched;
            s.bytes_seeds = seeds;
            event("sync-done", id, image, result->version,
                  std::to_string(result->bytes_fetched) + " bytes from the server, " +
                      std::to_string(seeds) + " from this endpoint");
        }
        return {};
    }

    // Starts the VM of workspace w on the given stored version of its image.
    Result<std::unique_ptr<WorkspaceVm>> start_vm(const policy::EffectiveWorkspace& w,
                                                  std::uint64_t version, bool resume = false) {
        const std::string& id = w.workspace.id;
        const std::string& image = w.image.name;
        Bytes secret = HL_TRY_CTX(vault.get(image_secret_name(image)),
                                  "the key of image '" + image + "' (sync it first)");
        if (secret.size() != 32)
            return fail(Errc::corrupt, "the stored key of image '" + image + "' is damaged");
        crypto::Key k;
        std::copy(secret.begin(), secret.end(), k.begin());
        crypto::secure_wipe(secret);
        trim::FamilyKeys family(k);
        crypto::secure_wipe(k);
        fs::path store = paths.image_store(image);
        auto manifest =
            HL_TRY(trim::read_stored_manifest(store, image, version, enrolment->server_key));
        auto reader = HL_TRY(trim::ImageReader::open(store, std::move(manifest), family));

        HL_TRY(ensure_private_dir(overlays()));
        bool revertible = w.workspace.persistence == policy::Persistence::revertible;
        std::error_code ec;
        // The overlay holds block-level changes to one version of the image: on another
        // version it would corrupt the guest's file system. A revertible workspace starts
        // clean anyway; a persistent one keeps the old overlay next to the new one.
        auto base = read_text_file(overlay_base_file(id), 64);
        if (fs::exists(overlay_file(id), ec) &&
            (revertible || !base || *base != std::to_string(version)) && !resume) {
            if (revertible || !base) {
                fs::remove(overlay_file(id), ec);
            } else {
                fs::path kept = overlays() / fmt::format("{}.v{}.qcow2", id, *base);
                fs::rename(overlay_file(id), kept, ec);
                event("overlay-kept", id, image, version,
                      "the image changed under a persistent workspace: its previous changes "
                      "are kept in " +
                          kept.filename().string());
            }
        }
        std::string overlay_key;
        if (auto stored = vault.get(overlay_secret_name(id));
            stored && fs::exists(overlay_file(id)))
            overlay_key.assign(stored->begin(), stored->end());
        else {
            fs::remove(overlay_file(id), ec); // an overlay without its key is unreadable
            overlay_key = new_overlay_key();
            HL_TRY(vault.put(overlay_secret_name(id), as_bytes(overlay_key)));
        }
        WorkspaceVmConfig c;
        c.id = id;
        c.display_name = w.workspace.display_name;
        c.colour = w.workspace.frame_colour;
        c.store_dir = store;
        c.image = std::make_shared<trim::ImageReader>(std::move(reader));
        c.run_dir = paths.runtime / "vms" / id;
        c.overlay = overlay_file(id);
        c.overlay_key = std::move(overlay_key);
        c.revertible = revertible;
        c.memory_mib = w.workspace.memory_mib;
        c.network = w.workspace.network.mode != policy::NetworkMode::off;
        auto flow = [](policy::DataFlow f) {
            switch (f) {
            case policy::DataFlow::host_to_guest:
                return guest::Direction::host_to_guest;
            case policy::DataFlow::guest_to_host:
                return guest::Direction::guest_to_host;
            case policy::DataFlow::both:
                return guest::Direction::both;
            case policy::DataFlow::off:
                break;
            }
            return guest::Direction::off;
        };
        c.controls.clipboard = flow(w.controls.clipboard);
        c.controls.file_transfer = flow(w.controls.file_transfer);
        c.controls.printing = w.controls.printing == policy::Printing::on;
        c.controls.removable_media = w.controls.removable_media != policy::RemovableMedia::off;
        c.display = settings.vm_display;
        if (resume) {
            Bytes key = HL_TRY_CTX(vault.get(state_secret_name(id)), "the suspended state's key");
            if (key.size() != c.state_key.size())
                return fail(Errc::corrupt, "the suspended state's key is damaged");
            std::copy(key.begin(), key.end(), c.state_key.begin());
            crypto::secure_wipe(key);
            c.resume_from = state_file(id);
            // The apps that ran at the suspend still run; unknown after an agent restart.
            auto known = suspended_apps.find(id);
            c.apps_running =
                known != suspended_apps.end() ? known->second : std::set<std::int64_t>{-1};
        }
        if (settings.accel == "kvm")
            c.accel = Accel::kvm;
        else if (settings.accel == "tcg")
            c.accel = Accel::tcg;
        c.on_apps = [this, id, image, version](const std::vector<guest::App>& apps) {
            guest_apps(id, image, version, apps);
        };
        c.on_event = [this, id, image, version](const std::string& type, const Json& detail) {
            if (type != "guest-error" && type != "image-read-error" &&
                type != "guest-channel-closed")
                return;
            std::lock_guard lock(mutex);
            event(type, id, image, version, detail.value("message", std::string()));
        };
        ::chmod(paths.runtime.c_str(), 0700);
        auto vm = HL_TRY(WorkspaceVm::start(std::move(c)));
        HL_TRY(write_file_atomic(overlay_base_file(id), as_bytes(std::to_string(version)),
                                 Durability::fsync, FileMode::owner_only));
        std::lock_guard lock(mutex);
        images_in_use.insert(image);
        return vm;
    }

    // Suspends workspace id's running VM (vm_mutex held); event is what the server hears.
    Status suspend_locked(const std::string& id, const std::string& event_type) {
        auto it = vms.find(id);
        if (it == vms.end() || it->second->state() != "running")
            return fail(Errc::not_found, "workspace '" + id + "' is not running");
        crypto::Key key;
        crypto::random_bytes(key);
        auto put = vault.put(state_secret_name(id), key);
        suspended_apps[id] = it->second->apps_running();
        Status saved = put ? it->second->suspend(state_file(id), key) : put;
        crypto::secure_wipe(key);
        vms.erase(it);
        vm_stopped(id);
        std::lock_guard lock(mutex);
        auto& s = workspaces[id];
        if (!saved) {
            drop_state(id, false);
            event("suspend-failed", id, s.image, s.current_version, saved.error().message);
            return saved;
        }
        event(event_type, id, s.image, s.current_version, "");
        return {};
    }

    // Whether workspace id has a suspended state made on this version of its image.
    bool resumable(const std::string& id, std::uint64_t version) const {
        std::error_code ec;
        auto base = read_text_file(overlay_base_file(id), 64);
        return fs::exists(state_file(id), ec) && fs::exists(overlay_file(id), ec) && base &&
               *base == std::to_string(version);
    }

    // After a VM stopped: its image may be pruned again.
    void vm_stopped(const std::string& id) {
        std::lock_guard lock(mutex);
        if (auto it = workspaces.find(id); it != workspaces.end())
            images_in_use.erase(it->second.image);
    }

    // Sends the app reports that changed since the server last took one for their image
    // version. A server that cannot be reached gets them at a later cycle; a refusal is an
    // event (and the report goes again when the guest lists its apps again).
    void flush_app_reports() {
        std::map<std::string, AppReport> batch;
        std::string server;
        {
            std::lock_guard lock(mutex);
            if (app_reports.empty() || !enrolment)
                return;
            batch.swap(app_reports);
            server = enrolment->server;
        }
        auto ledger = AppReportLedger::load(paths.state / "app-reports.json");
        auto c = api();
        for (auto& [key, report] : batch) {
            if (ledger.sent(server, report))
                continue;
            auto sent = c ? (*c)->put(app_report_path(report), report.body)
                          : Result<Json>(std::unexpected(c.error()));
            std::lock_guard lock(mutex);
            for (const auto& problem : report.problems)
                event("error", report.workspace, report.image, report.version,
                      "app report: " + problem);
            report.problems.clear();
            if (!sent && sent.error().code == Errc::network) {
                app_reports.try_emplace(key, std::move(report)); // a newer one wins
                continue;
            }
            if (!sent) {
                event("error", report.workspace, report.image, report.version,
                      "the server refused the apps the guest holds: " + sent.error().message);
                continue;
            }
            if (auto recorded = ledger.record(server, report); !recorded)
                event("error", report.workspace, report.image, report.version,
                      "app report: " + recorded.error().message);
        }
    }

    void flush_events() {
        std::vector<Json> batch;
        {
            std::lock_guard lock(mutex);
            if (events.empty() || !enrolment)
                return;
            batch.swap(events);
        }
        auto c = api();
        bool sent = c && (*c)->post("/v1/agent/events", {{"events", batch}}).has_value();
        if (!sent) {
            std::lock_guard lock(mutex);
            batch.insert(batch.end(), events.begin(), events.end());
            events.swap(batch);
            while (events.size() > max_pending_events)
                events.erase(events.begin());
        }
    }
};

Agent::Agent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Agent::~Agent() = default;

Result<std::unique_ptr<Agent>> Agent::open(AgentPaths paths, AgentSettings settings) {
    HL_TRY(ensure_private_dir(paths.state));
    Vault vault = HL_TRY(Vault::open(paths.state / "vault"));
    auto impl = std::make_unique<Impl>(paths, std::move(settings), std::move(vault));
    std::string clock_problem;
    auto loaded = TrustedClock::load(impl->vault, paths.state / "clock.json");
    if (loaded)
        impl->clock = std::move(*loaded);
    else
        clock_problem = loaded.error().message; // the fresh clock replaces it at the next save
    std::unique_ptr<Agent> agent(new Agent(std::move(impl)));
    auto& d = *agent->impl_;
    if (d.settings.menu_entries) {
        // Entries run the heirloom program installed beside this one, never anything else.
        std::error_code ec;
        auto shell_paths = shell::default_shell_paths();
        auto programs = shell::programs_in(fs::read_symlink("/proc/self/exe", ec).parent_path());
        if (shell_paths && programs && !ec) {
            d.shell_paths = *shell_paths;
            d.shell_programs = *programs;
        } else {
            d.event("menu-failed", "", "", std::nullopt,
                    "no menu entries: " + (!shell_paths ? shell_paths.error().message
                                           : !programs  ? programs.error().message
                                                        : ec.message()));
        }
    }
    std::unique_lock lock(d.mutex);
    if (auto e = d.load_enrolment(); !e)
        d.last_error = "enrolment unreadable, log in again: " + e.error().message;
    d.load_cached_policy();
    if (!clock_problem.empty()) {
        // An anchor that fails its MAC was edited: no offline lease is trusted until the
        // server is reached again.
        d.last_contact = 0;
        d.trust_problem = "time anchor refused: " + clock_problem;
        d.event("policy-refused", "", "", std::nullopt, d.trust_problem);
    }
    d.enforce_locked();
    (void)d.clock.save(); // the latest time seen is remembered at once
    lock.unlock();
    d.publish_menu();
    return agent;
}

Status Agent::login(const std::string& server, const std::string& ca_file, const std::string& user,
                    const std::string& password, const std::string& hostname,
                    const std::string& negotiate) {
    std::lock_guard cycle(impl_->cycle_mutex);
    auto& d = *impl_;
    client::ServerOptions options{server, ca_file, d.settings.network_timeout_seconds};
    auto c = HL_TRY(client::ApiClient::open(options));
    Json info = HL_TRY(c->get("/v1/server"));
    Json enrolled;
    if (!negotiate.empty()) {
        c->set_negotiate(negotiate);
        enrolled = HL_TRY(c->post("/v1/enrol", {{"hostname", hostname}}));
        c->set_negotiate({});
    } else {
        enrolled = HL_TRY(
            c->post("/v1/enrol", {{"user", user}, {"password", password}, {"hostname", hostname}}));
    }
    std::string key_hex = HL_TRY(field<std::string>(enrolled, "signing_public_key", "enrolment"));
    if (key_hex != info.value("signing_public_key", std::string()))
        return fail(Errc::crypto, "the server gave two different signing keys");
    Enrolment e;
    e.server = c->url().display;
    while (!e.server.empty() && e.server.back() == '/')
        e.server.pop_back();
    e.ca_file = ca_file.empty() ? std::string() : fs::absolute(ca_file).string();
    e.user = HL_TRY(field<std::string>(enrolled, "user", "enrolment"));
    e.agent_id = HL_TRY(field<std::string>(enrolled, "agent_id", "enrolment"));
    e.hostname = hostname;
    e.server_key = HL_TRY_CTX(from_hex_fixed<32>(key_hex), "server signing key");
    std::string token = HL_TRY(field<std::string>(enrolled, "agent_token", "enrolment"));

    std::lock_guard lock(d.mutex);
    bool same = d.enrolment && d.enrolment->user == e.user && d.enrolment->server == e.server &&
                d.enrolment->server_key == e.server_key;
    if (!same) {
        // Another user or server: nothing of the previous one is kept but the image stores.
        std::error_code ec;
        fs::remove(d.policy_file(), ec);
        fs::remove(d.policy_state_file(), ec);
        d.policy.reset();
        d.min_serial = 0;
        d.clock.reset_policy_serial();
        (void)d.clock.save();
        d.last_contact = 0;
        d.workspaces.clear();
        d.leases.clear();
        for (const auto& entry : fs::directory_iterator(d.paths.state / "vault", ec))
            if (entry.path().filename().string().starts_with("image-"))
                fs::remove(entry.path(), ec);
    }
    HL_TRY(d.vault.put("agent-token", as_bytes(token)));
    Json doc = {{"server", e.server},     {"ca_file", e.ca_file},
                {"user", e.user},         {"agent_id", e.agent_id},
                {"hostname", e.hostname}, {"server_key", to_hex(e.server_key)}};
    HL_TRY(d.vault.write_authenticated(d.enrolment_file(), enrolment_label, doc.dump()));
    d.token = std::move(token);
    d.enrolment = std::move(e);
    d.next_refresh = 0;
    d.last_error.clear();
    return {};
}

Status Agent::logout() {
    stop_all_workspaces(); // their keys are about to be forgotten
    std::lock_guard cycle(impl_->cycle_mutex);
    auto& d = *impl_;
    std::unique_lock lock(d.mutex);
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(d.paths.state / "vault", ec))
        if (entry.path().extension() == ".sealed")
            fs::remove(entry.path(), ec);
    fs::remove(d.enrolment_file(), ec);
    fs::remove(d.policy_file(), ec);
    fs::remove(d.policy_state_file(), ec);
    crypto::secure_wipe(
        MutableByteView(reinterpret_cast<std::uint8_t*>(d.token.data()), d.token.size()));
    d.token.clear();
    d.enrolment.reset();
    d.policy.reset();
    d.workspaces.clear();
    d.leases.clear();
    d.events.clear();
    d.app_reports.clear();
    d.min_serial = 0;
    d.last_contact = 0;
    lock.unlock();
    d.publish_menu(); // no policy: the menu entries go
    return {};
}

bool Agent::enrolled() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->enrolment.has_value();
}

Status Agent::cycle(bool force) {
    std::lock_guard cycle(impl_->cycle_mutex);
    auto& d = *impl_;
    {
        std::lock_guard lock(d.mutex);
        if (!d.enrolment)
            return fail(Errc::not_found, "not logged in: run heirloom login");
    }
    Status first;
    bool due = force;
    {
        std::lock_guard lock(d.mutex);
        due = due || d.clock.now() >= d.next_refresh || !d.policy;
    }
    if (due) {
        auto refreshed = d.refresh_policy();
        std::lock_guard lock(d.mutex);
        if (!refreshed) {
            d.last_error = refreshed.error().message;
            first = std::unexpected(refreshed.error());
            d.next_refresh = d.clock.now() + std::min(60, d.settings.policy_refresh_seconds);
        } else {
            d.last_error.clear();
        }
        d.enforce_locked();
    }
    if (due)
        d.publish_menu(); // within seconds of a policy change, or its revocation
    // Images are synced after a policy came from the server (so the server is reachable), or,
    // when the server cannot be reached, from removable media that carry them.
    std::vector<std::string> ids;
    {
        std::lock_guard lock(d.mutex);
        bool offline = due && !first && first.error().code == Errc::network;
        for (const auto& [id, s] : d.workspaces)
            if ((due && first) || (offline && d.media_holding(s.image)))
                ids.push_back(id);
    }
    for (const auto& id : ids) {
        auto synced = d.sync_workspace(id);
        if (!synced && first) {
            first = std::unexpected(synced.error());
            std::lock_guard lock(d.mutex); // try again soon: the transfer resumes where it was
            d.next_refresh = d.clock.now() + std::min(60, d.settings.policy_refresh_seconds);
        }
    }
    {
        std::lock_guard lock(d.mutex);
        d.enforce_locked();
        (void)d.clock.save();
    }
    d.flush_app_reports();
    d.flush_events();
    return first;
}

void Agent::enforce() {
    auto& d = *impl_;
    std::set<std::string> stop;
    {
        std::lock_guard lock(d.mutex);
        d.enforce_locked();
        auto now = std::chrono::steady_clock::now();
        if (now >= d.next_clock_save) {
            (void)d.clock.save();
            d.next_clock_save = now + std::chrono::seconds(60);
        }
        stop = d.vms_to_stop;
    }
    // VMs are looked after when no launch is starting one (else at the next round, seconds
    // later): revoked or expired ones stop, dead ones restart and the user is told.
    std::unique_lock vl(d.vm_mutex, std::try_to_lock);
    if (!vl)
        return;
    for (const auto& id : stop) {
        if (auto it = d.vms.find(id); it != d.vms.end()) {
            it->second->stop(std::chrono::seconds(5));
            d.vms.erase(it);
            d.vm_stopped(id);
        }
        d.drop_state(id, false); // a revoked or expired workspace is never resumed
        std::lock_guard lock(d.mutex);
        d.vms_to_stop.erase(id);
    }
    for (auto& [id, vm] : d.vms) {
        if (vm->state() != "died")
            continue;
        auto code = vm->vm().exit_code();
        std::string why = fmt::format("the workspace VM stopped unexpectedly (exit {}); "
                                      "restarting it",
                                      code ? *code : -1);
        std::optional<policy::EffectiveWorkspace> w;
        std::optional<std::uint64_t> version;
        {
            std::lock_guard lock(d.mutex);
            auto& s = d.workspaces[id];
            s.last_error = why;
            d.event("vm-died", id, s.image, s.current_version, why);
            version = s.current_version;
            if (d.policy)
                for (const auto& e : d.policy->policy.workspaces)
                    if (e.workspace.id == id)
                        w = e;
        }
        vm->stop(std::chrono::milliseconds(0));
        if (!w || !version)
            continue;
        auto restarted = d.start_vm(*w, *version);
        if (restarted) {
            vm = std::move(*restarted);
        } else {
            std::lock_guard lock(d.mutex);
            d.workspaces[id].last_error =
                "the workspace VM died and could not be restarted: " + restarted.error().message;
        }
    }
    // VMs no launched app has used for a while are suspended: resuming costs seconds, and a
    // suspended VM costs no memory or CPU.
    if (d.settings.vm_idle_suspend_seconds > 0) {
        std::vector<std::string> idle;
        for (auto& [id, vm] : d.vms)
            if (auto t = vm->idle_for(); t && t->count() >= d.settings.vm_idle_suspend_seconds)
                idle.push_back(id);
        for (const auto& id : idle)
            (void)d.suspend_locked(id, "idle-suspended");
    }
}

Result<Json> Agent::launch(const std::string& app_id, const std::vector<std::string>& args,
                           const std::optional<fs::path>& file) {
    auto& d = *impl_;
    auto started = std::chrono::steady_clock::now();
    policy::PublishedApp app;
    policy::EffectiveWorkspace w;
    std::uint64_t version = 0;
    {
        std::lock_guard lock(d.mutex);
        if (!d.policy)
            return fail(Errc::not_found, d.enrolment ? "no policy yet: the server has not been "
                                                       "reached"
                                                     : "not logged in: run heirloom login");
        auto found = std::find_if(d.policy->policy.apps.begin(), d.policy->policy.apps.end(),
                                  [&](const policy::PublishedApp& a) { return a.id == app_id; });
        if (found == d.policy->policy.apps.end())
            return fail(Errc::not_found,
                        "no published app '" + app_id + "' (heirloom apps lists yours)");
        app = *found;
        auto ws =
            std::find_if(d.policy->policy.workspaces.begin(), d.policy->policy.workspaces.end(),
                         [&](const policy::EffectiveWorkspace& e) {
                             return e.workspace.id == app.workspace_id;
                         });
        if (ws == d.policy->policy.workspaces.end())
            return fail(Errc::not_found, "app '" + app_id + "' belongs to no workspace of yours");
        w = *ws;
        if (file) {
            // Decided before any VM starts: the policy's file transfer control.
            auto flow = static_cast<std::uint8_t>(w.controls.file_transfer);
            if (!(flow & static_cast<std::uint8_t>(policy::DataFlow::host_to_guest)))
                return fail(Errc::denied,
                            fmt::format("{} was not opened in {}: your policy does not allow "
                                        "files from this computer into workspace '{}' (file "
                                        "transfer host to guest is off)",
                                        printable(file->filename().string()), app.display_name,
                                        w.workspace.display_name));
            if (!fs::is_regular_file(*file))
                return fail(Errc::not_found, printable(file->string()) + " is not a file");
        }
        const auto& s = d.workspaces[w.workspace.id];
        if (s.state == "expired" || s.state == "revoked" || s.state == "wiped" ||
            s.lease_state == "expired")
            return fail(Errc::denied, fmt::format("workspace '{}' is {}: {}", w.workspace.id,
                                                  s.state, s.last_error));
        if (!s.current_version)
            return fail(Errc::not_found,
                        fmt::format("workspace '{}' has no image on this computer yet "
                                    "(heirloom status shows the sync)",
                                    w.workspace.id));
        version = *s.current_version;
    }
    std::lock_guard vl(d.vm_mutex);
    const std::string& id = w.workspace.id;
    auto it = d.vms.find(id);
    bool cold = false, resumed = false;
    if (it == d.vms.end() || it->second->state() == "died" || it->second->state() == "stopped") {
        if (it != d.vms.end()) {
            it->second->stop(std::chrono::milliseconds(0));
            d.vms.erase(it);
        }
        bool revertible = w.workspace.persistence == policy::Persistence::revertible;
        Result<std::unique_ptr<WorkspaceVm>> vm = std::unexpected(Error{Errc::io, ""});
        if (d.resumable(id, version)) {
            vm = d.start_vm(w, version, true);
            if (vm) {
                resumed = true;
            } else {
                std::lock_guard lock(d.mutex);
                d.event("resume-failed", id, w.image.name, version, vm.error().message);
            }
            d.drop_state(id, revertible && !vm); // used, or useless
        }
        if (!resumed) {
            vm = d.start_vm(w, version);
            cold = true;
        }
        if (!vm)
            return std::unexpected(vm.error());
        it = d.vms.emplace(id, std::move(*vm)).first;
    }
    std::vector<std::string> app_args = args;
    if (file) {
        // The file goes first, into a folder of the guest's session; the app gets its path.
        auto path =
            it->second->send_file(*file, std::chrono::seconds(d.settings.vm_boot_timeout_seconds));
        if (!path)
            return std::unexpected(path.error());
        app_args.insert(app_args.begin(), *path);
    }
    auto pid = it->second->launch(app.id, app.command, app_args,
                                  std::chrono::seconds(d.settings.vm_boot_timeout_seconds));
    std::lock_guard lock(d.mutex);
    if (!pid) {
        d.event("launch-failed", id, w.image.name, version, pid.error().message);
        return std::unexpected(pid.error());
    }
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::string kind = cold ? "cold" : (resumed ? "resumed" : "warm");
    d.event("launch", id, w.image.name, version,
            fmt::format("{} ({} launch, {:.1f} s)", app.id, kind, seconds));
    return Json{{"workspace", id},
                {"app", app.id},
                {"pid", *pid},
                {"cold", cold},
                {"resumed", resumed},
                {"seconds", seconds},
                {"accel", std::string(accel_name(it->second->accel()))}};
}

void Agent::stop_all_workspaces() {
    auto& d = *impl_;
    std::lock_guard vl(d.vm_mutex);
    for (auto& [id, vm] : d.vms) {
        vm->stop(std::chrono::seconds(5));
        d.vm_stopped(id);
    }
    d.vms.clear();
}

Status Agent::suspend_workspace(const std::string& id) {
    auto& d = *impl_;
    std::lock_guard vl(d.vm_mutex);
    return d.suspend_locked(id, "suspended");
}

Status Agent::stop_workspace(const std::string& id) {
    auto& d = *impl_;
    std::lock_guard vl(d.vm_mutex);
    auto it = d.vms.find(id);
    if (it == d.vms.end() && fs::exists(d.state_file(id))) {
        // Suspended: stopping forgets the saved state (and a revertible workspace's changes).
        bool revertible = true;
        if (auto p = current_policy())
            for (const auto& w : p->policy.workspaces)
                if (w.workspace.id == id)
                    revertible = w.workspace.persistence == policy::Persistence::revertible;
        d.drop_state(id, revertible);
        return {};
    }
    if (it == d.vms.end())
        return fail(Errc::not_found, "workspace '" + id + "' is not running");
    it->second->stop(std::chrono::seconds(10));
    d.vms.erase(it);
    d.vm_stopped(id);
    return {};
}

bool Agent::new_media() {
    auto& d = *impl_;
    auto found = d.media_folders();
    std::set<fs::path> now(found.begin(), found.end());
    std::lock_guard lock(d.mutex);
    bool appeared = std::any_of(now.begin(), now.end(),
                                [&](const fs::path& p) { return !d.media_seen.contains(p); });
    d.media_seen = std::move(now);
    return appeared && d.enrolment.has_value();
}

Status Agent::save_state() {
    std::lock_guard lock(impl_->mutex);
    return impl_->clock.save();
}

Json Agent::status() {
    auto& d = *impl_;
    std::lock_guard lock(d.mutex);
    Json out = {{"enrolled", d.enrolment.has_value()},
                {"last_error", d.last_error},
                {"trust_problem", d.trust_problem},
                {"clock_behind_seconds", d.clock.clock_behind()},
                {"pending_events", d.events.size()}};
    if (d.enrolment)
        out["enrolment"] = {{"server", d.enrolment->server},
                            {"user", d.enrolment->user},
                            {"agent_id", d.enrolment->agent_id}};
    if (d.policy)
        out["policy"] = {{"serial", d.policy->serial},
                         {"issued_at", d.policy->issued_at},
                         {"expires_at", d.policy->expires_at},
                         {"last_contact", d.last_contact}};
    std::unique_lock vl(d.vm_mutex, std::try_to_lock);
    Json list = Json::array();
    for (const auto& [id, s] : d.workspaces) {
        Json j = to_json(s);
        if (!vl)
            j["vm"] = {{"state", "busy"}}; // a launch is starting a VM right now
        else if (auto it = d.vms.find(id); it != d.vms.end())
            j["vm"] = it->second->status();
        else if (std::error_code ec; fs::exists(d.state_file(id), ec))
            j["vm"] = {{"state", "suspended"}};
        else
            j["vm"] = {{"state", "stopped"}};
        list.push_back(std::move(j));
    }
    out["workspaces"] = list;
    return out;
}

Result<policy::SignedPolicy> Agent::current_policy() {
    std::lock_guard lock(impl_->mutex);
    if (!impl_->policy)
        return fail(Errc::not_found, impl_->enrolment
                                         ? "no policy yet: the server has not been reached"
                                         : "not logged in: run heirloom login");
    return *impl_->policy;
}

} // namespace heirloom::agent
