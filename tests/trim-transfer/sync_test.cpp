// The image engine end to end, in-process: pack a VHD, sync it into a store from a folder or
// a real HTTP server, update it, use seeds, and refuse every kind of bad input.

#include "heirloom/trim/image_ops.hpp"
#include "heirloom/trim/repository.hpp"
#include "heirloom/trim/seeds.hpp"
#include "heirloom/trim/store.hpp"
#include "heirloom/trim/sync.hpp"
#include "support/http_servers.hpp"
#include "support/images.hpp"
#include "support/support.hpp"

#include <catch2/catch.hpp>
#include <set>

using namespace heirloom;
using namespace heirloom::trim;

namespace {

constexpr std::uint64_t disk_size = 48ull << 20;

struct Engine {
    test::TempDir dir;
    KeySet keys = test::make_keys(dir / "keys");
    fs::path repo = dir / "repo";
    fs::path store = dir / "store";

    PackResult pack(const test::SyntheticDisk& disk, const std::string& name = "payroll",
                    std::uint64_t shuffle = 1) {
        fs::path vhd = dir / ("in-" + std::to_string(shuffle) + ".vhd");
        test::write_vhd(vhd, disk.content, shuffle);
        auto r = pack_image(vhd, repo, keys, PackOptions{name, {}, 0, 2, nullptr});
        REQUIRE(r);
        return *r;
    }
    Result<SyncResult> sync(const std::string& from, std::vector<fs::path> seeds = {},
                            const std::string& name = "payroll") {
        SyncOptions o;
        o.from = from;
        o.image = name;
        o.store = store;
        o.seeds = std::move(seeds);
        o.workers = 4;
        return sync_image(o, keys);
    }
    Bytes exported(const std::string& name = "payroll") {
        fs::path out = dir / "export.vhd";
        auto r = export_image(store, name, std::nullopt, out, keys, nullptr);
        REQUIRE(r);
        return test::read_vhd(out);
    }
    std::optional<std::uint64_t> current(const std::string& name = "payroll") {
        auto s = Store::open(store);
        REQUIRE(s);
        auto v = s->current_version(name);
        REQUIRE(v);
        return *v;
    }
    void verify_ok() {
        auto v = verify_image(store, "payroll", std::nullopt, keys, nullptr);
        REQUIRE(v);
        CHECK(v->problems.empty());
    }
};

// Distinct non-zero 4 KiB blocks of `after` that occur nowhere in `before`.
std::uint64_t ideal_blocks(const Bytes& before, const Bytes& after) {
    auto blocks = [](const Bytes& d) {
        std::set<std::string> s;
        for (std::size_t o = 0; o < d.size(); o += block_size) {
            std::string b(d.begin() + static_cast<long>(o),
                          d.begin() + static_cast<long>(o + block_size));
            if (b.find_first_not_of('\0') != std::string::npos)
                s.insert(std::move(b));
        }
        return s;
    };
    auto old_blocks = blocks(before);
    std::uint64_t n = 0;
    for (const auto& b : blocks(after))
        n += old_blocks.contains(b) ? 0 : 1;
    return n;
}

std::uint64_t seed_bytes(const SyncResult& r, const std::string& seed) {
    for (const auto& s : r.from_seeds)
        if (s.seed == seed)
            return s.bytes;
    return 0;
}

void flip_byte(const fs::path& file, std::uint64_t offset) {
    auto data = read_file(file, 1 << 30);
    REQUIRE(data);
    (*data)[offset] ^= 0x20;
    test::write_file(file, *data);
}

} // namespace

TEST_CASE("pack, first sync and export round-trip exactly", "[sync]") {
    Engine e;
    auto disk = test::make_disk(disk_size, 150, 11);
    PackResult packed = e.pack(disk);
    CHECK(packed.version == 1);
    auto r = e.sync(e.repo.string());
    REQUIRE(r);
    CHECK(r->changed);
    CHECK(r->version == 1);
    CHECK(r->blocks_fetched == ideal_blocks(Bytes(disk_size, 0), disk.content));
    CHECK(e.exported() == disk.content);
    e.verify_ok();

    auto again = e.sync(e.repo.string());
    REQUIRE(again);
    CHECK_FALSE(again->changed);
    CHECK(again->bytes_fetched < 64);
}

TEST_CASE("an update fetches only the blocks no seed holds", "[sync]") {
    Engine e;
    auto disk = test::make_disk(disk_size, 150, 12);
    Bytes before = disk.content;
    e.pack(disk, "payroll", 1);
    REQUIRE(e.sync(e.repo.string()));
    test::rewrite_files(disk, 6, 99);
    // Pack v2 from a VHD whose block order differs from v1's.
    PackResult v2 = e.pack(disk, "payroll", 2);
    CHECK(v2.version == 2);
    CHECK(v2.chunks_new < v2.chunks);

    auto r = e.sync(e.repo.string());
    REQUIRE(r);
    CHECK(r->version == 2);
    CHECK(r->blocks_fetched == ideal_blocks(before, disk.content));
    CHECK(seed_bytes(*r, "store") > 0);
    // Records may be compressed; headers and framing are the overhead.
    std::uint64_t ideal = r->blocks_fetched * block_size;
    CHECK(r->bytes_fetched - r->manifest_bytes <= ideal + ideal / 4 + 64 * 1024);
    CHECK(e.exported() == disk.content);
    e.verify_ok();
}

