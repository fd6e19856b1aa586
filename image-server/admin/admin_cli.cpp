#include "admin_cli.hpp"

#include "heirloom/client/password.hpp"
#include "heirloom/common/crypto.hpp"
#include "heirloom/trim/image_ops.hpp"
#include "heirloom/trim/source.hpp"
#include "image_apps.hpp"
#include "push.hpp"
#include "session.hpp"
#include "terminal_progress.hpp"

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <fmt/format.h>
#include <iostream>

namespace heirloom::admin {
namespace {

std::int64_t now() {
    return static_cast<std::int64_t>(std::time(nullptr));
}

std::string date(std::int64_t t) {
    if (t <= 0)
        return "-";
    std::time_t tt = t;
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%d %H:%M", &tm);
    return text;
}

int report_error(const Error& e) {
    std::fprintf(stderr, "heirloom-admin: %s\n", e.message.c_str());
    return 1;
}

// An API client with the saved login.
Result<std::unique_ptr<client::ApiClient>> connect(Session* out = nullptr) {
    Session s = HL_TRY(load_session(now()));
    auto api = HL_TRY(client::ApiClient::open({s.server, s.ca_file, 60}));
    api->set_token(s.token);
    if (out)
        *out = s;
    return api;
}

Result<Json> read_json_input(const std::string& file) {
    std::string text;
    if (file == "-") {
        text.assign(std::istreambuf_iterator<char>(std::cin), {});
    } else {
        text = HL_TRY(read_text_file(file, 8 << 20));
    }
    return parse_json(text, 8 << 20);
}

void print_json(const Json& doc) {
    std::printf("%s\n", doc.dump(2).c_str());
}

std::string text_of(const Json& v) {
    if (v.is_string())
        return v.get<std::string>();
    if (v.is_null())
        return "";
    return v.dump();
}

// Prints rows as aligned columns.
void print_table(const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> width(header.size());
    for (std::size_t i = 0; i < header.size(); ++i)
        width[i] = header[i].size();
    for (const auto& r : rows)
        for (std::size_t i = 0; i < r.size() && i < width.size(); ++i)
            width[i] = std::max(width[i], r[i].size());
    auto line = [&](const std::vector<std::string>& r) {
        std::string out;
        for (std::size_t i = 0; i < r.size(); ++i)
            out += fmt::format("{:<{}}", r[i], i + 1 < r.size() ? width[i] + 2 : 0);
        std::printf("%s\n", out.c_str());
    };
    line(header);
    for (const auto& r : rows)
        line(r);
}

int login(const std::string& server, const std::string& user, const std::string& ca_file) {
    auto api = client::ApiClient::open({server, ca_file, 30});
    if (!api)
        return report_error(api.error());
    auto password = client::read_password("Password for " + user + ": ");
    if (!password)
        return report_error(password.error());
    auto answer = (*api)->post("/v1/login", {{"user", user}, {"password", *password}});
    crypto::secure_wipe({reinterpret_cast<std::uint8_t*>(password->data()), password->size()});
    if (!answer)
        return report_error(answer.error().context("log in to " + (*api)->url().display));
    if (!answer->value("admin", false))
        std::fprintf(stderr,
                     "note: %s is not in the server's admin group; admin commands will "
                     "be refused\n",
                     user.c_str());
    Session s{(*api)->url().display, ca_file, answer->value("user", user),
              answer->value("token", ""), answer->value("expires_at", std::int64_t(0))};
    if (auto saved = save_session(s); !saved)
        return report_error(saved.error());
    std::printf("logged in to %s as %s until %s UTC\n", s.server.c_str(), s.user.c_str(),
                date(s.expires_at).c_str());
    return 0;
}

int logout() {
    auto api = connect();
    if (api)
        (void)(*api)->post("/v1/logout", Json::object());
    if (auto done = forget_session(); !done)
        return report_error(done.error());
    std::printf("logged out\n");
    return 0;
}

int image_list(bool json) {
    auto api = connect();
    if (!api)
        return report_error(api.error());
    auto doc = (*api)->get("/v1/admin/images");
    if (!doc)
        return report_error(doc.error());
    if (json) {
        print_json(*doc);
        return 0;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& image : (*doc)["images"]) {
        if (image["versions"].empty())
            rows.push_back({text_of(image["name"]), "-", "-", "-", "-", "(no versions yet)"});
        for (const auto& v : image["versions"])
            rows.push_back({text_of(image["name"]), text_of(v["version"]),
                            format_bytes(v["virtual_size"].get<std::uint64_t>()),
                            format_bytes(v["object_bytes"].get<std::uint64_t>()),
                            date(v["created"].get<std::int64_t>()), text_of(v["pushed_by"])});
    }
    print_table({"IMAGE", "VERSION", "DISK", "STORED", "PUSHED (UTC)", "BY"}, rows);
    return 0;
}

int image_apps(const std::string& image, std::uint64_t version, bool json) {
    auto api = connect();
    if (!api)
        return report_error(api.error());
    std::string path = "/v1/admin/images/" + client::url_encode(image) + "/apps";
    if (version != 0)
        path += "?version=" + std::to_string(version);
    auto doc = (*api)->get(path);
    if (!doc)
        return report_error(doc.error());
    if (json) {
        print_json(*doc);
        return 0;
    }
    auto text = format_image_apps(*doc);
    if (!text)
        return report_error(text.error());
    std::fputs(text->c_str(), stdout);
    return 0;
}

// Writes a version of an image, as the server holds it (signed manifest, encrypted chunks), to
// a removable-media folder. Endpoints check every byte of it with their own keys.
int media_create(const std::string& image, std::uint64_t version, const fs::path& out, bool json) {
    Session session;
    auto api = connect(&session);
    if (!api)
        return report_error(api.error());
    trim::SourceOptions options;
    options.ca_file = session.ca_file;
    options.bearer_token = session.token;
    options.timeout_seconds = 60;
    auto source = trim::open_source(
        session.server + "/v1/images/" + client::url_encode(image) + "/repo", options);
    if (!source)
        return report_error(source.error());
    trim::cli::TerminalProgress progress;
    auto result = trim::create_media(**source, image,
                                     version ? std::optional<std::uint64_t>(version) : std::nullopt,
                                     out, &progress);
    progress.finish();
    if (!result)
        return report_error(result.error().context("media for " + image));
    if (json) {
        print_json({{"image", image},
                    {"version", result->version},
                    {"folder", out.string()},
                    {"chunks", result->chunks},
                    {"chunks_copied", result->chunks_copied},
                    {"bytes_copied", result->bytes_copied},
                    {"seconds", result->seconds}});
        return 0;
    }
    std::printf("media %s: %s version %llu, %llu chunks (%llu written, %s), %.1f s\n", out.c_str(),
                image.c_str(), static_cast<unsigned long long>(result->version),
                static_cast<unsigned long long>(result->chunks),
                static_cast<unsigned long long>(result->chunks_copied),
                format_bytes(result->bytes_copied).c_str(), result->seconds);
    return 0;
}

int image_push(PushOptions options, bool json) {
    Session session;
    auto api = connect(&session);
    if (!api)
        return report_error(api.error());
    if (options.cache.empty()) {
        const char* cache = std::getenv("XDG_CACHE_HOME");
        const char* home = std::getenv("HOME");
        fs::path base =
            cache && *cache ? fs::path(cache) : fs::path(home ? home : "/tmp") / ".cache";
        options.cache = base / "heirloom-admin" / (*api)->url().host / "repo";
    }
    trim::cli::TerminalProgress progress;
    options.progress = &progress;
    auto result = push_image(**api, session.token, options);
    progress.finish();
    if (!result)
        return report_error(result.error().context("push " + options.vhd.string()));
    if (json) {
        print_json({{"image", result->image},
                    {"version", result->version},
                    {"image_created", result->image_created},
                    {"objects", result->objects},
                    {"objects_uploaded", result->objects_uploaded},
                    {"bytes_uploaded", result->bytes_uploaded},
                    {"manifest_bytes", result->manifest_bytes},
                    {"packed_bytes_new", result->pack.bytes_new},
                    {"deltas", result->pack.deltas},
                    {"seconds", result->seconds}});
        return 0;
    }
    std::printf("pushed %s version %llu: %llu of %llu objects uploaded (%s), manifest %s, %.1f s\n",
                result->image.c_str(), static_cast<unsigned long long>(result->version),
                static_cast<unsigned long long>(result->objects_uploaded),
                static_cast<unsigned long long>(result->objects),
                format_bytes(result->bytes_uploaded).c_str(),
                format_bytes(result->manifest_bytes).c_str(), result->seconds);
    return 0;
}

// The generic commands over one policy collection (workspaces, apps, assignments,
// image-settings).
void add_collection(CLI::App& app, const std::string& command, const std::string& collection,
                    const std::string& what, std::function<int()>& action, bool& json) {
    auto* cmd = app.add_subcommand(command, "list, set or delete " + what);
    cmd->require_subcommand(1);
    auto* list = cmd->add_subcommand("list", "list " + what);
    list->add_flag("--json", json, "print JSON");
    list->callback([&action, &json, collection] {
        action = [&json, collection] {
            auto api = connect();
            if (!api)
                return report_error(api.error());
            auto doc = (*api)->get("/v1/admin/" + collection);
            if (!doc)
                return report_error(doc.error());
            if (json) {
                print_json((*doc)["items"]);
                return 0;
            }
            for (const auto& item : (*doc)["items"])
                std::printf("%s\n", item.dump().c_str());
            return 0;
        };
    });
    auto id = std::make_shared<std::string>();
    auto file = std::make_shared<std::string>();
    auto* set = cmd->add_subcommand("set", "create or replace one of " + what +
                                               " from JSON (docs/policy.md has the fields)");
    set->add_option("id", *id, "its id (for image-settings: the image name)")->required();
    set->add_option("--file", *file, "JSON file, or - for standard input")->required();
    set->callback([&action, collection, id, file] {
        action = [collection, id, file] {
            auto item = read_json_input(*file);
            if (!item)
                return report_error(item.error());
            auto api = connect();
            if (!api)
                return report_error(api.error());
            auto done =
                (*api)->put("/v1/admin/" + collection + "/" + client::url_encode(*id), *item);
            if (!done)
                return report_error(done.error());
            std::printf("%s %s (policy revision %s)\n",
                        done->value("created", false) ? "created" : "updated", id->c_str(),
                        text_of((*done)["revision"]).c_str());
            return 0;
        };
    });
    auto* del = cmd->add_subcommand("delete", "delete one of " + what);
    del->add_option("id", *id, "its id")->required();
    del->callback([&action, collection, id] {
        action = [collection, id] {
            auto api = connect();
            if (!api)
                return report_error(api.error());
            auto done = (*api)->del("/v1/admin/" + collection + "/" + client::url_encode(*id));
            if (!done)
                return report_error(done.error());
            std::printf("deleted %s (policy revision %s)\n", id->c_str(),
                        text_of((*done)["revision"]).c_str());
            return 0;
        };
    });
}

} // namespace

int run(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    if (auto ok = crypto::init(); !ok)
        return report_error(ok.error());
    CLI::App app{"heirloom-admin: administer a Heirloom server from scripts: images and their "
                 "versions, workspaces, apps, assignments, endpoints and the event report. Log "
                 "in first; the password is read from the terminal or HEIRLOOM_PASSWORD."};
    app.require_subcommand(1);
    std::function<int()> action;
    bool json = false;

    std::string server, user, ca_file;
    auto* login_cmd = app.add_subcommand("login", "log in to a server as a directory user");
    login_cmd->add_option("--server", server, "server URL, e.g. https://heirloom.example.org:8443")
        ->required();
    login_cmd->add_option("--user", user, "directory user name")->required();
    login_cmd->add_option("--ca-file", ca_file, "CA certificate to trust for the server");
    login_cmd->callback([&] {
        action = [&] {
            return login(server, user, ca_file);
        };
    });
    app.add_subcommand("logout", "log out and forget the saved login")->callback([&] {
        action = logout;
    });

    auto* image_cmd = app.add_subcommand("image", "images and their versions");
    image_cmd->require_subcommand(1);
    auto* image_list_cmd = image_cmd->add_subcommand("list", "list images and versions");
    image_list_cmd->add_flag("--json", json, "print JSON");
    image_list_cmd->callback([&] {
        action = [&] {
            return image_list(json);
        };
    });
    std::string create_name;
    auto* create_cmd = image_cmd->add_subcommand("create", "create an empty image (and its key)");
    create_cmd->add_option("name", create_name, "image name ([A-Za-z0-9._-], up to 64)")
        ->required();
    create_cmd->callback([&] {
        action = [&] {
            auto api = connect();
            if (!api)
                return report_error(api.error());
            auto done = (*api)->post("/v1/admin/images", {{"name", create_name}});
            if (!done)
                return report_error(done.error());
            std::printf("created image %s\n", create_name.c_str());
            return 0;
        };
    });
    std::string apps_image;
    std::uint64_t apps_version = 0;
    auto* apps_cmd = image_cmd->add_subcommand(
        "apps", "list the apps guests reported for an image version (id, name, command, file "
                "types, whether it has an icon): what can be published from it");
    apps_cmd->add_option("name", apps_image, "image name")->required();
    apps_cmd->add_option("--version", apps_version,
                         "this version (default: the newest version with a report)");
    apps_cmd->add_flag("--json", json, "print JSON");
    apps_cmd->callback([&] {
        action = [&] {
            return image_apps(apps_image, apps_version, json);
        };
    });
    PushOptions push;
    int expires_days = 0;
    bool no_deltas = false;
    auto* push_cmd = image_cmd->add_subcommand(
        "push",
        "pack a VHD and upload it as the image's next version (only what the server lacks)");
    push_cmd->add_option("name", push.image, "image name (created when it does not exist)")
        ->required();
    push_cmd->add_option("vhd", push.vhd, "the VHD (fixed or dynamic)")
        ->required()
        ->check(CLI::ExistingFile);
    push_cmd->add_option("--cache", push.cache,
                         "local repository reused between pushes (default "
                         "~/.cache/heirloom-admin/SERVER/repo)");
    push_cmd->add_option("--expires-in-days", expires_days, "the version expires after this");
    push_cmd->add_flag("--no-deltas", no_deltas, "do not compute byte-level deltas");
    push_cmd->add_option("--connections", push.connections, "parallel uploads (default 4)");
    push_cmd->add_flag("--json", json, "print JSON");
    push_cmd->callback([&] {
        action = [&] {
            push.expires_in_seconds = std::int64_t(expires_days) * 86400;
            push.deltas = !no_deltas;
            return image_push(push, json);
        };
    });

    std::string media_image;
    std::uint64_t media_version = 0;
    fs::path media_out;
    auto* media_cmd = app.add_subcommand("media", "removable-media seeds (USB stick, DVD)");
    media_cmd->require_subcommand(1);
    auto* media_create_cmd = media_cmd->add_subcommand(
        "create", "write an image version from the server to a folder (a mounted USB stick): "
                  "an endpoint imports it even offline, then fetches only what it lacks");
    media_create_cmd->add_option("image", media_image, "image name")->required();
    media_create_cmd->add_option("--out", media_out, "media folder, e.g. /media/usb/heirloom")
        ->required();
    media_create_cmd->add_option("--version", media_version, "version (default: the latest)");
    media_create_cmd->add_flag("--json", json, "print JSON");
    media_create_cmd->callback([&] {
        action = [&] {
            return media_create(media_image, media_version, media_out, json);
        };
    });

    add_collection(app, "workspace", "workspaces", "workspaces", action, json);
    add_collection(app, "app", "apps", "published applications", action, json);
    add_collection(app, "assignment", "assignments", "assignments", action, json);
    add_collection(app, "image-settings", "image-settings",
                   "image settings (minimum or pinned version)", action, json);

    std::string policy_file, policy_out;
    auto* policy_cmd = app.add_subcommand("policy", "the whole policy set as JSON");
    policy_cmd->require_subcommand(1);
    policy_cmd->add_subcommand("get", "print the policy set and its revision")->callback([&] {
        action = [&] {
            auto api = connect();
            if (!api)
                return report_error(api.error());
            auto doc = (*api)->get("/v1/admin/policy");
            if (!doc)
                return report_error(doc.error());
            print_json(*doc);
            return 0;
        };
    });
    auto* put_cmd = policy_cmd->add_subcommand(
        "put", "replace the policy set from {\"revision\": N, \"policy\": {...}} (as get prints)");
    put_cmd->add_option("file", policy_file, "JSON file, or - for standard input")->required();
    put_cmd->callback([&] {
        action = [&] {
            auto doc = read_json_input(policy_file);
            if (!doc)
                return report_error(doc.error());
            Json body = {{"policy", doc->contains("policy") ? (*doc)["policy"] : *doc}};
            if (doc->contains("revision"))
                body["revision"] = (*doc)["revision"];
            auto api = connect();
            if (!api)
                return report_error(api.error());
            auto done = (*api)->put("/v1/admin/policy", body);
            if (!done)
                return report_error(done.error());
            std::printf("saved policy revision %s\n", text_of((*done)["revision"]).c_str());
            return 0;
        };
    });

    std::string kind, query;
    auto* dir_cmd = app.add_subcommand("directory", "search directory users or groups");
    dir_cmd->add_option("kind", kind, "users or groups")
        ->required()
        ->check(CLI::IsMember({"users", "groups"}));
    dir_cmd->add_option("query", query, "text to look for (default: everything)");
    dir_cmd->add_flag("--json", json, "print JSON");
    dir_cmd->callback([&] {
        action = [&] {
            auto api = connect();
            if (!api)
                return report_error(api.error());
            auto doc =
                (*api)->get("/v1/admin/directory/" + kind + "?q=" + client::url_encode(query));
            if (!doc)
                return report_error(doc.error());
            if (json) {
                print_json(*doc);
                return 0;
            }
            std::vector<std::vector<std::string>> rows;
            for (const auto& e : (*doc)[kind])
                rows.push_back({text_of(e["name"]), text_of(e["display_name"]), text_of(e["dn"])});
            print_table({"NAME", "DISPLAY NAME", "DN"}, rows);
            return 0;
        };
    });

    std::string effective_user;
    auto* eff_cmd = app.add_subcommand(
        "effective", "what one user gets, and which assignment decided each control");
    eff_cmd->add_option("user", effective_user, "directory user name")->required();
    eff_cmd->callback([&] {
        action = [&] {
            auto api = connect();
            if (!api)
                return report_error(api.error());
            auto doc = (*api)->get("/v1/admin/effective/" + client::url_encode(effective_user));
            if (!doc)
                return report_error(doc.error());
            print_json(*doc);
            return 0;
        };
    });

    auto* ep_cmd = app.add_subcommand("endpoints", "endpoints with last contact, images, errors");
    ep_cmd->add_flag("--json", json, "print JSON");
    ep_cmd->callback([&] {
        action = [&] {
            auto api = connect();
            if (!api)
                return report_error(api.error());
            auto doc = (*api)->get("/v1/admin/endpoints");
            if (!doc)
                return report_error(doc.error());
            if (json) {
                print_json(*doc);
                return 0;
            }
            std::vector<std::vector<std::string>> rows;
            for (const auto& e : (*doc)["endpoints"]) {
                std::string images;
                for (const auto& i : e["images"])
                    images += (images.empty() ? "" : ", ") + text_of(i["image"]) + " v" +
                              text_of(i["version"]) + " " + text_of(i["state"]);
                rows.push_back({text_of(e["id"]), text_of(e["user"]), text_of(e["hostname"]),
                                date(e["last_contact"].get<std::int64_t>()),
                                e["revoked"].get<bool>() ? "revoked" : images,
                                text_of(e["last_error"])});
            }
            print_table({"ENDPOINT", "USER", "HOST", "LAST CONTACT (UTC)", "IMAGES", "LAST ERROR"},
                        rows);
            return 0;
        };
    });
    std::string revoke_id;
    auto* revoke_cmd = app.add_subcommand("revoke-endpoint", "stop an endpoint's token working");
    revoke_cmd->add_option("id", revoke_id, "endpoint id (ep-…)")->required();
    revoke_cmd->callback([&] {
        action = [&] {
            auto api = connect();
            if (!api)
                return report_error(api.error());
            auto done = (*api)->del("/v1/admin/endpoints/" + client::url_encode(revoke_id));
            if (!done)
                return report_error(done.error());
            std::printf("revoked %s\n", revoke_id.c_str());
            return 0;
        };
    });

    std::map<std::string, std::string> filter;
    bool csv = false;
    auto* report_cmd = app.add_subcommand("report", "agent events: syncs, launches, errors");
    for (const char* key : {"since", "until", "type", "user", "agent", "limit"})
        report_cmd->add_option(std::string("--") + key, filter[key],
                               std::string("only events with this ") + key);
    report_cmd->add_flag("--csv", csv, "print CSV");
    report_cmd->add_flag("--json", json, "print JSON");
    report_cmd->callback([&] {
        action = [&] {
            std::string query_text;
            for (const auto& [key, value] : filter)
                if (!value.empty())
                    query_text +=
                        (query_text.empty() ? "?" : "&") + key + "=" + client::url_encode(value);
            if (csv)
                query_text += (query_text.empty() ? "?" : "&") + std::string("format=csv");
            auto api = connect();
            if (!api)
                return report_error(api.error());
            auto body = (*api)->get_text("/v1/admin/events" + query_text);
            if (!body)
                return report_error(body.error());
            if (csv) {
                std::fwrite(body->data(), 1, body->size(), stdout);
                return 0;
            }
            auto doc = parse_json(*body);
            if (!doc)
                return report_error(doc.error());
            if (json) {
                print_json(*doc);
                return 0;
            }
            std::vector<std::vector<std::string>> rows;
            for (const auto& e : (*doc)["events"])
                rows.push_back({date(e["received"].get<std::int64_t>()), text_of(e["user"]),
                                text_of(e["hostname"]), text_of(e["type"]), text_of(e["image"]),
                                text_of(e["version"]), text_of(e["message"])});
            print_table({"RECEIVED (UTC)", "USER", "HOST", "EVENT", "IMAGE", "VERSION", "MESSAGE"},
                        rows);
            return 0;
        };
    });

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    return action ? action() : 2;
}

} // namespace heirloom::admin
