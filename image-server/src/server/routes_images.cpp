// Admin routes for images: create one, fetch its key to pack a version, and push a version
// by uploading only the objects the server lacks, then its manifest.

#include "heirloom/server/service.hpp"

namespace heirloom::server {
namespace {

constexpr std::size_t max_objects_per_query = 20000;

Json version_json(const VersionRecord& v) {
    return {{"version", v.version},           {"created", v.created},
            {"virtual_size", v.virtual_size}, {"chunks", v.chunks},
            {"object_bytes", v.object_bytes}, {"manifest_bytes", v.manifest_bytes},
            {"pushed_by", v.pushed_by}};
}

} // namespace

void Service::admin_images(const Request& request, Response& response) {
    auto a = admin(request);
    if (!a)
        return send_error(response, a.error());
    auto images = ctx_.metadata.images();
    if (!images)
        return send_error(response, images.error());
    Json list = Json::array();
    for (const auto& image : *images) {
        auto latest = ctx_.images.latest(image.name);
        auto versions = ctx_.metadata.versions(image.name);
        if (!latest || !versions)
            return send_error(response, !latest ? latest.error() : versions.error());
        Json vs = Json::array();
        for (const auto& v : *versions)
            if (*latest && v.version <= **latest) // newer rows belong to an unfinished push
                vs.push_back(version_json(v));
        list.push_back({{"name", image.name},
                        {"created", image.created},
                        {"family_id", image.family_id},
                        {"latest", latest->value_or(0)},
                        {"versions", vs}});
    }
    send_json(response, {{"images", list}});
}

void Service::admin_image_create(const Request& request, Response& response) {
    auto a = admin(request);
    if (!a)
        return send_error(response, a.error());
    auto name = parse_image_create(request.body);
    if (!name)
        return send_error(response, name.error());
    auto existing = ctx_.metadata.image(*name);
    if (!existing)
        return send_error(response, existing.error());
    if (*existing)
        return send_error(response, Error{Errc::conflict, "image " + *name + " already exists"});
    auto family = ctx_.images.create_image(*name);
    if (!family)
        return send_error(response, family.error());
    if (auto added = ctx_.metadata.add_image({*name, to_hex(*family), ctx_.now()}); !added)
        return send_error(response, added.error());
    if (auto listed = ensure_policy_image(*a, *name); !listed)
        return send_error(response, listed.error());
    ctx_.log.info("image {} created by {}", *name, a->user);
    send_json(response, {{"name", *name}, {"family_id", to_hex(*family)}}, 201);
}

void Service::admin_image_key(const Request& request, Response& response) {
    auto a = admin(request);
    if (!a)
        return send_error(response, a.error());
    std::string name = request.matches[1];
    auto secret = ctx_.images.family_secret(name);
    if (!secret)
        return send_error(response, secret.error());
    auto latest = ctx_.images.latest(name);
    if (!latest)
        return send_error(response, latest.error());
    trim::FamilyKeys keys(*secret);
    response.set_header("Cache-Control", "no-store");
    send_json(response, {{"image", name},
                         {"family_id", to_hex(keys.family_id())},
                         {"family_secret", to_hex(*secret)},
                         {"latest", latest->value_or(0)}});
    crypto::secure_wipe(*secret);
}

void Service::admin_image_missing(const Request& request, Response& response) {
    auto a = admin(request);
    if (!a)
        return send_error(response, a.error());
    auto paths = parse_object_list(request.body, max_objects_per_query);
    if (!paths)
        return send_error(response, paths.error());
    auto missing = ctx_.images.missing(request.matches[1].str(), *paths);
    if (!missing)
        return send_error(response, missing.error());
    send_json(response, {{"missing", *missing}});
}

void Service::admin_image_upload(const Request& request, Response& response,
                                 const httplib::ContentReader& reader) {
    auto a = admin(request);
    if (!a)
        return send_error(response, a.error());
    std::string name = request.matches[1];
    std::string path = request.matches[2];
    auto upload = ctx_.images.begin_upload(name, path, ctx_.config.max_upload_object);
    if (!upload)
        return send_error(response, upload.error());
    Status written;
    bool complete = reader([&](const char* data, std::size_t size) {
        written = upload->append({reinterpret_cast<const std::uint8_t*>(data), size});
        return written.has_value();
    });
    if (!written)
        return send_error(response, written.error());
    if (!complete)
        return send_error(response,
                          Error{Errc::network, "the upload was cut short; send it again"});
    auto stored = upload->finish();
    if (!stored) {
        // The bytes are not what the name says: refuse them, whatever the code underneath.
        Error e = stored.error();
        if (e.code == Errc::crypto || e.code == Errc::corrupt)
            e = Error{Errc::invalid_argument, "refused " + path + ": " + e.message};
        return send_error(response, e);
    }
    send_json(response, {{"stored", *stored}}, *stored ? 201 : 200);
}

void Service::admin_image_commit(const Request& request, Response& response,
                                 const httplib::ContentReader& reader) {
    auto a = admin(request);
    if (!a)
        return send_error(response, a.error());
    std::string name = request.matches[1];
    auto version = parse_version_number(request.matches[2].str());
    if (!version)
        return send_error(response, version.error());
    Bytes manifest;
    bool too_large = false;
    bool complete = reader([&](const char* data, std::size_t size) {
        if (manifest.size() + size > trim::max_manifest_size) {
            too_large = true;
            return false;
        }
        manifest.insert(manifest.end(), data, data + size);
        return true;
    });
    if (too_large)
        return send_error(response, Error{Errc::invalid_argument, "manifest too large"});
    if (!complete)
        return send_error(response,
                          Error{Errc::network, "the upload was cut short; send it again"});
    auto record = ctx_.images.commit_version(name, *version, manifest, ctx_.keys, a->user,
                                             ctx_.now(), ctx_.metadata);
    if (!record) {
        Error e = record.error();
        if (e.code == Errc::crypto || e.code == Errc::corrupt)
            e.code = Errc::invalid_argument;
        return send_error(response, e);
    }
    ctx_.log.info("image {} version {} pushed by {}", name, *version, a->user);
    send_json(response, version_json(*record), 201);
}

} // namespace heirloom::server
