// The apps guests hold: agents report them per image version, admins list them (and their
// icons) when they publish an app.

#include "heirloom/server/service.hpp"

namespace heirloom::server {
namespace {

// The versions of image that were pushed to the end (newer rows belong to an unfinished push).
Result<bool> has_version(Metadata& metadata, ImageStore& images, const std::string& image,
                         std::uint64_t version) {
    auto latest = HL_TRY(images.latest(image));
    if (!latest || version > *latest)
        return false;
    for (const auto& v : HL_TRY(metadata.versions(image)))
        if (v.version == version)
            return true;
    return false;
}

} // namespace

void Service::agent_app_report(const Request& request, Response& response) {
    auto c = caller(request);
    if (!c)
        return send_error(response, c.error());
    if (!c->agent)
        return send_error(response, Error{Errc::denied, "app reports are for enrolled agents"});
    std::string name = request.matches[1];
    auto version = parse_version_number(request.matches[2].str());
    if (!version)
        return send_error(response, version.error());
    auto images = assigned_images(*c);
    if (!images)
        return send_error(response, images.error());
    if (!images->contains(name))
        return send_error(response,
                          Error{Errc::denied, "image " + name + " is not assigned to " + c->user});
    auto known = has_version(ctx_.metadata, ctx_.images, name, *version);
    if (!known)
        return send_error(response, known.error());
    if (!*known)
        return send_error(response, Error{Errc::not_found, "image " + name + " has no version " +
                                                               std::to_string(*version)});
    auto apps = parse_app_report(request.body);
    if (!apps)
        return send_error(response, apps.error());
    AppReport report{name, *version, c->agent->id, c->user, {}, ctx_.now(), std::move(*apps), {}};
    if (auto saved = ctx_.metadata.save_app_report(report); !saved)
        return send_error(response, saved.error());
    ctx_.log.info("endpoint {} reported {} apps in {} version {}", c->agent->id, report.apps.size(),
                  name, *version);
    send_json(response, {{"image", name}, {"version", *version}, {"stored", report.apps.size()}});
}

void Service::admin_image_apps(const Request& request, Response& response) {
    auto a = admin(request);
    if (!a)
        return send_error(response, a.error());
    std::string name = request.matches[1];
    auto image = ctx_.metadata.image(name);
    if (!image)
        return send_error(response, image.error());
    if (!*image)
        return send_error(response, Error{Errc::not_found, "no image " + name});
    std::optional<std::uint64_t> version;
    if (request.has_param("version")) {
        auto wanted = parse_version_number(request.get_param_value("version"));
        if (!wanted)
            return send_error(response, wanted.error());
        version = *wanted;
    }
    auto report = ctx_.metadata.app_report(name, version);
    if (!report)
        return send_error(response, report.error());
    if (!*report) {
        Json none = {{"image", name}, {"version", nullptr}, {"apps", Json::array()}};
        if (version)
            none["version"] = *version;
        return send_json(response, none);
    }
    const auto& r = **report;
    Json apps = Json::array();
    for (std::size_t i = 0; i < r.apps.size(); ++i) {
        const auto& app = r.apps[i];
        Json icon = nullptr;
        if (r.has_icon[i]) // names and ids are URL-safe: [A-Za-z0-9._-]
            icon = "/v1/admin/images/" + name + "/versions/" + std::to_string(r.version) +
                   "/apps/" + app.id + "/icon";
        apps.push_back({{"id", app.id},
                        {"name", app.name},
                        {"command", app.command},
                        {"file_types", app.file_types},
                        {"icon_url", icon}});
    }
    send_json(response,
              {{"image", name},
               {"version", r.version},
               {"reported_at", r.reported},
               {"reported_by", {{"agent", r.agent}, {"user", r.user}, {"hostname", r.hostname}}},
               {"apps", apps}});
}

void Service::admin_app_icon(const Request& request, Response& response) {
    auto a = admin(request);
    if (!a)
        return send_error(response, a.error());
    std::string name = request.matches[1];
    auto version = parse_version_number(request.matches[2].str());
    if (!version)
        return send_error(response, version.error());
    std::string id = request.matches[3];
    auto icon = ctx_.metadata.app_icon(name, *version, id);
    if (!icon)
        return send_error(response, icon.error());
    if (!*icon)
        return send_error(response,
                          Error{Errc::not_found, "no icon for app " + id + " in " + name +
                                                     " version " + std::to_string(*version)});
    response.set_header("X-Content-Type-Options", "nosniff");
    response.set_header("Content-Security-Policy", "default-src 'none'");
    response.set_header("Cache-Control", "private, no-cache");
    response.set_content(std::string((*icon)->begin(), (*icon)->end()), "image/png");
}

} // namespace heirloom::server
