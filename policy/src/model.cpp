#include "heirloom/policy/model.hpp"

#include "heirloom/common/utf8.hpp"
#include "heirloom/common/windows_path.hpp"

#include <set>
#include <string>

namespace heirloom::policy {

namespace {

std::unexpected<Error> invalid(std::string_view path, std::string_view message) {
    return fail(Errc::invalid_argument, std::string(path) + ": " + std::string(message));
}

std::string at(std::string_view path, std::size_t index) {
    return std::string(path) + "[" + std::to_string(index) + "]";
}

std::string dot(std::string_view path, std::string_view key) {
    return std::string(path) + "." + std::string(key);
}

bool is_id_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

bool is_control(unsigned char c) {
    return c < 0x20 || c == 0x7f;
}

bool has_control(std::string_view s) {
    for (char c : s)
        if (is_control(static_cast<unsigned char>(c)))
            return true;
    return false;
}

bool is_hex_digit(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

Status check_colour(std::string_view colour, std::string_view path) {
    bool well_formed = colour.size() == 7 && colour[0] == '#';
    for (std::size_t i = 1; well_formed && i < colour.size(); ++i)
        well_formed = is_hex_digit(colour[i]);
    if (!well_formed)
        return invalid(path, "expected a colour of the form #rrggbb");
    return {};
}

// An argv: at least the program, bounded, and no NUL (it would cut the argument short).
Status check_argv(const std::vector<std::string>& argv, std::string_view path) {
    if (argv.empty())
        return invalid(path, "must name at least the program to run");
    if (argv.size() > limits::arguments)
        return invalid(path, "has more than " + std::to_string(limits::arguments) + " arguments");
    for (std::size_t i = 0; i < argv.size(); ++i) {
        const std::string& arg = argv[i];
        if (arg.size() > limits::argument_length)
            return invalid(at(path, i), "argument is too long");
        if (arg.find('\0') != std::string::npos || !is_utf8(arg))
            return invalid(at(path, i), "argument holds a NUL byte or invalid UTF-8");
    }
    if (argv[0].empty())
        return invalid(at(path, 0), "the program name is empty");
    return {};
}

// Host names for the network allow-list: letters, digits, '-', '.', and a leading "*." for
// a whole domain.
Status check_host(std::string_view host, std::string_view path) {
    if (host.empty() || host.size() > limits::host_length)
        return invalid(path, "expected a host name of 1 to 253 characters");
    std::string_view rest = host.starts_with("*.") ? host.substr(2) : host;
    for (char c : rest) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.';
        if (!ok)
            return invalid(path, "a host name may hold only letters, digits, '-' and '.'");
    }
    if (rest.empty())
        return invalid(path, "expected a host name after \"*.\"");
    return {};
}

// A MIME type "type/subtype" with the RFC 6838 restricted-name characters.
Status check_mime_type(std::string_view type, std::string_view path) {
    auto slash = type.find('/');
    if (type.empty() || type.size() > limits::mime_type_length || slash == 0 ||
        slash == std::string_view::npos || slash + 1 == type.size() ||
        type.find('/', slash + 1) != std::string_view::npos)
        return invalid(path, "expected a MIME type such as application/pdf");
    for (char c : type) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  std::string_view("!#$&-^_.+/").find(c) != std::string_view::npos;
        if (!ok)
            return invalid(path, "expected a MIME type such as application/pdf");
    }
    return {};
}

Status check_url_pattern(std::string_view pattern, std::string_view path) {
    if (pattern.empty() || pattern.size() > limits::url_pattern_length)
        return invalid(path, "expected a URL pattern of 1 to 2048 characters");
    for (char c : pattern)
        if (is_control(static_cast<unsigned char>(c)) || c == ' ')
            return invalid(path, "a URL pattern may not hold spaces or control characters");
    if (!is_utf8(pattern))
        return invalid(path, "a URL pattern must be valid UTF-8");
    return {};
}

template <class Check>
Status check_list(const std::vector<std::string>& list, std::string_view path, Check check) {
    if (list.size() > limits::list_entries)
        return invalid(path, "has more than " + std::to_string(limits::list_entries) + " entries");
    for (std::size_t i = 0; i < list.size(); ++i)
        HL_TRY(check(list[i], at(path, i)));
    return {};
}

Status check_time(std::int64_t seconds, std::string_view path) {
    if (seconds < 0 || seconds > limits::max_time)
        return invalid(path, "expected unix seconds between 0 and year 9999");
    return {};
}

// Validates every item of a list and refuses a repeated key.
template <class T, class Check, class Key>
Status check_items(const std::vector<T>& items, std::string_view path, Check check, Key key) {
    if (items.size() > limits::set_entries)
        return invalid(path, "has too many entries");
    std::set<std::string_view> seen;
    for (std::size_t i = 0; i < items.size(); ++i) {
        HL_TRY(check(items[i], at(path, i)));
        if (!seen.insert(key(items[i])).second)
            return invalid(at(path, i), "duplicate id \"" + std::string(key(items[i])) + "\"");
    }
    return {};
}

// A command whose program is a Windows path runs under Wine in the guest: the path must pass
// the strict parser and be on the drive of the guest's Wine prefix.
Status check_windows_program(std::string_view program, std::string_view path) {
    if (!looks_like_windows_path(program))
        return {};
    auto parsed = parse_windows_program_path(program);
    if (!parsed)
        return invalid(path, parsed.error().message);
    if (parsed->drive != windows_program_drive)
        return invalid(path, std::string("a Windows program must be on drive ") +
                                 windows_program_drive + ": (the guest's Wine prefix), not " +
                                 parsed->drive + ":");
    return {};
}

} // namespace

