#pragma once

// The endpoint agent's core, for one user: enrolment, the signed policy and its offline lease,
// background image sync, enforcement on expiry or revocation, events to the server. The daemon
// (heirloom-agent) runs it on a timer and on demand; the `heirloom` command line drives it over
// the daemon's socket. Thread-safe: status() may be called while cycle() runs.

#include "heirloom/agent/clock.hpp"
#include "heirloom/agent/paths.hpp"
#include "heirloom/agent/vault.hpp"
#include "heirloom/common/json.hpp"
#include "heirloom/policy/signed.hpp"

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace heirloom::agent {

// Local settings ($XDG_CONFIG_HOME/heirloom/agent.json); unknown keys are refused.
struct AgentSettings {
    int policy_refresh_seconds = 300; // how often the policy is fetched and images checked
    std::int64_t lease_warning_seconds = 4 * 3600; // warn this long before a lease ends
    unsigned sync_workers = 2;                     // chunks fetched at once: gentle on the user
    std::uint64_t max_bytes_per_second = 0;        // download limit for image sync; 0: none
    int network_timeout_seconds = 20;
    std::map<std::string, std::vector<fs::path>> seeds; // workspace id → Trim Transfer folders
    std::vector<fs::path> media_roots; // where removable media appear; seeds found there are used
    int vm_boot_timeout_seconds = 300; // a launch waits this long for a cold VM's guest agent
    bool vm_display = true;            // show the guest's windows (off: headless, for tests)
    std::string accel = "auto";        // VM acceleration: auto (probe KVM), kvm or tcg
    int vm_idle_suspend_seconds = 900; // suspend a VM no launched app has used this long; 0: never
    bool menu_entries =
        true; // the published apps in the desktop's menu (docs/shell-integration.md)
};
Result<AgentSettings> load_settings(const fs::path& file);
Result<AgentSettings> parse_settings(std::string_view text);

struct Enrolment {
    std::string server;
    std::string ca_file;
    std::string user;
    std::string agent_id;
    std::string hostname;
    crypto::SigningPublicKey server_key{}; // pinned at enrolment
};

struct WorkspaceStatus {
    std::string id;
    std::string display_name;
    std::string image;
    std::optional<std::uint64_t> current_version;   // in the local store
    std::optional<std::uint64_t> available_version; // latest the server offered
    std::string state; // not-synced, syncing, ready, expired, revoked, wiped, error
    std::string stage; // while syncing: what the image engine is doing
    std::uint64_t progress_done = 0;
    std::uint64_t progress_total = 0;
    std::uint64_t bytes_network = 0; // last sync: from the server
    std::uint64_t bytes_seeds = 0;   // last sync: from the store, seeds and media
    std::int64_t lease_ends = 0;     // trusted unix time the workspace must stop (0: never)
    std::string lease_state;         // valid, warning, expired
    std::string last_error;
};

class Agent {
  public:
    static Result<std::unique_ptr<Agent>> open(AgentPaths paths, AgentSettings settings);
    ~Agent();

    // Enrols this endpoint for user with the server (password checked by the directory),
    // pins the server's signing key and keeps the agent token sealed. Replaces an enrolment.
    // With a negotiate token (Kerberos single sign-on, heirloom/negotiate) the token proves
    // the user instead, and user and password are not used.
    Status login(const std::string& server, const std::string& ca_file, const std::string& user,
                 const std::string& password, const std::string& hostname,
                 const std::string& negotiate = {});
    // Forgets the user's secrets: token, image keys, cached policy. Image stores stay
    // (encrypted, useless without the keys) so a new login syncs only what changed.
    Status logout();
    bool enrolled() const;

    // One round: the policy (fetched when due, or when force), then every assigned image
    // synced, then leases enforced. Errors are recorded per workspace and reported as events;
    // the return value is the first error, for callers that want one.
    Status cycle(bool force);
    // Enforces leases only (cheap; the daemon runs it every few seconds, also while a cycle
    // waits on the network), and saves the time anchor every minute.
    void enforce();
    // Saves the time anchor now (at shutdown).
    Status save_state();
    // True when removable media with a Heirloom seed appeared under a media root since the
    // last call (the daemon then starts a round, so an inserted stick is used at once).
    bool new_media();

    Json status();

    // Starts a published app of the current policy in its workspace's VM, starting the VM
    // first when it is not running (a cold launch). Refused when the workspace's lease has
    // ended, it was revoked, or its image is not synced yet. Returns the workspace, the app,
    // the guest pid, whether the launch was cold, its seconds and the VM's acceleration.
    // With file, a host file the app should open: refused before any VM starts unless the
    // workspace's file transfer control allows host to guest; else sent into the guest and
    // given to the app as its first argument.
    Result<Json> launch(const std::string& app_id, const std::vector<std::string>& args,
                        const std::optional<fs::path>& file = std::nullopt);
    // Stops a workspace's VM (a revertible workspace loses its changes); a suspended one
    // forgets its saved state.
    Status stop_workspace(const std::string& id);
    // Suspends a running workspace's VM to disk (memory and devices, encrypted); the next
    // launch resumes it in seconds instead of booting.
    Status suspend_workspace(const std::string& id);
    // Stops every running VM (at logout and when the daemon stops).
    void stop_all_workspaces();

    // The apps and workspaces of the verified cached policy.
    Result<policy::SignedPolicy> current_policy();

  private:
    struct Impl;
    explicit Agent(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// JSON forms, shared by the daemon and the command line.
Json to_json(const WorkspaceStatus& s);

} // namespace heirloom::agent
