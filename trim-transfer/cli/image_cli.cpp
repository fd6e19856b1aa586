#include "image_cli.hpp"

#include "heirloom/common/crypto.hpp"
#include "heirloom/common/json.hpp"
#include "heirloom/common/log.hpp"
#include "heirloom/trim/image_ops.hpp"
#include "heirloom/trim/keys.hpp"
#include "heirloom/trim/repository.hpp"
#include "heirloom/trim/sync.hpp"
#include "heirloom/trim/vhd.hpp"
#include "terminal_progress.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace heirloom::trim::cli {

namespace {

struct Args {
    bool json = false;
    bool quiet = false;
    std::string keys, repo, store, name, file, out, from;
    std::vector<std::string> seeds;
    std::uint64_t version = 0;
    std::int64_t expires_days = 0;
    bool no_deltas = false;
    unsigned workers = 8;
    std::uint64_t checkpoint_mb = 256;
    std::string ca_file;
    std::string token_file;
};

int report_error(std::string_view command, const Error& e) {
    fmt::print(stderr, "heirloom-image {}: error: {}\n", command, e.message);
    return 1;
}

void print_json(const Json& j) {
    fmt::print("{}\n", j.dump(2));
}

std::optional<std::uint64_t> opt_version(const Args& a) {
    return a.version ? std::optional<std::uint64_t>(a.version) : std::nullopt;
}

int cmd_keygen(const Args& a) {
    if (auto ok = generate_keys(a.out); !ok)
        return report_error("keygen", ok.error());
    if (a.json)
        print_json({{"keys", a.out}});
    else
        fmt::print("Created family.key, signing.key (secret, mode 600) and signing.pub in {}\n"
                   "Keep the secret files private; endpoints need family.key and signing.pub.\n",
                   a.out);
    return 0;
}

int cmd_inspect(const Args& a) {
    auto image = vhd::Image::open(a.file);
    if (!image)
        return report_error("inspect", image.error().context(a.file));
    const auto& f = image->footer();
    bool dynamic = f.disk_type == vhd::DiskType::dynamic;
    Json j = {{"file", a.file},
              {"type", dynamic ? "dynamic" : "fixed"},
              {"virtual_size", image->virtual_size()},
              {"geometry",
               {{"cylinders", f.geometry.cylinders},
                {"heads", f.geometry.heads},
                {"sectors_per_track", f.geometry.sectors_per_track}}},
              {"creator", std::string(f.creator_application.begin(), f.creator_application.end())},
              {"unique_id", to_hex(f.unique_id)}};
    if (dynamic) {
        j["block_size"] = image->dynamic_header()->block_size;
        j["blocks"] = image->dynamic_header()->max_table_entries;
        j["allocated_blocks"] = image->allocated_blocks();
    }
    if (a.json) {
        print_json(j);
        return 0;
    }
    fmt::print("{}: valid {} VHD\n  virtual size  {} ({} bytes)\n  geometry      C/H/S "
               "{}/{}/{}\n  creator       '{}'\n  unique id     {}\n",
               a.file, j["type"].get<std::string>(), format_bytes(image->virtual_size()),
               image->virtual_size(), f.geometry.cylinders, f.geometry.heads,
               f.geometry.sectors_per_track, j["creator"].get<std::string>(), to_hex(f.unique_id));
    if (dynamic)
        fmt::print("  blocks        {} of {} allocated, {} each\n", image->allocated_blocks(),
                   image->dynamic_header()->max_table_entries,
                   format_bytes(image->dynamic_header()->block_size));
    return 0;
}

int cmd_pack(const Args& a) {
    auto keys = load_keys(a.keys, NeedSigningKey::yes);
    if (!keys)
        return report_error("pack", keys.error());
    TerminalProgress progress;
    PackOptions o{
        a.name,      opt_version(a), a.expires_days * 86400, 0, a.quiet ? nullptr : &progress,
        !a.no_deltas};
    auto r = pack_image(a.file, a.repo, *keys, o);
    progress.finish();
    if (!r)
        return report_error("pack", r.error());
    if (a.json) {
        print_json({{"image", r->image},
                    {"version", r->version},
                    {"virtual_size", r->virtual_size},
                    {"data_bytes", r->data_bytes},
                    {"chunks", r->chunks},
                    {"chunks_new", r->chunks_new},
                    {"bytes_new", r->bytes_new},
                    {"manifest_bytes", r->manifest_bytes},
                    {"deltas", r->deltas},
                    {"delta_bytes", r->delta_bytes},
                    {"delta_saving", r->delta_saving},
                    {"seconds", r->seconds}});
        return 0;
    }
    if (r->deltas)
        fmt::print("{} librsync deltas ({}) spare updating endpoints {} of records\n", r->deltas,
                   format_bytes(r->delta_bytes), format_bytes(r->delta_saving));
    fmt::print("Packed {} as '{}' v{} in {:.1f}s: {} of data in {} chunks, {} new ({} stored)\n",
               a.file, r->image, r->version, r->seconds, format_bytes(r->data_bytes), r->chunks,
               r->chunks_new, format_bytes(r->bytes_new));
    return 0;
}

int cmd_sync(const Args& a, const Log& log) {
    auto keys = load_keys(a.keys, NeedSigningKey::no);
    if (!keys)
        return report_error("sync", keys.error());
    TerminalProgress progress;
    SyncOptions o;
    o.from = a.from;
    o.image = a.name;
    o.store = a.store;
    o.seeds.assign(a.seeds.begin(), a.seeds.end());
    o.source.ca_file = a.ca_file;
    if (!a.token_file.empty()) {
        auto token = read_text_file(a.token_file, 4096);
        if (!token)
            return report_error("sync", token.error());
        while (!token->empty() && (token->back() == '\n' || token->back() == '\r'))
            token->pop_back();
        o.source.bearer_token = std::move(*token);
    }
    o.workers = a.workers;
    o.checkpoint_bytes = a.checkpoint_mb << 20;
    o.progress = a.quiet ? nullptr : &progress;
    o.log = &log;
    auto r = sync_image(o, *keys);
    progress.finish();
    if (!r)
        return report_error("sync", r.error());
    Json seeds = Json::object();
    std::uint64_t seeded = 0;
    for (const auto& s : r->from_seeds) {
        seeds[s.seed] = s.bytes;
        seeded += s.bytes;
    }
    if (a.json) {
        print_json({{"image", r->image},
                    {"previous_version", r->previous_version ? Json(*r->previous_version) : Json()},
                    {"version", r->version},
                    {"changed", r->changed},
                    {"virtual_size", r->virtual_size},
                    {"bytes_fetched", r->bytes_fetched},
                    {"manifest_bytes", r->manifest_bytes},
                    {"requests", r->requests},
                    {"blocks_fetched", r->blocks_fetched},
                    {"ideal_bytes", r->blocks_fetched * block_size},
                    {"seed_mismatches", r->seed_mismatches},
                    {"deltas_used", r->deltas_used},
                    {"delta_fallbacks", r->delta_fallbacks},
                    {"bytes_from_seeds", seeds},
                    {"seconds", r->seconds}});
        return 0;
    }
    if (!r->changed) {
        fmt::print("'{}' is up to date at v{}\n", r->image, r->version);
        return 0;
    }
    fmt::print("'{}' is now at v{} (was {}) after {:.1f}s\n  fetched     {} in {} requests "
               "({} distinct blocks no seed had)\n",
               r->image, r->version,
               r->previous_version ? fmt::format("v{}", *r->previous_version) : "none", r->seconds,
               format_bytes(r->bytes_fetched), r->requests, r->blocks_fetched);
    for (const auto& s : r->from_seeds)
        fmt::print("  from {:<10} {}\n", s.seed, format_bytes(s.bytes));
    if (r->deltas_used || r->delta_fallbacks)
        fmt::print("  {} chunks rebuilt from librsync deltas ({} deltas did not verify)\n",
                   r->deltas_used, r->delta_fallbacks);
    return 0;
}

int cmd_export(const Args& a) {
    auto keys = load_keys(a.keys, NeedSigningKey::no);
    if (!keys)
        return report_error("export", keys.error());
    TerminalProgress progress;
    auto r =
        export_image(a.store, a.name, opt_version(a), a.out, *keys, a.quiet ? nullptr : &progress);
    progress.finish();
    if (!r)
        return report_error("export", r.error());
    if (a.json)
        print_json({{"image", a.name},
                    {"version", r->version},
                    {"out", a.out},
                    {"virtual_size", r->virtual_size},
                    {"seconds", r->seconds}});
    else
        fmt::print("Exported '{}' v{} to {} ({} virtual) in {:.1f}s\n", a.name, r->version, a.out,
                   format_bytes(r->virtual_size), r->seconds);
    return 0;
}

int cmd_verify(const Args& a) {
    auto keys = load_keys(a.keys, NeedSigningKey::no);
    if (!keys)
        return report_error("verify", keys.error());
    TerminalProgress progress;
    auto r = verify_image(a.store, a.name, opt_version(a), *keys, a.quiet ? nullptr : &progress);
    progress.finish();
    if (!r)
        return report_error("verify", r.error());
    if (a.json) {
        print_json({{"image", a.name},
                    {"version", r->version},
                    {"chunks", r->chunks},
                    {"ok", r->problems.empty()},
                    {"problems", r->problems},
                    {"seconds", r->seconds}});
    } else if (r->problems.empty()) {
        fmt::print("'{}' v{}: manifest signature and all {} chunks verified ({}) in {:.1f}s\n",
                   a.name, r->version, r->chunks, format_bytes(r->data_bytes), r->seconds);
    } else {
        fmt::print(stderr, "'{}' v{}: {} of {} chunks failed verification:\n", a.name, r->version,
                   r->problems.size(), r->chunks);
        for (const auto& p : r->problems)
            fmt::print(stderr, "  {}\n", p);
        fmt::print(stderr, "Run heirloom-image sync again to repair them.\n");
    }
    return r->problems.empty() ? 0 : 1;
}

int cmd_media_create(const Args& a) {
    TerminalProgress progress;
    auto r = create_media(a.repo, a.name, opt_version(a), a.out, a.quiet ? nullptr : &progress);
    progress.finish();
    if (!r)
        return report_error("media create", r.error());
    if (a.json)
        print_json({{"image", a.name},
                    {"version", r->version},
                    {"chunks", r->chunks},
                    {"chunks_copied", r->chunks_copied},
                    {"bytes_copied", r->bytes_copied},
                    {"seconds", r->seconds}});
    else
        fmt::print("Wrote '{}' v{} to {}: {} chunks ({} copied, {}); encrypted and signed, "
                   "no plaintext\n",
                   a.name, r->version, a.out, r->chunks, r->chunks_copied,
                   format_bytes(r->bytes_copied));
    return 0;
}

} // namespace

