#pragma once

// Evaluation: from the whole policy set, the workspaces one user gets and the device controls
// and lease each runs under. Where several assignments give the same workspace, the most
// restrictive value of each control wins, unless some are marked overriding, in which case
// only those are merged.

#include "heirloom/policy/model.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace heirloom::policy {

// How long the agent may run a workspace and what happens when it may not any more.
struct Lease {
    std::int64_t expires_at = 0; // unix seconds; 0 = never
    std::int64_t offline_limit = 0;
    OnExpiry on_expiry = OnExpiry::stop;
    bool operator==(const Lease&) const = default;
};

// The assignment id that decided each merged value, to answer "why does Bob get clipboard
// off?". For a value combined from several (host-to-guest with guest-to-host gives off), it is
// the assignment that last narrowed it, in policy set order.
struct DecidedBy {
    std::string clipboard;
    std::string file_transfer;
    std::string printing;
    std::string removable_media;
    std::string expires_at;
    std::string offline_limit;
    std::string on_expiry;
    bool operator==(const DecidedBy&) const = default;
};

// One workspace as this user gets it.
struct EffectiveWorkspace {
    Workspace workspace;
    ImageRef image;
    DeviceControls controls;
    Lease lease;
    DecidedBy decided_by;
    std::vector<std::string> assignments; // the ids that were merged, in policy set order
    bool operator==(const EffectiveWorkspace&) const = default;
};

// Everything one user gets: their workspaces and the apps published from them.
struct EffectivePolicy {
    std::string user;
    std::vector<EffectiveWorkspace> workspaces;
    std::vector<PublishedApp> apps;
    bool operator==(const EffectivePolicy&) const = default;
};

// The effective policy of user, a member of groups, at time now (unix seconds). Assignments
// expired at now are ignored. Names match exactly: the directory, not this code, decides who
// is who. Expects a set that passed validate.
EffectivePolicy evaluate(const PolicySet& set, std::string_view user,
                         std::span<const std::string> groups, std::int64_t now);

// The more restrictive of two data flows: only directions both allow.
DataFlow most_restrictive(DataFlow a, DataFlow b);

} // namespace heirloom::policy
