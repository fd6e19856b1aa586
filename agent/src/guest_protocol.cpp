#include "heirloom/agent/guest_protocol.hpp"

#include "heirloom/common/utf8.hpp"
#include "heirloom/common/windows_path.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <limits>
#include <set>

namespace heirloom::guest {

using json = nlohmann::json;

namespace {

// Hostile text echoed in an error: printable ASCII kept, everything else as \xNN, cut short.
std::string printable(std::string_view text, std::size_t max = 48) {
    std::string out;
    for (std::size_t i = 0; i < text.size() && i < max; ++i) {
        auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out += static_cast<char>(c);
            continue;
        }
        static constexpr char hex[] = "0123456789abcdef";
        out += "\\x";
        out += hex[c >> 4];
        out += hex[c & 15];
    }
    if (text.size() > max)
        out += "...";
    return out;
}

std::string quote_text(std::string_view text) {
    return "\"" + printable(text) + "\"";
}

std::unexpected<Error> bad(std::string_view where, std::string_view what) {
    return fail(Errc::corrupt, std::string(where) + ": " + std::string(what));
}

bool is_c0_or_del(std::uint32_t cp) {
    return cp < 0x20 || cp == 0x7f;
}

bool is_spoofing_code_point(std::uint32_t cp) {
    return (cp >= 0x80 && cp <= 0x9f) || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
           (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 ||
           cp == 0x2029;
}

// What a string field may hold.
enum class Text {
    line,    // one line: no control characters at all
    name,    // a line that is also free of C1 controls and bidirectional overrides
    message, // free text: tabs and newlines allowed, other control characters not
};

struct TextRule {
    Text kind;
    std::size_t max_bytes;
    bool may_be_empty;
};

// Why text breaks the rule, or an empty string when it does not.
std::string text_problem(std::string_view text, TextRule rule) {
    if (text.size() > rule.max_bytes)
        return "is longer than " + std::to_string(rule.max_bytes) + " bytes";
    if (text.empty() && !rule.may_be_empty)
        return "is empty";
    std::uint32_t offending = 0;
    bool found = false;
    bool valid = for_each_code_point(text, [&](std::uint32_t cp) {
        bool allowed_space = rule.kind == Text::message && (cp == '\t' || cp == '\n');
        bool refused = (is_c0_or_del(cp) && !allowed_space) ||
                       (rule.kind == Text::name && is_spoofing_code_point(cp));
        if (refused) {
            offending = cp;
            found = true;
        }
        return !refused;
    });
    if (!valid)
        return "is not valid UTF-8";
    if (!found)
        return {};
    char code[16];
    std::snprintf(code, sizeof code, "U+%04X", static_cast<unsigned>(offending));
    return std::string("contains a control or formatting character (") + code + ")";
}

std::string_view type_name(const json& value) {
    switch (value.type()) {
    case json::value_t::null:
        return "null";
    case json::value_t::object:
        return "an object";
    case json::value_t::array:
        return "an array";
    case json::value_t::string:
        return "a string";
    case json::value_t::boolean:
        return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
        return "an integer";
    case json::value_t::number_float:
        return "a fractional number";
    default:
        return "binary";
    }
}

// Reads the fields of one JSON object, with errors naming "where: field".
class Fields {
  public:
    Fields(const json& object, std::string where) : object_(object), where_(std::move(where)) {}

    // Refuses missing required fields and any field not in required or optional.
    Status expect(std::initializer_list<std::string_view> required,
                  std::initializer_list<std::string_view> optional = {}) const {
        for (auto key : required)
            if (!object_.contains(key))
                return bad(where_, "missing field \"" + std::string(key) + "\"");
        for (const auto& [key, value] : object_.items()) {
            bool known = std::find(required.begin(), required.end(), key) != required.end() ||
                         std::find(optional.begin(), optional.end(), key) != optional.end();
            if (!known)
                return bad(where_, "unexpected field " + quote_text(key));
        }
        return {};
    }

    bool has(std::string_view key) const { return object_.contains(key); }

    Result<std::string> text(std::string_view key, TextRule rule) const {
        return text_value(object_.at(key), path(key), rule);
    }

    Result<bool> boolean(std::string_view key) const {
        const json& value = object_.at(key);
        if (!value.is_boolean())
            return bad(where_,
                       path(key) + " must be a boolean, not " + std::string(type_name(value)));
        return value.get<bool>();
    }

    Result<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max) const {
        return integer_value(object_.at(key), path(key), min, max);
    }

    Result<std::uint64_t> counter(std::string_view key) const {
        auto value = HL_TRY(integer(key, 0, static_cast<std::int64_t>(max_counter)));
        return static_cast<std::uint64_t>(value);
    }

    Result<Direction> direction(std::string_view key) const {
        auto name = HL_TRY(text(key, {Text::line, 32, false}));
        auto direction = parse_direction(name);
        if (!direction)
            return bad(where_, path(key) +
                                   " must be one of off, host-to-guest, guest-to-host, "
                                   "both, not " +
                                   quote_text(name));
        return *direction;
    }

    Result<const json*> array(std::string_view key, std::size_t max_items) const {
        const json& value = object_.at(key);
        if (!value.is_array())
            return bad(where_,
                       path(key) + " must be an array, not " + std::string(type_name(value)));
        if (value.size() > max_items)
            return bad(where_, path(key) + " has " + std::to_string(value.size()) +
                                   " entries, more than the limit of " + std::to_string(max_items));
        return &value;
    }

    Result<std::string> text_value(const json& value, const std::string& field,
                                   TextRule rule) const {
        if (!value.is_string())
            return bad(where_, field + " must be a string, not " + std::string(type_name(value)));
        const auto& text = value.get_ref<const std::string&>();
        if (auto problem = text_problem(text, rule); !problem.empty())
            return bad(where_, field + " " + problem);
        return text;
    }

    Result<std::int64_t> integer_value(const json& value, const std::string& field,
                                       std::int64_t min, std::int64_t max) const {
        if (!value.is_number_integer())
            return bad(where_, field + " must be an integer, not " + std::string(type_name(value)));
        // Unsigned values past INT64_MAX are out of every range here; compare before casting.
        bool in_range = value.is_number_unsigned()
                            ? value.get<std::uint64_t>() <= static_cast<std::uint64_t>(max)
                            : value.get<std::int64_t>() <= max;
        std::int64_t number = in_range ? value.get<std::int64_t>() : max;
        if (!in_range || number < min)
            return bad(where_, field + " is out of range (" + std::to_string(min) + " to " +
                                   std::to_string(max) + ")");
        return number;
    }

    const std::string& where() const { return where_; }
    std::string path(std::string_view key) const { return "\"" + std::string(key) + "\""; }

  private:
    const json& object_;
    std::string where_;
};

constexpr TextRule id_rule{Text::line, max_id_bytes, false};
constexpr TextRule name_rule{Text::name, max_name_bytes, false};
constexpr TextRule command_rule{Text::line, max_command_bytes, false};
constexpr TextRule arg_rule{Text::line, max_command_bytes, true};
constexpr TextRule message_rule{Text::message, max_message_bytes, true};
constexpr TextRule mime_rule{Text::line, max_name_bytes, false};
constexpr TextRule file_name_rule{Text::name, max_file_name_bytes, false};
constexpr TextRule base64_rule{Text::line, (max_file_part + 2) / 3 * 4, true};

Result<std::string> app_id(const Fields& fields, std::string_view key) {
    auto id = HL_TRY(fields.text(key, id_rule));
    if (!is_valid_app_id(id))
        return bad(fields.where(), fields.path(key) + " " + quote_text(id) +
                                       " is not an app id (a letter or digit, then up to 63 of "
                                       "a-z 0-9 . _ -)");
    return id;
}

Status check_version(const Fields& fields) {
    auto version = HL_TRY(fields.integer("v", 0, std::numeric_limits<int>::max()));
    if (version != protocol_version)
        return fail(Errc::unsupported, "hello: protocol version " + std::to_string(version) +
                                           " is not supported (this side speaks " +
                                           std::to_string(protocol_version) + ")");
    return {};
}

Result<DeviceControls> device_controls(const Fields& fields) {
    HL_TRY(fields.expect({"type", "clipboard", "file_transfer", "printing", "removable_media"}));
    DeviceControls controls;
    controls.clipboard = HL_TRY(fields.direction("clipboard"));
    controls.file_transfer = HL_TRY(fields.direction("file_transfer"));
    controls.printing = HL_TRY(fields.boolean("printing"));
    controls.removable_media = HL_TRY(fields.boolean("removable_media"));
    return controls;
}

// The longest base64 text that can decode to at most max_icon_bytes.
constexpr std::size_t max_icon_base64 = (max_icon_bytes + 2) / 3 * 4;

Result<App> decode_app(const json& value, std::size_t index) {
    std::string where = "apps: apps[" + std::to_string(index) + "]";
    if (!value.is_object())
        return bad(where, "must be an object, not " + std::string(type_name(value)));
    Fields fields(value, where);
    HL_TRY(fields.expect({"id", "name", "command", "file_types"}, {"icon_png"}));
    App app;
    app.id = HL_TRY(app_id(fields, "id"));
    app.name = HL_TRY(fields.text("name", name_rule));
    app.command = HL_TRY(fields.text("command", command_rule));
    if (fields.has("icon_png")) {
        const json& icon = value.at("icon_png");
        if (!icon.is_string())
            return bad(where, "\"icon_png\" must be a string, not " + std::string(type_name(icon)));
        const auto& text = icon.get_ref<const std::string&>();
        if (text.size() > max_icon_base64)
            return bad(where, "\"icon_png\" is larger than " +
                                  std::to_string(max_icon_bytes >> 10) + " KiB");
        auto png = base64_decode(text);
        if (!png)
            return bad(where, "\"icon_png\" is " + png.error().message);
        if (png->size() > max_icon_bytes)
            return bad(where, "\"icon_png\" is larger than " +
                                  std::to_string(max_icon_bytes >> 10) + " KiB");
        if (!is_png(*png))
            return bad(where, "\"icon_png\" is not a PNG image");
        app.icon_png = std::move(*png);
    }
    const json* types = HL_TRY(fields.array("file_types", max_file_types));
    for (std::size_t i = 0; i < types->size(); ++i) {
        std::string field = "\"file_types\"[" + std::to_string(i) + "]";
        auto type = HL_TRY(fields.text_value((*types)[i], field, mime_rule));
        if (!is_valid_mime_type(type))
            return bad(where, field + " " + quote_text(type) + " is not a MIME type");
        app.file_types.push_back(std::move(type));
    }
    return app;
}

Result<AppList> decode_app_list(const Fields& fields) {
    HL_TRY(fields.expect({"type", "apps"}));
    const json* apps = HL_TRY(fields.array("apps", max_apps));
    AppList list;
    std::set<std::string, std::less<>> ids;
    for (std::size_t i = 0; i < apps->size(); ++i) {
        auto app = HL_TRY(decode_app((*apps)[i], i));
        if (!ids.insert(app.id).second)
            return bad("apps",
                       "apps[" + std::to_string(i) + "]: duplicate app id " + quote_text(app.id));
        list.apps.push_back(std::move(app));
    }
    return list;
}

// A request that failed in the guest (a launch, a file): its request number and why.
template <typename Failure> Result<Failure> decode_failure(Fields& fields) {
    HL_TRY(fields.expect({"type", "req", "message"}));
    Failure failed;
    failed.req = HL_TRY(fields.counter("req"));
    failed.message = HL_TRY(fields.text("message", message_rule));
    return failed;
}

Result<GuestMessage> decode_guest_fields(std::string_view type, const json& object) {
    Fields fields(object, std::string(type));
    if (type == "hello") {
        HL_TRY(fields.expect({"type", "v", "guest_version", "hostname"}));
        HL_TRY(check_version(fields));
        GuestHello hello;
        hello.guest_version = HL_TRY(fields.text("guest_version", name_rule));
        hello.hostname = HL_TRY(fields.text("hostname", name_rule));
        return hello;
    }
    if (type == "apps")
        return HL_TRY(decode_app_list(fields));
    if (type == "launched") {
        HL_TRY(fields.expect({"type", "req", "pid"}));
        Launched launched;
        launched.req = HL_TRY(fields.counter("req"));
        launched.pid = HL_TRY(fields.integer("pid", 1, max_pid));
        return launched;
    }
    if (type == "launch_failed")
        return HL_TRY(decode_failure<LaunchFailed>(fields));
    if (type == "exited") {
        HL_TRY(fields.expect({"type", "pid", "code"}));
        Exited exited;
        exited.pid = HL_TRY(fields.integer("pid", 1, max_pid));
        exited.code = static_cast<int>(HL_TRY(fields.integer("code", 0, 255)));
        return exited;
    }
    if (type == "time_set") {
        HL_TRY(fields.expect({"type", "unix_ms"}));
        return TimeSet{HL_TRY(fields.integer("unix_ms", 0, max_unix_ms))};
    }
    if (type == "controls_applied")
        return ControlsApplied{HL_TRY(device_controls(fields))};
    if (type == "error") {
        HL_TRY(fields.expect({"type", "message"}));
        return GuestError{HL_TRY(fields.text("message", message_rule))};
    }
    if (type == "pong") {
        HL_TRY(fields.expect({"type", "seq"}));
        return Pong{HL_TRY(fields.counter("seq"))};
    }
    if (type == "file_stored") {
        HL_TRY(fields.expect({"type", "req", "path"}));
        FileStored stored;
        stored.req = HL_TRY(fields.counter("req"));
        stored.path = HL_TRY(fields.text("path", command_rule));
        if (!stored.path.starts_with("/"))
            return fail(Errc::corrupt, "file_stored: \"path\" must be absolute");
        return stored;
    }
    if (type == "file_failed")
        return HL_TRY(decode_failure<FileFailed>(fields));
    return fail(Errc::corrupt, "unknown message type " + quote_text(type) + " from the guest");
}

Result<HostMessage> decode_host_fields(std::string_view type, const json& object) {
    Fields fields(object, std::string(type));
    if (type == "hello") {
        HL_TRY(fields.expect({"type", "v"}));
        HL_TRY(check_version(fields));
        return HostHello{};
    }
    if (type == "list_apps") {
        HL_TRY(fields.expect({"type"}));
        return ListApps{};
    }
    if (type == "launch") {
        HL_TRY(fields.expect({"type", "req", "app_id", "args"}, {"command"}));
        Launch launch;
        launch.req = HL_TRY(fields.counter("req"));
        launch.app_id = HL_TRY(app_id(fields, "app_id"));
        const json* args = HL_TRY(fields.array("args", max_args));
        for (std::size_t i = 0; i < args->size(); ++i)
            launch.args.push_back(HL_TRY(
                fields.text_value((*args)[i], "\"args\"[" + std::to_string(i) + "]", arg_rule)));
        if (fields.has("command")) {
            const json* command = HL_TRY(fields.array("command", max_args));
            for (std::size_t i = 0; i < command->size(); ++i)
                launch.command.push_back(HL_TRY(fields.text_value(
                    (*command)[i], "\"command\"[" + std::to_string(i) + "]", arg_rule)));
            if (launch.command.empty())
                return fail(Errc::corrupt, "launch: \"command\" must name a program");
            if (looks_like_windows_path(launch.command[0])) {
                if (auto windows = parse_windows_program_path(launch.command[0]); !windows)
                    return fail(Errc::corrupt,
                                "launch: \"command\"[0]: " + windows.error().message);
            } else if (!launch.command[0].starts_with("/")) {
                return fail(Errc::corrupt, "launch: \"command\" must start with an absolute "
                                           "program path or a Windows program path");
            }
        }
        return launch;
    }
    if (type == "set_time") {
        HL_TRY(fields.expect({"type", "unix_ms"}));
        return SetTime{HL_TRY(fields.integer("unix_ms", 0, max_unix_ms))};
    }
    if (type == "controls")
        return Controls{HL_TRY(device_controls(fields))};
    if (type == "ping") {
        HL_TRY(fields.expect({"type", "seq"}));
        return Ping{HL_TRY(fields.counter("seq"))};
    }
    if (type == "file") {
        HL_TRY(fields.expect({"type", "req", "name", "size", "offset", "data"}));
        FilePart part;
        part.req = HL_TRY(fields.counter("req"));
        part.name = HL_TRY(fields.text("name", file_name_rule));
        part.size = static_cast<std::uint64_t>(
            HL_TRY(fields.integer("size", 0, static_cast<std::int64_t>(max_file_bytes))));
        part.offset = static_cast<std::uint64_t>(
            HL_TRY(fields.integer("offset", 0, static_cast<std::int64_t>(part.size))));
        std::string data = HL_TRY(fields.text("data", base64_rule));
        part.data = HL_TRY_CTX(base64_decode(data), "file: \"data\"");
        if (part.data.size() > max_file_part)
            return fail(Errc::corrupt, "file: \"data\" holds more than " +
                                           std::to_string(max_file_part) + " bytes");
        if (part.data.size() > part.size - part.offset)
            return fail(Errc::corrupt, "file: \"data\" runs past \"size\"");
        if (part.data.empty() && part.size != 0)
            return fail(Errc::corrupt, "file: an empty part of a file that is not empty");
        return part;
    }
    return fail(Errc::corrupt, "unknown message type " + quote_text(type) + " from the host");
}

// The "type" of a message object, after checking it is one.
Result<std::string> message_type_of(const json& message) {
    if (!message.is_object())
        return fail(Errc::corrupt,
                    "a message must be a JSON object, not " + std::string(type_name(message)));
    auto type = message.find("type");
    if (type == message.end())
        return fail(Errc::corrupt, "message has no \"type\"");
    if (!type->is_string())
        return fail(Errc::corrupt,
                    "message \"type\" must be a string, not " + std::string(type_name(*type)));
    return type->get<std::string>();
}

// Exceptions stop here: nlohmann-json throws on allocation failure and on misuse.
template <class Message, class Decode>
Result<Message> decode_guarded(const json& message, Decode&& decode) {
    try {
        auto type = HL_TRY(message_type_of(message));
        return decode(type, message);
    } catch (const std::exception& e) {
        return fail(Errc::corrupt,
                    std::string("cannot decode message: ") + printable(e.what(), 200));
    }
}

// Builds a DOM like nlohmann's own parser, but refuses duplicate keys and deep nesting.
class StrictJsonBuilder {
  public:
    using number_integer_t = json::number_integer_t;
    using number_unsigned_t = json::number_unsigned_t;
    using number_float_t = json::number_float_t;
    using string_t = json::string_t;
    using binary_t = json::binary_t;

