#pragma once

// The policy model: images, workspaces, published applications and the assignments that give
// them to directory users and groups. Plain values with no I/O; the server stores them, the
// agent receives one user's evaluated, signed slice of them.

#include "heirloom/common/error.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace heirloom::policy {

// An image the server offers, optionally held to a version range by the admin.
struct ImageRef {
    std::string name;
    std::optional<std::uint64_t> minimum_version;
    std::optional<std::uint64_t> pinned_version;
    bool operator==(const ImageRef&) const = default;
};

enum class Persistence { persistent, revertible };
enum class NetworkMode { nat, off, allow_list };

// Guest networking; allowed_hosts is only meaningful (and only allowed) for allow_list.
struct Network {
    NetworkMode mode = NetworkMode::nat;
    std::vector<std::string> allowed_hosts;
    bool operator==(const Network&) const = default;
};

// An image plus the settings it runs with on the endpoint.
struct Workspace {
    std::string id;
    std::string display_name;
    std::string image;
    Persistence persistence = Persistence::persistent;
    std::uint32_t memory_mib = 1024;
    std::optional<std::string> frame_colour;            // "#rrggbb"
    std::optional<std::vector<std::string>> host_check; // argv run on the host before launch
    Network network;
    bool operator==(const Workspace&) const = default;
};

// An application inside a workspace, shown on the host as if it were local.
struct PublishedApp {
    std::string id;
    std::string workspace_id;
    std::string display_name;
    std::vector<std::string> command; // argv inside the guest
    std::string icon;
    std::vector<std::string> file_types;   // MIME types the app opens
    std::vector<std::string> url_patterns; // URLs to open in the guest instead of the host
    bool desktop_shortcut = false;         // also a launcher on the user's desktop
    bool operator==(const PublishedApp&) const = default;
};

// Which way data may cross between host and guest. The values are direction bit sets, so
// "both directions allowed by every assignment" is a bitwise and.
enum class DataFlow : std::uint8_t { off = 0, host_to_guest = 1, guest_to_host = 2, both = 3 };
enum class Printing { off, on };
enum class RemovableMedia { off, read_only, read_write };

struct DeviceControls {
    DataFlow clipboard = DataFlow::off;
    DataFlow file_transfer = DataFlow::off;
    Printing printing = Printing::off;
    RemovableMedia removable_media = RemovableMedia::off;
    bool operator==(const DeviceControls&) const = default;
};

enum class PrincipalKind { user, group };

// A directory user or group, by name exactly as the directory reports it.
struct Principal {
    PrincipalKind kind = PrincipalKind::user;
    std::string name;
    bool operator==(const Principal&) const = default;
};

enum class OnExpiry { stop, stop_and_wipe };
enum class Overriding { no, yes };

// Gives one workspace to one principal, with the controls and lease it runs under.
struct Assignment {
    std::string id;
    std::string workspace_id;
    Principal principal;
    DeviceControls controls;
    std::int64_t expires_at = 0;            // unix seconds; 0 = never
    std::int64_t offline_limit = 7 * 86400; // seconds the agent may run without the server
    OnExpiry on_expiry = OnExpiry::stop;
    Overriding overriding = Overriding::no;
    bool operator==(const Assignment&) const = default;
};

// Everything the admin has configured.
struct PolicySet {
    std::vector<ImageRef> images;
    std::vector<Workspace> workspaces;
    std::vector<PublishedApp> apps;
    std::vector<Assignment> assignments;
    bool operator==(const PolicySet&) const = default;
};

// Bounds every hostile string and list is held to.
namespace limits {
inline constexpr std::size_t id_length = 64;
inline constexpr std::size_t name_length = 256;
inline constexpr std::size_t argument_length = 4096;
inline constexpr std::size_t arguments = 64;
inline constexpr std::size_t host_length = 253;
inline constexpr std::size_t url_pattern_length = 2048;
inline constexpr std::size_t mime_type_length = 127;
inline constexpr std::size_t list_entries = 256;    // hosts, file types, URL patterns
inline constexpr std::size_t set_entries = 100'000; // images, workspaces, apps, assignments
inline constexpr std::uint32_t min_memory_mib = 64;
inline constexpr std::uint32_t max_memory_mib = 1u << 20; // 1 TiB
inline constexpr std::int64_t max_time = 253'402'300'799; // 9999-12-31T23:59:59Z
inline constexpr std::int64_t max_offline_limit = 366 * 86400;
} // namespace limits

// Checks one workspace on its own (names, colour, ranges); path prefixes error messages.
Status validate_workspace(const Workspace& workspace, std::string_view path);
// Checks one published app on its own; references are checked by validate.
Status validate_app(const PublishedApp& app, std::string_view path);
// Checks one image reference on its own.
Status validate_image(const ImageRef& image, std::string_view path);
// Checks one assignment on its own; references are checked by validate.
Status validate_assignment(const Assignment& assignment, std::string_view path);
// Checks a whole set: every item, no duplicate ids, and every reference resolves.
Status validate(const PolicySet& set);

// Checks an id or image name: 1-64 characters from [A-Za-z0-9._-], not starting with '.'.
Status check_id(std::string_view value, std::string_view path);
// Checks a display or principal name: non-empty, bounded, valid UTF-8, no control characters.
Status check_name(std::string_view value, std::string_view path);

} // namespace heirloom::policy