TEST_CASE("sync over HTTP: nginx with ranges, and a server without range support", "[sync][http]") {
    Engine e;
    auto disk = test::make_disk(disk_size, 120, 13);
    Bytes before = disk.content;
    e.pack(disk);
    test::rewrite_files(disk, 5, 7);

    SECTION("nginx") {
        test::NginxServer server(e.repo);
        HL_SKIP_UNLESS_RUNNING(server);
        auto first = e.sync(server.url());
        REQUIRE(first);
        e.pack(disk, "payroll", 2);
        auto update = e.sync(server.url());
        REQUIRE(update);
        std::uint64_t ideal = update->blocks_fetched * block_size;
        CHECK(update->blocks_fetched == ideal_blocks(before, disk.content));
        CHECK(update->bytes_fetched - update->manifest_bytes <= ideal + ideal / 4 + 64 * 1024);
        CHECK(e.exported() == disk.content);
    }
    SECTION("python http.server ignores Range: whole objects, still correct") {
        test::PythonHttpServer server(e.repo);
        HL_SKIP_UNLESS_RUNNING(server);
        REQUIRE(e.sync(server.url()));
        e.pack(disk, "payroll", 2);
        auto update = e.sync(server.url());
        REQUIRE(update);
        CHECK(update->version == 2);
        CHECK(e.exported() == disk.content);
    }
}

TEST_CASE("Trim Transfer: a host folder of the image's files seeds a first sync", "[sync][seed]") {
    Engine e;
    auto disk = test::make_disk(disk_size, 150, 14);
    e.pack(disk);
    fs::path folder = e.dir / "host-files";
    test::write_files(disk, folder, 1);
    auto r = e.sync(e.repo.string(), {folder});
    REQUIRE(r);
    CHECK(seed_bytes(*r, folder.string()) > 0);
    // Every file is in the folder: only the zero-padded tails of files (which the image holds
    // next to other data) and nothing else may need fetching.
    CHECK(r->blocks_fetched * 8 < ideal_blocks(Bytes(disk_size, 0), disk.content));
    CHECK(e.exported() == disk.content);
}

TEST_CASE("Trim Transfer: the folder index is incremental and re-checked on read", "[sync][seed]") {
    test::TempDir dir;
    auto disk = test::make_disk(8 << 20, 40, 19);
    test::write_files(disk, dir / "files", 1);
    FamilyKeys keys(crypto::Key{5});
    auto first = HostFolderSeed::index(dir / "files", dir / "cache", keys, nullptr);
    REQUIRE(first);
    CHECK(first->files_hashed() == first->files());
    auto second = HostFolderSeed::index(dir / "files", dir / "cache", keys, nullptr);
    REQUIRE(second);
    CHECK(second->files_hashed() == 0);
    CHECK(second->files() == first->files());

    // A file changed after indexing no longer matches its tag when read.
    SeedIndex index;
    second->add_to(index, 1);
    index.finish();
    Bytes block(block_size);
    Bytes original(disk.files[0].data.begin(), disk.files[0].data.begin() + block_size);
    BlockTag tag = keys.block_tag(original);
    const BlockLocation* where = index.find(tag);
    REQUIRE(where);
    OpenFiles files;
    CHECK(second->read_block(keys, files, where->object, where->block, tag, block));
    CHECK(block == original);
    flip_byte(dir / "files" / "dir0" / "file0", 10);
    OpenFiles fresh;
    auto bad = second->read_block(keys, fresh, where->object, where->block, tag, block);
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message.find("changed since it was indexed") != std::string::npos);

    auto third = HostFolderSeed::index(dir / "files", dir / "cache", keys, nullptr);
    REQUIRE(third);
    CHECK(third->files_hashed() == 1);
}

TEST_CASE("removable media: a seed folder of encrypted chunks", "[sync][media]") {
    Engine e;
    auto disk = test::make_disk(disk_size, 120, 15);
    e.pack(disk);
    fs::path media = e.dir / "usb";
    auto m = create_media(e.repo, "payroll", std::nullopt, media, nullptr);
    REQUIRE(m);
    CHECK(m->chunks_copied == m->chunks);
    CHECK(is_media_folder(media));
    auto r = e.sync(e.repo.string(), {media});
    REQUIRE(r);
    CHECK(r->blocks_fetched == 0);
    CHECK(seed_bytes(*r, media.string()) > 0);
    CHECK(r->bytes_fetched < 64 * 1024); // the manifest and the version pointer
    CHECK(e.exported() == disk.content);
    // The media never holds plaintext: no 4 KiB block of the disk appears in any file on it.
    for (const auto& entry : fs::recursive_directory_iterator(media)) {
        if (!entry.is_regular_file() || entry.file_size() < block_size)
            continue;
        auto bytes = read_file(entry.path(), 1 << 30);
        REQUIRE(bytes);
        std::string hay(bytes->begin(), bytes->end());
        const auto& f = disk.files[3].data;
        CHECK(hay.find(std::string(f.begin(), f.begin() + 256)) == std::string::npos);
    }
}