    bool null() { return put(nullptr); }
    bool boolean(bool value) { return put(value); }
    bool number_integer(number_integer_t value) { return put(value); }
    bool number_unsigned(number_unsigned_t value) { return put(value); }
    bool number_float(number_float_t value, const string_t&) { return put(value); }
    bool string(string_t& value) { return put(std::move(value)); }
    bool binary(binary_t&) {
        error_ = "binary values are not JSON";
        return false;
    }
    bool start_object(std::size_t) { return open(json::object()); }
    bool key(string_t& key) {
        if (stack_.back()->contains(key)) {
            error_ = "duplicate key " + quote_text(key);
            return false;
        }
        key_ = std::move(key);
        return true;
    }
    bool end_object() { return close(); }
    bool start_array(std::size_t) { return open(json::array()); }
    bool end_array() { return close(); }
    bool parse_error(std::size_t, const std::string&, const json::exception& e) {
        error_ = printable(e.what(), 200);
        return false;
    }

    json& root() { return root_; }
    const std::string& error() const { return error_; }

  private:
    json* place(json&& value) {
        if (stack_.empty()) {
            root_ = std::move(value);
            return &root_;
        }
        json& top = *stack_.back();
        if (top.is_array()) {
            top.push_back(std::move(value));
            return &top.back();
        }
        return &(top[key_] = std::move(value));
    }
    bool put(json&& value) {
        place(std::move(value));
        return true;
    }
    bool open(json&& container) {
        if (stack_.size() >= max_json_depth) {
            error_ = "nested deeper than " + std::to_string(max_json_depth) + " levels";
            return false;
        }
        stack_.push_back(place(std::move(container)));
        return true;
    }
    bool close() {
        stack_.pop_back();
        return true;
    }

