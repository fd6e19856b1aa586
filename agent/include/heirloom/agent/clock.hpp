#pragma once

// Time the agent can trust for leases. Setting the system clock back must not extend a lease,
// so "now" is never earlier than the latest time this endpoint has seen (a high-water mark kept
// in an authenticated state file), nor than the time the last anchor plus the time elapsed
// since, by CLOCK_BOOTTIME, which counts suspend and is not set by date(1), within one boot.

#include "heirloom/agent/vault.hpp"

#include <cstdint>

namespace heirloom::agent {

class TrustedClock {
  public:
    // Loads the anchor from file; a missing file starts from the system clock. A file that
    // fails its MAC is an error: the caller must not trust any lease until the server is
    // reached again.
    static Result<TrustedClock> load(const Vault& vault, fs::path file);
    // A clock from the system time alone, saved to file (replacing what is there).
    static TrustedClock fresh(const Vault& vault, fs::path file) {
        return TrustedClock(vault, std::move(file));
    }

    // The trusted time, unix seconds; advances the high-water mark.
    std::int64_t now();
    // How far the system clock is behind the trusted time (0 when it is not).
    std::int64_t clock_behind() const { return behind_; }
    // Makes the high-water mark and a new anchor durable.
    Status save();

    // The highest policy serial accepted, kept here too: replacing the cached policy and its
    // state file with an older pair is then noticed.
    std::uint64_t policy_serial() const { return policy_serial_; }
    void set_policy_serial(std::uint64_t serial) {
        policy_serial_ = std::max(policy_serial_, serial);
    }
    // For a new enrolment (another user or server, whose serials are not comparable).
    void reset_policy_serial() { policy_serial_ = 0; }

  private:
    TrustedClock(const Vault& vault, fs::path file) : vault_(&vault), file_(std::move(file)) {}
    const Vault* vault_;
    fs::path file_;
    std::int64_t high_water_ = 0;
    std::string boot_id_;
    std::int64_t anchor_wall_ = 0; // trusted time when the anchor was taken
    std::int64_t anchor_boot_ = 0; // CLOCK_BOOTTIME then
    std::int64_t behind_ = 0;
    std::uint64_t policy_serial_ = 0;
};

} // namespace heirloom::agent
