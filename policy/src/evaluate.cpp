#include "heirloom/policy/evaluate.hpp"

#include <algorithm>

namespace heirloom::policy {

namespace {

bool applies_to(const Principal& principal, std::string_view user,
                std::span<const std::string> groups) {
    if (principal.kind == PrincipalKind::user)
        return !user.empty() && principal.name == user;
    return std::ranges::find(groups, principal.name) != groups.end();
}

bool is_expired(const Assignment& assignment, std::int64_t now) {
    return assignment.expires_at != 0 && now >= assignment.expires_at;
}

// Lower is more restrictive; the ordering the merge keeps the minimum of.
int rank(Printing p) {
    return p == Printing::off ? 0 : 1;
}
int rank(RemovableMedia m) {
    switch (m) {
    case RemovableMedia::off:
        return 0;
    case RemovableMedia::read_only:
        return 1;
    case RemovableMedia::read_write:
        return 2;
    }
    return 0;
}
int rank(OnExpiry e) {
    return e == OnExpiry::stop_and_wipe ? 0 : 1;
}

// An expiry of 0 means never, which is the least restrictive.
bool expires_sooner(std::int64_t a, std::int64_t b) {
    if (a == 0)
        return false;
    return b == 0 || a < b;
}

// Folds assignment b into the effective workspace so far; a value changes, and is credited
// to b, only when b makes it strictly more restrictive.
void merge(EffectiveWorkspace& into, const Assignment& b) {
    auto& c = into.controls;
    auto& why = into.decided_by;
    DataFlow clipboard = most_restrictive(c.clipboard, b.controls.clipboard);
    if (clipboard != c.clipboard) {
        c.clipboard = clipboard;
        why.clipboard = b.id;
    }
    DataFlow transfer = most_restrictive(c.file_transfer, b.controls.file_transfer);
    if (transfer != c.file_transfer) {
        c.file_transfer = transfer;
        why.file_transfer = b.id;
    }
    if (rank(b.controls.printing) < rank(c.printing)) {
        c.printing = b.controls.printing;
        why.printing = b.id;
    }
    if (rank(b.controls.removable_media) < rank(c.removable_media)) {
        c.removable_media = b.controls.removable_media;
        why.removable_media = b.id;
    }
    if (expires_sooner(b.expires_at, into.lease.expires_at)) {
        into.lease.expires_at = b.expires_at;
        why.expires_at = b.id;
    }
    if (b.offline_limit < into.lease.offline_limit) {
        into.lease.offline_limit = b.offline_limit;
        why.offline_limit = b.id;
    }
    if (rank(b.on_expiry) < rank(into.lease.on_expiry)) {
        into.lease.on_expiry = b.on_expiry;
        why.on_expiry = b.id;
    }
    into.assignments.push_back(b.id);
}

EffectiveWorkspace start_from(const Workspace& workspace, const ImageRef& image,
                              const Assignment& first) {
    EffectiveWorkspace e;
    e.workspace = workspace;
    e.image = image;
    e.controls = first.controls;
    e.lease = Lease{first.expires_at, first.offline_limit, first.on_expiry};
    e.decided_by = DecidedBy{first.id, first.id, first.id, first.id, first.id, first.id, first.id};
    e.assignments.push_back(first.id);
    return e;
}

const ImageRef* find_image(const PolicySet& set, std::string_view name) {
    for (const auto& image : set.images)
        if (image.name == name)
            return &image;
    return nullptr;
}

} // namespace

DataFlow most_restrictive(DataFlow a, DataFlow b) {
    return static_cast<DataFlow>(static_cast<std::uint8_t>(a) & static_cast<std::uint8_t>(b));
}

EffectivePolicy evaluate(const PolicySet& set, std::string_view user,
                         std::span<const std::string> groups, std::int64_t now) {
    EffectivePolicy effective;
    effective.user = std::string(user);
    for (const auto& workspace : set.workspaces) {
        std::vector<const Assignment*> matching;
        for (const auto& assignment : set.assignments)
            if (assignment.workspace_id == workspace.id && !is_expired(assignment, now) &&
                applies_to(assignment.principal, user, groups))
                matching.push_back(&assignment);
        const ImageRef* image = find_image(set, workspace.image);
        if (matching.empty() || image == nullptr)
            continue;
        // An overriding assignment replaces the ordinary ones rather than joining them.
        bool any_overriding = std::ranges::any_of(
            matching, [](const Assignment* a) { return a->overriding == Overriding::yes; });
        if (any_overriding)
            std::erase_if(matching,
                          [](const Assignment* a) { return a->overriding == Overriding::no; });
        EffectiveWorkspace merged = start_from(workspace, *image, *matching.front());
        for (std::size_t i = 1; i < matching.size(); ++i)
            merge(merged, *matching[i]);
        effective.workspaces.push_back(std::move(merged));
    }
    for (const auto& app : set.apps) {
        bool granted = std::ranges::any_of(effective.workspaces, [&](const EffectiveWorkspace& w) {
            return w.workspace.id == app.workspace_id;
        });
        if (granted)
            effective.apps.push_back(app);
    }
    return effective;
}

} // namespace heirloom::policy