    json root_;
    std::vector<json*> stack_;
    std::string key_;
    std::string error_;
};

template <class Message> Result<std::vector<std::uint8_t>> encode_checked(const Message& message) {
    try {
        json value = to_json(message);
        std::string type(message_type(message));
        if constexpr (std::is_same_v<Message, GuestMessage>)
            HL_TRY_CTX(decode_guest_message(value), "refusing to send an invalid " + type);
        else
            HL_TRY_CTX(decode_host_message(value), "refusing to send an invalid " + type);
        return frame(value.dump());
    } catch (const std::exception& e) {
        return fail(Errc::invalid_argument, std::string("cannot encode message: ") + e.what());
    }
}

json controls_json(std::string_view type, const DeviceControls& controls) {
    return {{"type", type},
            {"clipboard", direction_name(controls.clipboard)},
            {"file_transfer", direction_name(controls.file_transfer)},
            {"printing", controls.printing},
            {"removable_media", controls.removable_media}};
}

bool is_lower_or_digit(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool is_alnum(char c) {
    return is_lower_or_digit(c) || (c >= 'A' && c <= 'Z');
}

bool is_restricted_name_char(char c) {
    return is_alnum(c) || std::string_view("!#$&-^_.+").find(c) != std::string_view::npos;
}

// RFC 6838 restricted-name: a letter or digit, then up to 126 more name characters.
bool is_restricted_name(std::string_view name) {
    if (name.empty() || name.size() > 127 || !is_alnum(name[0]))
        return false;
    return std::all_of(name.begin(), name.end(), is_restricted_name_char);
}

constexpr std::string_view base64_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_value(char c) {
    auto pos = base64_alphabet.find(c);
    return pos == std::string_view::npos ? -1 : static_cast<int>(pos);
}

} // namespace

std::string_view direction_name(Direction direction) {
    switch (direction) {
    case Direction::off:
        return "off";
    case Direction::host_to_guest:
        return "host-to-guest";
    case Direction::guest_to_host:
        return "guest-to-host";
    case Direction::both:
        return "both";
    }
    return "off";
}

std::optional<Direction> parse_direction(std::string_view name) {
    for (auto direction :
         {Direction::off, Direction::host_to_guest, Direction::guest_to_host, Direction::both})
        if (direction_name(direction) == name)
            return direction;
    return std::nullopt;
}

std::string_view message_type(const GuestMessage& message) {
    static constexpr std::array<std::string_view, std::variant_size_v<GuestMessage>> names = {
        "hello", "apps", "launched",    "launch_failed", "exited", "time_set", "controls_applied",
        "error", "pong", "file_stored", "file_failed"};
    return names[message.index()];
}

std::string_view message_type(const HostMessage& message) {
    static constexpr std::array<std::string_view, std::variant_size_v<HostMessage>> names = {
        "hello", "list_apps", "launch", "set_time", "controls", "ping", "file"};
    return names[message.index()];
}

json to_json(const GuestMessage& message) {
    std::string_view type = message_type(message);
    json out = {{"type", type}};
    if (const auto* hello = std::get_if<GuestHello>(&message)) {
        out["v"] = protocol_version;
        out["guest_version"] = hello->guest_version;
        out["hostname"] = hello->hostname;
    } else if (const auto* list = std::get_if<AppList>(&message)) {
        out["apps"] = json::array();
        for (const auto& app : list->apps) {
            json entry = {{"id", app.id},
                          {"name", app.name},
                          {"command", app.command},
                          {"file_types", app.file_types}};
            if (!app.icon_png.empty())
                entry["icon_png"] = base64_encode(app.icon_png);
            out["apps"].push_back(std::move(entry));
        }
    } else if (const auto* launched = std::get_if<Launched>(&message)) {
        out["req"] = launched->req;
        out["pid"] = launched->pid;
    } else if (const auto* failed = std::get_if<LaunchFailed>(&message)) {
        out["req"] = failed->req;
        out["message"] = failed->message;
    } else if (const auto* exited = std::get_if<Exited>(&message)) {
        out["pid"] = exited->pid;
        out["code"] = exited->code;
    } else if (const auto* time = std::get_if<TimeSet>(&message)) {
        out["unix_ms"] = time->unix_ms;
    } else if (const auto* applied = std::get_if<ControlsApplied>(&message)) {
        out = controls_json(type, applied->controls);
    } else if (const auto* error = std::get_if<GuestError>(&message)) {
        out["message"] = error->message;
    } else if (const auto* pong = std::get_if<Pong>(&message)) {
        out["seq"] = pong->seq;
    } else if (const auto* stored = std::get_if<FileStored>(&message)) {
        out["req"] = stored->req;
        out["path"] = stored->path;
    } else if (const auto* file_failed = std::get_if<FileFailed>(&message)) {
        out["req"] = file_failed->req;
        out["message"] = file_failed->message;
    }
    return out;
}

json to_json(const HostMessage& message) {
    std::string_view type = message_type(message);
    json out = {{"type", type}};
    if (std::holds_alternative<HostHello>(message)) {
        out["v"] = protocol_version;
    } else if (const auto* launch = std::get_if<Launch>(&message)) {
        out["req"] = launch->req;
        out["app_id"] = launch->app_id;
        out["args"] = launch->args;
        if (!launch->command.empty())
            out["command"] = launch->command;
    } else if (const auto* time = std::get_if<SetTime>(&message)) {
        out["unix_ms"] = time->unix_ms;
    } else if (const auto* controls = std::get_if<Controls>(&message)) {
        out = controls_json(type, controls->controls);
    } else if (const auto* ping = std::get_if<Ping>(&message)) {
        out["seq"] = ping->seq;
    } else if (const auto* part = std::get_if<FilePart>(&message)) {
        out["req"] = part->req;
        out["name"] = part->name;
        out["size"] = part->size;
        out["offset"] = part->offset;
        out["data"] = base64_encode(part->data);
    }
    return out;
}

Result<std::vector<std::uint8_t>> encode(const GuestMessage& message) {
    return encode_checked(message);
}

Result<std::vector<std::uint8_t>> encode(const HostMessage& message) {
    return encode_checked(message);
}

Result<GuestMessage> decode_guest_message(const json& message) {
    return decode_guarded<GuestMessage>(message, decode_guest_fields);
}

Result<HostMessage> decode_host_message(const json& message) {
    return decode_guarded<HostMessage>(message, decode_host_fields);
}

Result<json> parse_strict_json(std::string_view text) {
    if (text.empty())
        return fail(Errc::corrupt, "empty message");
    if (text.size() > max_frame_size)
        return fail(Errc::corrupt, "message of " + std::to_string(text.size()) +
                                       " bytes is over the limit of " +
                                       std::to_string(max_frame_size));
    try {
        StrictJsonBuilder builder;
        if (!json::sax_parse(text, &builder, json::input_format_t::json, true, false))
            return fail(Errc::corrupt, "malformed JSON: " + builder.error());
        return std::move(builder.root());
    } catch (const std::exception& e) {
        return fail(Errc::corrupt, std::string("malformed JSON: ") + printable(e.what(), 200));
    }
}

Result<GuestMessage> parse_guest_message(std::string_view payload) {
    auto value = HL_TRY(parse_strict_json(payload));
    return decode_guest_message(value);
}

Result<HostMessage> parse_host_message(std::string_view payload) {
    auto value = HL_TRY(parse_strict_json(payload));
    return decode_host_message(value);
}

Result<std::vector<std::uint8_t>> frame(std::string_view payload) {
    if (payload.empty() || payload.size() > max_frame_size)
        return fail(Errc::invalid_argument, "message of " + std::to_string(payload.size()) +
                                                " bytes does not fit a frame (1 to " +
                                                std::to_string(max_frame_size) + " bytes)");
    std::vector<std::uint8_t> out(4 + payload.size());
    auto size = static_cast<std::uint32_t>(payload.size());
    out[0] = static_cast<std::uint8_t>(size >> 24);
    out[1] = static_cast<std::uint8_t>(size >> 16);
    out[2] = static_cast<std::uint8_t>(size >> 8);
    out[3] = static_cast<std::uint8_t>(size);
    std::copy(payload.begin(), payload.end(), out.begin() + 4);
    return out;
}

Result<std::vector<std::string>> FrameReader::feed(std::span<const std::uint8_t> bytes) {
    if (error_)
        return std::unexpected(*error_);
    std::vector<std::string> frames;
    std::size_t pos = 0;
    while (pos < bytes.size()) {
        if (header_fill_ < 4) {
            header_[header_fill_++] = bytes[pos++];
            if (header_fill_ < 4)
                continue;
            expected_ = (std::size_t{header_[0]} << 24) | (std::size_t{header_[1]} << 16) |
                        (std::size_t{header_[2]} << 8) | std::size_t{header_[3]};
            if (expected_ == 0 || expected_ > max_payload_) {
                error_ =
                    Error{Errc::corrupt, "frame length " + std::to_string(expected_) +
                                             " is outside 1 to " + std::to_string(max_payload_) +
                                             " bytes; the stream cannot be trusted any more"};
                return std::unexpected(*error_);
            }
            payload_.reserve(std::min<std::size_t>(expected_, 64u << 10));
            continue;
        }
        std::size_t take = std::min(expected_ - payload_.size(), bytes.size() - pos);
        payload_.append(reinterpret_cast<const char*>(bytes.data() + pos), take);
        pos += take;
        if (payload_.size() == expected_) {
            frames.push_back(std::move(payload_));
            payload_ = std::string();
            header_fill_ = 0;
            expected_ = 0;
        }
    }
    return frames;
}

Result<std::vector<std::string>> FrameReader::feed(std::string_view bytes) {
    return feed(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                              bytes.size()));
}