Status check_id(std::string_view value, std::string_view path) {
    if (value.empty() || value.size() > limits::id_length)
        return invalid(path, "expected an id of 1 to 64 characters");
    for (char c : value)
        if (!is_id_char(c))
            return invalid(path, "an id may hold only letters, digits, '.', '_' and '-'");
    if (value.front() == '.')
        return invalid(path, "an id may not start with '.'");
    return {};
}

Status check_name(std::string_view value, std::string_view path) {
    if (value.empty() || value.size() > limits::name_length)
        return invalid(path, "expected a name of 1 to 256 bytes");
    if (has_control(value))
        return invalid(path, "a name may not hold control characters");
    if (!is_utf8(value))
        return invalid(path, "a name must be valid UTF-8");
    return {};
}

Status validate_image(const ImageRef& image, std::string_view path) {
    HL_TRY(check_id(image.name, dot(path, "name")));
    if (image.minimum_version && image.pinned_version &&
        *image.pinned_version < *image.minimum_version)
        return invalid(dot(path, "pinned_version"), "is below minimum_version");
    return {};
}

Status validate_workspace(const Workspace& workspace, std::string_view path) {
    HL_TRY(check_id(workspace.id, dot(path, "id")));
    HL_TRY(check_name(workspace.display_name, dot(path, "display_name")));
    HL_TRY(check_id(workspace.image, dot(path, "image")));
    if (workspace.memory_mib < limits::min_memory_mib ||
        workspace.memory_mib > limits::max_memory_mib)
        return invalid(dot(path, "memory_mib"), "expected 64 to 1048576 MiB");
    if (workspace.frame_colour)
        HL_TRY(check_colour(*workspace.frame_colour, dot(path, "frame_colour")));
    if (workspace.host_check)
        HL_TRY(check_argv(*workspace.host_check, dot(path, "host_check")));
    std::string hosts = dot(dot(path, "network"), "hosts");
    if (workspace.network.mode != NetworkMode::allow_list &&
        !workspace.network.allowed_hosts.empty())
        return invalid(hosts, "hosts are only allowed with the allow-list network mode");
    HL_TRY(check_list(workspace.network.allowed_hosts, hosts, check_host));
    return {};
}

Status validate_app(const PublishedApp& app, std::string_view path) {
    HL_TRY(check_id(app.id, dot(path, "id")));
    HL_TRY(check_id(app.workspace_id, dot(path, "workspace")));
    HL_TRY(check_name(app.display_name, dot(path, "display_name")));
    HL_TRY(check_argv(app.command, dot(path, "command")));
    HL_TRY(check_windows_program(app.command.front(), at(dot(path, "command"), 0)));
    HL_TRY(check_id(app.icon, dot(path, "icon")));
    HL_TRY(check_list(app.file_types, dot(path, "file_types"), check_mime_type));
    HL_TRY(check_list(app.url_patterns, dot(path, "url_patterns"), check_url_pattern));
    return {};
}

Status validate_assignment(const Assignment& assignment, std::string_view path) {
    HL_TRY(check_id(assignment.id, dot(path, "id")));
    HL_TRY(check_id(assignment.workspace_id, dot(path, "workspace")));
    HL_TRY(check_name(assignment.principal.name, dot(dot(path, "principal"), "name")));
    HL_TRY(check_time(assignment.expires_at, dot(path, "expires_at")));
    if (assignment.offline_limit < 0 || assignment.offline_limit > limits::max_offline_limit)
        return invalid(dot(path, "offline_limit"), "expected 0 to 31622400 seconds (366 days)");
    return {};
}

Status validate(const PolicySet& set) {
    HL_TRY(check_items(set.images, "images", validate_image,
                       [](const ImageRef& i) -> std::string_view { return i.name; }));
    HL_TRY(check_items(set.workspaces, "workspaces", validate_workspace,
                       [](const Workspace& w) -> std::string_view { return w.id; }));
    HL_TRY(check_items(set.apps, "apps", validate_app,
                       [](const PublishedApp& a) -> std::string_view { return a.id; }));
    HL_TRY(check_items(set.assignments, "assignments", validate_assignment,
                       [](const Assignment& a) -> std::string_view { return a.id; }));

    std::set<std::string_view> images;
    for (const auto& image : set.images)
        images.insert(image.name);
    std::set<std::string_view> workspaces;
    for (std::size_t i = 0; i < set.workspaces.size(); ++i) {
        workspaces.insert(set.workspaces[i].id);
        if (!images.contains(set.workspaces[i].image))
            return invalid(dot(at("workspaces", i), "image"),
                           "no image named \"" + set.workspaces[i].image + "\"");
    }
    for (std::size_t i = 0; i < set.apps.size(); ++i)
        if (!workspaces.contains(set.apps[i].workspace_id))
            return invalid(dot(at("apps", i), "workspace"),
                           "no workspace \"" + set.apps[i].workspace_id + "\"");
    for (std::size_t i = 0; i < set.assignments.size(); ++i)
        if (!workspaces.contains(set.assignments[i].workspace_id))
            return invalid(dot(at("assignments", i), "workspace"),
                           "no workspace \"" + set.assignments[i].workspace_id + "\"");
    return {};
}

} // namespace heirloom::policy
