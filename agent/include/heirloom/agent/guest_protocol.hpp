#pragma once

// The guest channel: the messages between the endpoint agent and heirloom-guest inside a
// workspace VM, over a virtio-serial port. Each frame is a 4-byte big-endian length and a
// UTF-8 JSON object (docs/guest-protocol.md). Everything the guest sends is hostile to the
// host, so decoding is strict: unknown types, missing, extra or mistyped fields, duplicate
// keys, control characters and oversized values are all refused with an error naming them.
//
// This library depends only on the standard library and nlohmann-json (and the header-only
// error types of heirloom/common/error.hpp), so the static guest binary stays small.

#include "heirloom/common/error.hpp"

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace heirloom::guest {

inline constexpr int protocol_version = 1;

// Limits, checked on both sides.
inline constexpr std::size_t max_frame_size = 1u << 20;        // JSON payload bytes
inline constexpr std::size_t max_apps = 512;                   // apps in one list
inline constexpr std::size_t max_id_bytes = 64;                // app ids
inline constexpr std::size_t max_name_bytes = 128;             // app names, hostnames, versions
inline constexpr std::size_t max_command_bytes = 4096;         // Exec lines and launch arguments
inline constexpr std::size_t max_icon_bytes = 256u << 10;      // decoded PNG bytes
inline constexpr std::size_t max_file_types = 64;              // MIME types per app
inline constexpr std::size_t max_args = 64;                    // arguments per launch
inline constexpr std::size_t max_message_bytes = 1024;         // error and failure texts
inline constexpr std::size_t max_json_depth = 8;               // nesting of arrays and objects
inline constexpr std::uint64_t max_counter = (1ull << 53) - 1; // req and seq (exact in doubles)
inline constexpr std::int64_t max_unix_ms = 253402300799999;   // 9999-12-31T23:59:59.999Z
inline constexpr std::int64_t max_pid = 4194304;               // Linux PID_MAX_LIMIT
inline constexpr std::size_t max_file_part = 512u << 10;       // file bytes in one message
inline constexpr std::uint64_t max_file_bytes = 256ull << 20;  // one file sent into the guest
inline constexpr std::size_t max_file_name_bytes = 255;        // a file's name, as sent

// Who may copy to whom; the same four values serve clipboard and file transfer.
enum class Direction { off, host_to_guest, guest_to_host, both };

std::string_view direction_name(Direction direction);
std::optional<Direction> parse_direction(std::string_view name);

// The guest-side device controls of a workspace's policy. Defaults are the closed ones.
struct DeviceControls {
    Direction clipboard = Direction::off;
    Direction file_transfer = Direction::off;
    bool printing = false;
    bool removable_media = false;
    friend bool operator==(const DeviceControls&, const DeviceControls&) = default;
};

// One published application, as the guest found it.
struct App {
    std::string id;                      // [a-z0-9._-]{1,64}, starting with a letter or digit
    std::string name;                    // shown to the user (the host adds the workspace name)
    std::string command;                 // the Exec line, for information only
    std::vector<std::uint8_t> icon_png;  // a PNG file, empty when the app has none
    std::vector<std::string> file_types; // MIME types the app opens
    friend bool operator==(const App&, const App&) = default;
};

// guest -> host

struct GuestHello {
    std::string guest_version;
    std::string hostname;
    friend bool operator==(const GuestHello&, const GuestHello&) = default;
};
struct AppList {
    std::vector<App> apps;
    friend bool operator==(const AppList&, const AppList&) = default;
};
struct Launched {
    std::uint64_t req = 0;
    std::int64_t pid = 0;
    friend bool operator==(const Launched&, const Launched&) = default;
};
struct LaunchFailed {
    std::uint64_t req = 0;
    std::string message;
    friend bool operator==(const LaunchFailed&, const LaunchFailed&) = default;
};
struct Exited {
    std::int64_t pid = 0;
    int code = 0; // the exit status, or 128 + the signal that ended it
    friend bool operator==(const Exited&, const Exited&) = default;
};
struct TimeSet {
    std::int64_t unix_ms = 0; // the guest's clock right after setting it
    friend bool operator==(const TimeSet&, const TimeSet&) = default;
};
struct ControlsApplied {
    DeviceControls controls;
    friend bool operator==(const ControlsApplied&, const ControlsApplied&) = default;
};
struct GuestError {
    std::string message;
    friend bool operator==(const GuestError&, const GuestError&) = default;
};
struct Pong {
    std::uint64_t seq = 0;
    friend bool operator==(const Pong&, const Pong&) = default;
};

// A file the host sent (FilePart) is stored whole at path, for the app launched next to open.
struct FileStored {
    std::uint64_t req = 0;
    std::string path; // absolute, in the guest
    friend bool operator==(const FileStored&, const FileStored&) = default;
};
struct FileFailed {
    std::uint64_t req = 0;
    std::string message;
    friend bool operator==(const FileFailed&, const FileFailed&) = default;
};

using GuestMessage = std::variant<GuestHello, AppList, Launched, LaunchFailed, Exited, TimeSet,
                                  ControlsApplied, GuestError, Pong, FileStored, FileFailed>;

// host -> guest

struct HostHello {
    friend bool operator==(const HostHello&, const HostHello&) = default;
};
struct ListApps {
    friend bool operator==(const ListApps&, const ListApps&) = default;
};
// The guest looks app_id up in its own list: the host never sends a command line.
struct Launch {
    std::uint64_t req = 0;
    std::string app_id;
    std::vector<std::string> args;
    // The published app's command line from the signed policy (absolute program path first).
    // Empty: the guest runs its own app app_id. Either way the guest runs it without a shell.
    std::vector<std::string> command;
    friend bool operator==(const Launch&, const Launch&) = default;
};
struct SetTime {
    std::int64_t unix_ms = 0;
    friend bool operator==(const SetTime&, const SetTime&) = default;
};
struct Controls {
    DeviceControls controls;
    friend bool operator==(const Controls&, const Controls&) = default;
};
struct Ping {
    std::uint64_t seq = 0;
    friend bool operator==(const Ping&, const Ping&) = default;
};

// Part of a host file for an app to open (only when file transfer allows host to guest; the
// guest checks too). The parts of one file share req and come in order: offset is the number
// of bytes sent before, and the last part ends at size. name is the host's file name: the guest
// keeps a safe base name of it and stores the file in a folder of its session.
struct FilePart {
    std::uint64_t req = 0;
    std::string name;
    std::uint64_t size = 0;
    std::uint64_t offset = 0;
    std::vector<std::uint8_t> data; // at most max_file_part bytes
    friend bool operator==(const FilePart&, const FilePart&) = default;
};

using HostMessage = std::variant<HostHello, ListApps, Launch, SetTime, Controls, Ping, FilePart>;

// The "type" of a message as it appears on the wire ("hello", "apps", ...).
std::string_view message_type(const GuestMessage& message);
std::string_view message_type(const HostMessage& message);

// The JSON form of a message, unchecked.
nlohmann::json to_json(const GuestMessage& message);
nlohmann::json to_json(const HostMessage& message);

// A whole frame (length prefix and JSON), after checking the message against the same rules
// the peer decodes it with, so a sender can never emit what its peer would refuse.
Result<std::vector<std::uint8_t>> encode(const GuestMessage& message);
Result<std::vector<std::uint8_t>> encode(const HostMessage& message);

// Checks a JSON value against the protocol and returns the typed message. Errors
// (Errc::corrupt) name the message type and the field: "apps: apps[3].id: ...".
Result<GuestMessage> decode_guest_message(const nlohmann::json& json);
Result<HostMessage> decode_host_message(const nlohmann::json& json);

// Parses a frame payload (JSON text) and decodes it: as above, plus duplicate keys, invalid
// UTF-8, nesting deeper than max_json_depth and payloads over max_frame_size are refused.
Result<GuestMessage> parse_guest_message(std::string_view payload);
Result<HostMessage> parse_host_message(std::string_view payload);

// Strict JSON parsing on its own (see parse_guest_message).
Result<nlohmann::json> parse_strict_json(std::string_view text);

// Splits a byte stream into frame payloads. Bytes may arrive in any slices: partial frames
// are kept (at most one, so memory stays bounded by max_frame_size), and one slice may
// complete several frames. A length of zero or over the limit breaks the stream for good:
// that call and every later one fails (frames completed in the same call are dropped).
class FrameReader {
  public:
    explicit FrameReader(std::size_t max_payload = max_frame_size) : max_payload_(max_payload) {}

    // Consumes bytes and returns the payloads of the frames they complete, in order.
    Result<std::vector<std::string>> feed(std::span<const std::uint8_t> bytes);
    Result<std::vector<std::string>> feed(std::string_view bytes);

    bool failed() const { return error_.has_value(); }
    // Bytes of a partial frame held, header included.
    std::size_t buffered() const { return header_fill_ + payload_.size(); }

  private:
    std::size_t max_payload_;
    std::uint8_t header_[4] = {};
    std::size_t header_fill_ = 0;
    std::size_t expected_ = 0; // payload length once the header is complete
    std::string payload_;
    std::optional<Error> error_;
};

// Wraps a payload in a frame (no checks beyond its size).
Result<std::vector<std::uint8_t>> frame(std::string_view payload);

// Strict base64 (RFC 4648, standard alphabet, padded, canonical, no whitespace).
std::string base64_encode(std::span<const std::uint8_t> bytes);
Result<std::vector<std::uint8_t>> base64_decode(std::string_view text);

// Validation helpers, also used by the guest to clean what it reads from .desktop files.
bool is_valid_utf8(std::string_view text);
bool is_valid_app_id(std::string_view id);
bool is_valid_mime_type(std::string_view type);
bool is_png(std::span<const std::uint8_t> bytes);
// A display name: valid UTF-8, no C0/C1 control characters and no bidirectional overrides
// (which could make a guest app's name read like a host app's).
bool is_clean_name(std::string_view text);
// The name a file from the host gets in the guest: its last path component, with anything but
// letters, digits, space and ._+,()- replaced by _, no leading dot or dash, at most 128 bytes;
// "file" when nothing is left.
std::string safe_file_name(std::string_view name);

} // namespace heirloom::guest