std::string base64_encode(std::span<const std::uint8_t> bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        std::uint32_t v =
            (std::uint32_t{bytes[i]} << 16) | (std::uint32_t{bytes[i + 1]} << 8) | bytes[i + 2];
        out += base64_alphabet[(v >> 18) & 63];
        out += base64_alphabet[(v >> 12) & 63];
        out += base64_alphabet[(v >> 6) & 63];
        out += base64_alphabet[v & 63];
    }
    std::size_t rest = bytes.size() - i;
    if (rest == 0)
        return out;
    std::uint32_t v = std::uint32_t{bytes[i]} << 16;
    if (rest == 2)
        v |= std::uint32_t{bytes[i + 1]} << 8;
    out += base64_alphabet[(v >> 18) & 63];
    out += base64_alphabet[(v >> 12) & 63];
    out += rest == 2 ? base64_alphabet[(v >> 6) & 63] : '=';
    out += '=';
    return out;
}

Result<std::vector<std::uint8_t>> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0)
        return fail(Errc::corrupt, "not valid base64 (length is not a multiple of 4)");
    std::vector<std::uint8_t> out;
    out.reserve(text.size() / 4 * 3);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        bool last = i + 4 == text.size();
        std::size_t padding = 0;
        if (last && text[i + 3] == '=')
            padding = text[i + 2] == '=' ? 2 : 1;
        std::uint32_t v = 0;
        for (std::size_t k = 0; k < 4; ++k) {
            if (k >= 4 - padding) {
                v <<= 6;
                continue;
            }
            int digit = base64_value(text[i + k]);
            if (digit < 0)
                return fail(Errc::corrupt, "not valid base64 (bad character at offset " +
                                               std::to_string(i + k) + ")");
            v = (v << 6) | static_cast<std::uint32_t>(digit);
        }
        // Canonical form: the bits that padding leaves over must be zero.
        if ((padding == 1 && (v & 0xff) != 0) || (padding == 2 && (v & 0xffff) != 0))
            return fail(Errc::corrupt, "not valid base64 (non-canonical padding)");
        out.push_back(static_cast<std::uint8_t>(v >> 16));
        if (padding < 2)
            out.push_back(static_cast<std::uint8_t>(v >> 8));
        if (padding < 1)
            out.push_back(static_cast<std::uint8_t>(v));
    }
    return out;
}

