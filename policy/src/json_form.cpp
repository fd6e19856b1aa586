#include "json_form.hpp"

#include "heirloom/policy/json.hpp"

#include <array>

namespace heirloom::policy {

namespace detail {

namespace {

constexpr std::array<std::pair<std::string_view, Persistence>, 2> persistence_names{{
    {"persistent", Persistence::persistent},
    {"revertible", Persistence::revertible},
}};
constexpr std::array<std::pair<std::string_view, NetworkMode>, 3> network_names{{
    {"nat", NetworkMode::nat},
    {"off", NetworkMode::off},
    {"allow-list", NetworkMode::allow_list},
}};
constexpr std::array<std::pair<std::string_view, DataFlow>, 4> flow_names{{
    {"off", DataFlow::off},
    {"host-to-guest", DataFlow::host_to_guest},
    {"guest-to-host", DataFlow::guest_to_host},
    {"both", DataFlow::both},
}};
constexpr std::array<std::pair<std::string_view, Printing>, 2> printing_names{{
    {"off", Printing::off},
    {"on", Printing::on},
}};
constexpr std::array<std::pair<std::string_view, RemovableMedia>, 3> media_names{{
    {"off", RemovableMedia::off},
    {"read-only", RemovableMedia::read_only},
    {"read-write", RemovableMedia::read_write},
}};
constexpr std::array<std::pair<std::string_view, PrincipalKind>, 2> principal_names{{
    {"user", PrincipalKind::user},
    {"group", PrincipalKind::group},
}};
constexpr std::array<std::pair<std::string_view, OnExpiry>, 2> on_expiry_names{{
    {"stop", OnExpiry::stop},
    {"stop-and-wipe", OnExpiry::stop_and_wipe},
}};

template <class E, std::size_t N>
EnumNames<E> names(const std::array<std::pair<std::string_view, E>, N>& table) {
    return {table.data(), table.size()};
}

} // namespace

Result<OnExpiry> parse_on_expiry(const Json& value, std::string_view path) {
    return read_enum(value, path, names(on_expiry_names));
}

std::string_view on_expiry_name(OnExpiry on_expiry) {
    return enum_name(names(on_expiry_names), on_expiry);
}

Json image_to_json(const ImageRef& image) {
    Json j = {{"name", image.name}};
    if (image.minimum_version)
        j["minimum_version"] = *image.minimum_version;
    if (image.pinned_version)
        j["pinned_version"] = *image.pinned_version;
    return j;
}

Result<ImageRef> parse_image(const Json& value, std::string_view path) {
    HL_TRY(expect_object(value, path, {"name", "minimum_version", "pinned_version"}));
    ImageRef image;
    image.name = HL_TRY(string_field(value, path, "name"));
    if (value.contains("minimum_version"))
        image.minimum_version =
            HL_TRY(read_uint(value["minimum_version"], join(path, "minimum_version")));
    if (value.contains("pinned_version"))
        image.pinned_version =
            HL_TRY(read_uint(value["pinned_version"], join(path, "pinned_version")));
    return image;
}

Json workspace_to_json(const Workspace& workspace) {
    Json network = {{"mode", enum_name(names(network_names), workspace.network.mode)}};
    if (workspace.network.mode == NetworkMode::allow_list)
        network["hosts"] = workspace.network.allowed_hosts;
    Json j = {
        {"id", workspace.id},
        {"display_name", workspace.display_name},
        {"image", workspace.image},
        {"persistence", enum_name(names(persistence_names), workspace.persistence)},
        {"memory_mib", workspace.memory_mib},
        {"network", network},
    };
    if (workspace.frame_colour)
        j["frame_colour"] = *workspace.frame_colour;
    if (workspace.host_check)
        j["host_check"] = *workspace.host_check;
    return j;
}

Result<Workspace> parse_workspace(const Json& value, std::string_view path) {
    HL_TRY(expect_object(value, path,
                         {"id", "display_name", "image", "persistence", "memory_mib",
                          "frame_colour", "host_check", "network"}));
    auto field = [&](std::string_view key) {
        return member(value, path, key);
    };
    Workspace w;
    w.id = HL_TRY(string_field(value, path, "id"));
    w.display_name = HL_TRY(string_field(value, path, "display_name"));
    w.image = HL_TRY(string_field(value, path, "image"));
    w.persistence = HL_TRY(enum_field(value, path, "persistence", names(persistence_names)));
    w.memory_mib = static_cast<std::uint32_t>(HL_TRY(
        int_field(value, path, "memory_mib", limits::min_memory_mib, limits::max_memory_mib)));
    if (value.contains("frame_colour"))
        w.frame_colour = HL_TRY(read_string(value["frame_colour"], join(path, "frame_colour")));
    if (value.contains("host_check"))
        w.host_check =
            HL_TRY(read_strings(value["host_check"], join(path, "host_check"), limits::arguments));

    const Json& network = *HL_TRY(field("network"));
    std::string network_path = join(path, "network");
    HL_TRY(expect_object(network, network_path, {"mode", "hosts"}));
    w.network.mode = HL_TRY(enum_field(network, network_path, "mode", names(network_names)));
    // Hosts are required with an allow-list and refused otherwise, so the form round-trips.
    bool has_hosts = network.contains("hosts");
    if (w.network.mode == NetworkMode::allow_list && !has_hosts)
        return fail(Errc::invalid_argument, join(network_path, "hosts") + ": missing");
    if (w.network.mode != NetworkMode::allow_list && has_hosts)
        return fail(Errc::invalid_argument,
                    join(network_path, "hosts") + ": only allowed with mode allow-list");
    if (has_hosts)
        w.network.allowed_hosts = HL_TRY(
            read_strings(network["hosts"], join(network_path, "hosts"), limits::list_entries));
    return w;
}

Json app_to_json(const PublishedApp& app) {
    Json out = {
        {"id", app.id},
        {"workspace", app.workspace_id},
        {"display_name", app.display_name},
        {"command", app.command},
        {"icon", app.icon},
        {"file_types", app.file_types},
        {"url_patterns", app.url_patterns},
    };
    // Only when set: policies without shortcuts stay readable by agents that predate them.
    if (app.desktop_shortcut)
        out["desktop_shortcut"] = true;
    return out;
}

Result<PublishedApp> parse_app(const Json& value, std::string_view path) {
    HL_TRY(expect_object(value, path,
                         {"id", "workspace", "display_name", "command", "icon", "file_types",
                          "url_patterns", "desktop_shortcut"}));
    auto text = [&](std::string_view key) -> Result<std::string> {
        return string_field(value, path, key);
    };
    auto list = [&](std::string_view key, std::size_t max) -> Result<std::vector<std::string>> {
        return strings_field(value, path, key, max);
    };
    PublishedApp app;
    app.id = HL_TRY(text("id"));
    app.workspace_id = HL_TRY(text("workspace"));
    app.display_name = HL_TRY(text("display_name"));
    app.command = HL_TRY(list("command", limits::arguments));
    app.icon = HL_TRY(text("icon"));
    app.file_types = HL_TRY(list("file_types", limits::list_entries));
    app.url_patterns = HL_TRY(list("url_patterns", limits::list_entries));
    if (value.contains("desktop_shortcut"))
        app.desktop_shortcut =
            HL_TRY(read_bool(value["desktop_shortcut"], join(path, "desktop_shortcut")));
    return app;
}

Json controls_to_json(const DeviceControls& controls) {
    return {
        {"clipboard", enum_name(names(flow_names), controls.clipboard)},
        {"file_transfer", enum_name(names(flow_names), controls.file_transfer)},
        {"printing", enum_name(names(printing_names), controls.printing)},
        {"removable_media", enum_name(names(media_names), controls.removable_media)},
    };
}

Result<DeviceControls> parse_controls(const Json& value, std::string_view path) {
    HL_TRY(
        expect_object(value, path, {"clipboard", "file_transfer", "printing", "removable_media"}));
    DeviceControls c;
    c.clipboard = HL_TRY(enum_field(value, path, "clipboard", names(flow_names)));
    c.file_transfer = HL_TRY(enum_field(value, path, "file_transfer", names(flow_names)));
    c.printing = HL_TRY(enum_field(value, path, "printing", names(printing_names)));
    c.removable_media = HL_TRY(enum_field(value, path, "removable_media", names(media_names)));
    return c;
}

Json assignment_to_json(const Assignment& a) {
    return {
        {"id", a.id},
        {"workspace", a.workspace_id},
        {"principal",
         {{"kind", enum_name(names(principal_names), a.principal.kind)},
          {"name", a.principal.name}}},
        {"controls", controls_to_json(a.controls)},
        {"expires_at", a.expires_at},
        {"offline_limit", a.offline_limit},
        {"on_expiry", on_expiry_name(a.on_expiry)},
        {"overriding", a.overriding == Overriding::yes},
    };
}

Result<Assignment> parse_assignment(const Json& value, std::string_view path) {
    HL_TRY(expect_object(value, path,
                         {"id", "workspace", "principal", "controls", "expires_at", "offline_limit",
                          "on_expiry", "overriding"}));
    auto field = [&](std::string_view key) {
        return member(value, path, key);
    };
    Assignment a;
    a.id = HL_TRY(string_field(value, path, "id"));
    a.workspace_id = HL_TRY(string_field(value, path, "workspace"));

    const Json& principal = *HL_TRY(field("principal"));
    std::string principal_path = join(path, "principal");
    HL_TRY(expect_object(principal, principal_path, {"kind", "name"}));
    a.principal.kind =
        HL_TRY(enum_field(principal, principal_path, "kind", names(principal_names)));
    a.principal.name = HL_TRY(string_field(principal, principal_path, "name"));

    a.controls = HL_TRY(parse_member(value, path, "controls", parse_controls));
    a.expires_at = HL_TRY(int_field(value, path, "expires_at", 0, limits::max_time));
    a.offline_limit = HL_TRY(int_field(value, path, "offline_limit", 0, limits::max_offline_limit));
    a.on_expiry = HL_TRY(parse_member(value, path, "on_expiry", parse_on_expiry));
    bool overriding = HL_TRY(bool_field(value, path, "overriding"));
    a.overriding = overriding ? Overriding::yes : Overriding::no;
    return a;
}

std::string_view flow_name(DataFlow flow) {
    return enum_name(names(flow_names), flow);
}
std::string_view printing_name(Printing p) {
    return enum_name(names(printing_names), p);
}
std::string_view media_name(RemovableMedia m) {
    return enum_name(names(media_names), m);
}

} // namespace detail

namespace {

// Parses one top-level list of items with the item parser, naming each by its index.
template <class T, class Parse>
Result<std::vector<T>> parse_list(const Json& doc, std::string_view key, Parse parse) {
    const Json& list = *HL_TRY(detail::member(doc, "", key));
    HL_TRY(detail::expect_array(list, key, limits::set_entries));
    std::vector<T> out;
    out.reserve(list.size());
    for (std::size_t i = 0; i < list.size(); ++i)
        out.push_back(HL_TRY(parse(list[i], detail::index(key, i))));
    return out;
}

template <class T, class ToJson> Json list_to_json(const std::vector<T>& items, ToJson to) {
    Json list = Json::array();
    for (const auto& item : items)
        list.push_back(to(item));
    return list;
}

} // namespace

Json to_json(const PolicySet& set) {
    return {
        {"images", list_to_json(set.images, detail::image_to_json)},
        {"workspaces", list_to_json(set.workspaces, detail::workspace_to_json)},
        {"apps", list_to_json(set.apps, detail::app_to_json)},
        {"assignments", list_to_json(set.assignments, detail::assignment_to_json)},
    };
}

Result<PolicySet> parse_policy_set(std::string_view json) {
    Json doc = HL_TRY_CTX(parse_json(json, max_policy_document), "policy set");
    HL_TRY(detail::expect_object(doc, "", {"images", "workspaces", "apps", "assignments"}));
    PolicySet set;
    set.images = HL_TRY(parse_list<ImageRef>(doc, "images", detail::parse_image));
    set.workspaces = HL_TRY(parse_list<Workspace>(doc, "workspaces", detail::parse_workspace));
    set.apps = HL_TRY(parse_list<PublishedApp>(doc, "apps", detail::parse_app));
    set.assignments = HL_TRY(parse_list<Assignment>(doc, "assignments", detail::parse_assignment));
    HL_TRY(validate(set));
    return set;
}

std::string_view to_string(DataFlow flow) {
    return detail::flow_name(flow);
}
std::string_view to_string(Printing printing) {
    return detail::printing_name(printing);
}
std::string_view to_string(RemovableMedia media) {
    return detail::media_name(media);
}
std::string_view to_string(OnExpiry on_expiry) {
    return detail::on_expiry_name(on_expiry);
}

} // namespace heirloom::policy