TEST_CASE("tampered, replayed, mixed-up and wrongly keyed data is refused", "[sync][tamper]") {
    Engine e;
    auto disk = test::make_disk(disk_size, 100, 16);
    Bytes v1 = disk.content;
    e.pack(disk);
    REQUIRE(e.sync(e.repo.string()));
    test::rewrite_files(disk, 4, 5);
    e.pack(disk, "payroll", 2);
    auto manifest = e.repo / manifest_path("payroll", 2);

    auto refused = [&](std::string_view words) {
        auto r = e.sync(e.repo.string());
        REQUIRE_FALSE(r);
        INFO(r.error().message);
        CHECK(r.error().message.find(words) != std::string::npos);
        CHECK(e.current() == 1u);
        CHECK(e.exported() == v1);
        e.verify_ok();
    };

    SECTION("a tampered chunk header") {
        auto m = parse_manifest(*read_file(manifest), e.keys.signing_public);
        REQUIRE(m);
        // Flip a byte of the block table of a chunk that v1 does not have.
        auto s = Store::open(e.store);
        for (const auto& c : m->chunks) {
            if (s->has_chunk(c.id))
                continue;
            flip_byte(e.repo / chunk_path(c.id), 60);
            break;
        }
        s = Store::open(e.dir / "unused"); // release the store lock
        refused("does not match chunk id");
    }
    SECTION("a tampered record, on a first sync that fetches everything") {
        auto m = parse_manifest(*read_file(manifest), e.keys.signing_public);
        REQUIRE(m);
        flip_byte(e.repo / chunk_path(m->chunks[m->chunks.size() / 2].id),
                  m->chunks[m->chunks.size() / 2].object_size - 20);
        fs::path fresh = e.dir / "fresh-store";
        SyncOptions o;
        o.from = e.repo.string();
        o.image = "payroll";
        o.store = fresh;
        auto r = sync_image(o, e.keys);
        REQUIRE_FALSE(r);
        CHECK(r.error().message.find("authentication tag mismatch") != std::string::npos);
        auto st = Store::open(fresh);
        REQUIRE(st);
        CHECK_FALSE(*st->current_version("payroll"));
    }
    SECTION("a tampered manifest") {
        flip_byte(manifest, 60);
        refused("signature");
    }
    SECTION("a truncated manifest") {
        auto bytes = *read_file(manifest);
        bytes.resize(bytes.size() / 2);
        test::write_file(manifest, bytes);
        refused("signature");
    }
    SECTION("an older manifest replayed as the newest") {
        REQUIRE(e.sync(e.repo.string()));
        test::write_file(e.repo / latest_path("payroll"), as_bytes("1\n"));
        auto r = e.sync(e.repo.string());
        REQUIRE_FALSE(r);
        CHECK(r.error().message.find("refusing to go back") != std::string::npos);
        CHECK(e.current() == 2u);
    }
    SECTION("the manifest of another image") {
        auto other = test::make_disk(disk_size, 20, 17);
        e.pack(other, "billing");
        fs::copy_file(e.repo / manifest_path("billing", 1), manifest,
                      fs::copy_options::overwrite_existing);
        refused("manifest");
    }
    SECTION("wrong keys") {
        KeySet foreign = test::make_keys(e.dir / "other-keys");
        SyncOptions o;
        o.from = e.repo.string();
        o.image = "payroll";
        o.store = e.store;
        auto r = sync_image(o, foreign);
        REQUIRE_FALSE(r);
        CHECK(r.error().message.find("pinned server key") != std::string::npos);
        CHECK(e.current() == 1u);
    }
    SECTION("a source that is missing the image") {
        auto r = e.sync(e.repo.string(), {}, "nosuchimage");
        REQUIRE_FALSE(r);
        CHECK(r.error().code == Errc::not_found);
    }
}

TEST_CASE("pack refuses versions that do not increase", "[sync]") {
    Engine e;
    auto disk = test::make_disk(8 << 20, 10, 18);
    e.pack(disk);
    fs::path vhd = e.dir / "in-1.vhd";
    auto r = pack_image(vhd, e.repo, e.keys, PackOptions{"payroll", 1, 0, 1, nullptr});
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("versions only increase") != std::string::npos);
}

TEST_CASE("identical chunks within one image are built and stored once", "[sync]") {
    Engine e;
    auto disk = test::make_disk(16 << 20, 40, 20);
    // Copy 1 MiB (four whole chunks) to another chunk-aligned place, twice.
    std::copy_n(disk.content.begin() + (1 << 20), 1 << 20, disk.content.begin() + (8 << 20));
    std::copy_n(disk.content.begin() + (1 << 20), 1 << 20, disk.content.begin() + (12 << 20));
    e.pack(disk);
    auto r = e.sync(e.repo.string());
    REQUIRE(r);
    CHECK(seed_bytes(*r, "duplicates") >= 2u << 20);
    CHECK(e.exported() == disk.content);
    e.verify_ok();
}