int run(int argc, char** argv) {
    CLI::App app{
        "heirloom-image: pack VM images (VHD) into encrypted, signed, versioned chunks and "
        "bring endpoints up to date by block deltas, reusing what they already hold."};
    app.require_subcommand(1);
    app.footer("Run 'heirloom-image COMMAND --help' for the options of a command.");
    Args a;
    auto common = [&](CLI::App* cmd) {
        cmd->add_flag("--json", a.json, "Print the result as JSON on stdout");
        cmd->add_flag("-q,--quiet", a.quiet, "Do not show progress");
    };

    auto* keygen =
        app.add_subcommand("keygen", "Create the signing key pair and image-family secret");
    keygen->add_option("--out", a.out, "Folder to create (family.key, signing.key, signing.pub)")
        ->required();
    common(keygen);

    auto* inspect = app.add_subcommand("inspect", "Validate a VHD (fixed or dynamic) and show its "
                                                  "geometry");
    inspect->add_option("file", a.file, "The .vhd file")->required();
    common(inspect);

    auto* pack = app.add_subcommand("pack", "Add a new version of an image to a repository folder");
    pack->add_option("file", a.file, "The .vhd file to pack")->required();
    pack->add_option("--repo", a.repo, "Repository folder (created if missing)")->required();
    pack->add_option("--name", a.name, "Image name: a-z, 0-9, '.', '_', '-'")->required();
    pack->add_option("--keys", a.keys, "Keys folder made by keygen")->required();
    pack->add_option("--version", a.version, "Version number (default: latest + 1)");
    pack->add_flag("--no-deltas", a.no_deltas,
                   "Do not make librsync deltas against the previous version");
    pack->add_option("--expires-in-days", a.expires_days,
                     "Days until endpoints refuse this manifest (default: never)");
    common(pack);

    auto* sync =
        app.add_subcommand("sync", "Bring a local store to the newest version of an image");
    sync->add_option("--from", a.from, "Repository folder, or http:// or https:// URL of one")
        ->required();
    sync->add_option("--name", a.name, "Image name")->required();
    sync->add_option("--store", a.store, "Local store folder (created if missing)")->required();
    sync->add_option("--keys", a.keys, "Keys folder (family.key and signing.pub are needed)")
        ->required();
    sync->add_option(
        "--seed", a.seeds,
        "A host folder whose files hold image content (Trim Transfer), or a "
        "removable-media folder made by 'media create'; repeatable, in priority order");
    sync->add_option("--workers", a.workers, "Chunks processed and requests in flight at once")
        ->check(CLI::Range(1, 64));
    sync->add_option("--checkpoint-mb", a.checkpoint_mb,
                     "Make fetched chunks durable every this many MiB; an interrupted sync "
                     "resumes from the last checkpoint (default 256)")
        ->check(CLI::Range(1, 1 << 20));
    sync->add_option("--ca-file", a.ca_file, "HTTPS: trust the CA certificates in this file");
    sync->add_option("--token-file", a.token_file,
                     "a file holding the bearer token to send (an agent token of a Heirloom "
                     "server, whose image repositories are at https://SERVER/v1/images/NAME/repo)");
    common(sync);

    auto* exp =
        app.add_subcommand("export", "Write a stored version back to a standard dynamic VHD");
    exp->add_option("--store", a.store, "Local store folder")->required();
    exp->add_option("--name", a.name, "Image name")->required();
    exp->add_option("--keys", a.keys, "Keys folder")->required();
    exp->add_option("--version", a.version, "Version (default: the current one)");
    exp->add_option("--out", a.out, "The .vhd file to write")->required();
    common(exp);

    auto* verify = app.add_subcommand("verify", "Check the manifest signature and every chunk of "
                                                "a stored version");
    verify->add_option("--store", a.store, "Local store folder")->required();
    verify->add_option("--name", a.name, "Image name")->required();
    verify->add_option("--keys", a.keys, "Keys folder")->required();
    verify->add_option("--version", a.version, "Version (default: the current one)");
    common(verify);

    auto* media = app.add_subcommand("media", "Removable-media seeds (USB stick, DVD)");
    media->require_subcommand(1);
    auto* media_create = media->add_subcommand("create", "Write the encrypted chunks and signed "
                                                         "manifest of a version to a folder");
    media_create->add_option("--repo", a.repo, "Repository folder")->required();
    media_create->add_option("--name", a.name, "Image name")->required();
    media_create->add_option("--version", a.version, "Version (default: the latest)");
    media_create->add_option("--out", a.out, "Media folder (e.g. the mounted USB stick)")
        ->required();
    common(media_create);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    if (!crypto::init()) {
        fmt::print(stderr, "heirloom-image: cannot initialise the cryptography library\n");
        return 1;
    }
    Log log(a.quiet || a.json ? LogLevel::warn : LogLevel::info);
    if (keygen->parsed())
        return cmd_keygen(a);
    if (inspect->parsed())
        return cmd_inspect(a);
    if (pack->parsed())
        return cmd_pack(a);
    if (sync->parsed())
        return cmd_sync(a, log);
    if (exp->parsed())
        return cmd_export(a);
    if (verify->parsed())
        return cmd_verify(a);
    if (media_create->parsed())
        return cmd_media_create(a);
    return 2;
}

} // namespace heirloom::trim::cli
