#include "heirloom/trim/delta.hpp"
#include "heirloom/trim/image_ops.hpp"
#include "heirloom/trim/repository.hpp"
#include "heirloom/trim/sync.hpp"
#include "support/images.hpp"
#include "support/support.hpp"

#include <catch2/catch.hpp>

using namespace heirloom;
using namespace heirloom::trim;

namespace {

// Changes a few bytes in place every 4 KiB of some files: edits a block-level sync must
// send whole blocks for, while a byte-level delta needs a few bytes each.
void patch_in_place(test::SyntheticDisk& disk, int files) {
    for (int f = 0; f < files && f < static_cast<int>(disk.files.size()); ++f) {
        auto& file = disk.files[static_cast<std::size_t>(f) * 3 % disk.files.size()];
        for (std::size_t at = 100; at < file.data.size(); at += block_size) {
            file.data[at] ^= 0x5a;
            disk.content[file.offset + at] = file.data[at];
        }
    }
}

struct DeltaEngine {
    test::TempDir dir;
    KeySet keys = test::make_keys(dir / "keys");

    PackResult pack(const test::SyntheticDisk& disk, const fs::path& repo, int n, bool deltas) {
        fs::path vhd = dir / ("v" + std::to_string(n) + ".vhd");
        test::write_vhd(vhd, disk.content, static_cast<std::uint64_t>(n));
        PackOptions o{"payroll", {}, 0, 2, nullptr, deltas};
        auto r = pack_image(vhd, repo, keys, o);
        REQUIRE(r);
        return *r;
    }
    SyncResult sync(const fs::path& repo, const fs::path& store) {
        SyncOptions o;
        o.from = repo.string();
        o.image = "payroll";
        o.store = store;
        auto r = sync_image(o, keys);
        REQUIRE(r);
        return *r;
    }
    Bytes exported(const fs::path& store) {
        REQUIRE(export_image(store, "payroll", std::nullopt, dir / "out.vhd", keys, nullptr));
        return test::read_vhd(dir / "out.vhd");
    }
};

} // namespace

TEST_CASE("librsync deltas carry in-place edits for a fraction of the block records", "[delta]") {
    DeltaEngine e;
    auto disk = test::make_disk(32 << 20, 80, 31);
    e.pack(disk, e.dir / "with", 1, true);
    e.pack(disk, e.dir / "without", 1, false);
    e.sync(e.dir / "with", e.dir / "s-with");
    e.sync(e.dir / "without", e.dir / "s-without");
    patch_in_place(disk, 20);
    PackResult packed = e.pack(disk, e.dir / "with", 2, true);
    CHECK(packed.deltas > 0);
    CHECK(packed.delta_saving > 0);
    e.pack(disk, e.dir / "without", 2, false);

    SyncResult with = e.sync(e.dir / "with", e.dir / "s-with");
    SyncResult without = e.sync(e.dir / "without", e.dir / "s-without");
    // Sync takes a delta only where it beats its own plan (some blocks are duplicates).
    CHECK(with.deltas_used > 0);
    CHECK(with.deltas_used <= packed.deltas);
    CHECK(with.delta_fallbacks == 0);
    CHECK(without.deltas_used == 0);
    // Same plan (same blocks missing), far fewer bytes.
    CHECK(with.blocks_fetched == without.blocks_fetched);
    CHECK(with.bytes_fetched * 3 < without.bytes_fetched);
    CHECK(e.exported(e.dir / "s-with") == disk.content);
    CHECK(e.exported(e.dir / "s-without") == disk.content);
}

TEST_CASE("a tampered delta is refused and the records are fetched instead", "[delta][tamper]") {
    DeltaEngine e;
    auto disk = test::make_disk(16 << 20, 40, 32);
    e.pack(disk, e.dir / "repo", 1, true);
    e.sync(e.dir / "repo", e.dir / "store");
    patch_in_place(disk, 10);
    PackResult packed = e.pack(disk, e.dir / "repo", 2, true);
    REQUIRE(packed.deltas > 0);
    for (const auto& entry : fs::recursive_directory_iterator(e.dir / "repo" / "deltas")) {
        if (!entry.is_regular_file())
            continue;
        auto bytes = read_file(entry.path(), 1 << 20);
        REQUIRE(bytes);
        (*bytes)[bytes->size() / 2] ^= 1;
        test::write_file(entry.path(), *bytes);
    }
    SyncResult r = e.sync(e.dir / "repo", e.dir / "store");
    CHECK(r.deltas_used == 0);
    CHECK(r.delta_fallbacks > 0);
    CHECK(r.delta_fallbacks <= packed.deltas);
    CHECK(e.exported(e.dir / "store") == disk.content);
}

TEST_CASE("delta objects and librsync deltas refuse hostile input", "[delta]") {
    FamilyKeys keys(crypto::Key{9});
    Bytes old_plain = test::pseudo_random(chunk_bytes, 1);
    Bytes new_plain = old_plain;
    new_plain[5000] ^= 1;
    ChunkId from{1}, to{2};
    auto delta = make_delta(old_plain, new_plain);
    REQUIRE(delta);
    CHECK(delta->size() < 2000);
    auto applied = apply_delta(old_plain, *delta, new_plain.size());
    REQUIRE(applied);
    CHECK(*applied == new_plain);
    // The wrong expected size, and garbage, are errors.
    CHECK_FALSE(apply_delta(old_plain, *delta, new_plain.size() - 1));
    CHECK_FALSE(apply_delta(old_plain, *delta, new_plain.size() + 1));
    for (std::uint64_t seed = 0; seed < 50; ++seed) {
        Bytes junk = test::pseudo_random(64 + seed * 13, seed);
        if (seed % 2)
            std::copy(delta->begin(), delta->begin() + 4, junk.begin()); // a valid magic
        CHECK_FALSE(apply_delta(old_plain, junk, new_plain.size()));
    }

    auto sealed = seal_delta(keys, from, to, *delta);
    REQUIRE(sealed);
    auto opened = open_delta(keys, from, to, *sealed);
    REQUIRE(opened);
    CHECK(*opened == *delta);
    CHECK_FALSE(open_delta(keys, to, from, *sealed));
    CHECK_FALSE(open_delta(FamilyKeys(crypto::Key{8}), from, to, *sealed));
    for (std::size_t pos = 0; pos < sealed->size(); ++pos) {
        Bytes bad = *sealed;
        bad[pos] ^= 0x10;
        CHECK_FALSE(open_delta(keys, from, to, bad));
    }
    for (std::size_t len = 0; len < sealed->size(); len += 7)
        CHECK_FALSE(open_delta(keys, from, to, ByteView(sealed->data(), len)));
}