bool is_valid_utf8(std::string_view text) {
    return is_utf8(text);
}

bool is_valid_app_id(std::string_view id) {
    if (id.empty() || id.size() > max_id_bytes)
        return false;
    if (!is_lower_or_digit(id[0]))
        return false;
    return std::all_of(id.begin(), id.end(), [](char c) {
        return is_lower_or_digit(c) || c == '.' || c == '_' || c == '-';
    });
}

bool is_valid_mime_type(std::string_view type) {
    auto slash = type.find('/');
    if (slash == std::string_view::npos)
        return false;
    return is_restricted_name(type.substr(0, slash)) && is_restricted_name(type.substr(slash + 1));
}

bool is_png(std::span<const std::uint8_t> bytes) {
    static constexpr std::array<std::uint8_t, 8> signature = {0x89, 'P',  'N',  'G',
                                                              '\r', '\n', 0x1a, '\n'};
    return bytes.size() > signature.size() &&
           std::equal(signature.begin(), signature.end(), bytes.begin());
}

bool is_clean_name(std::string_view text) {
    return text_problem(text, {Text::name, std::numeric_limits<std::size_t>::max(), true}).empty();
}

std::string safe_file_name(std::string_view name) {
    auto slash = name.find_last_of("/\\");
    if (slash != std::string_view::npos)
        name.remove_prefix(slash + 1);
    std::string out;
    for (char c : name) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  std::string_view(" ._+,()-").find(c) != std::string_view::npos;
        out += ok ? c : '_';
        if (out.size() == 128)
            break;
    }
    while (!out.empty() && (out.front() == '.' || out.front() == '-' || out.front() == ' '))
        out.erase(0, 1);
    while (!out.empty() && (out.back() == ' ' || out.back() == '.'))
        out.pop_back();
    return out.empty() ? "file" : out;
}

} // namespace heirloom::guest
