#include "heirloom/common/file.hpp"
#include "heirloom/trim/chunk.hpp"
#include "heirloom/trim/store.hpp"
#include "support/support.hpp"

#include <catch2/catch.hpp>

using namespace heirloom;
using namespace heirloom::trim;

namespace {
struct StoredVersion {
    Bytes manifest;
    ChunkId chunk;
};

StoredVersion make_version(const FamilyKeys& keys, const crypto::SigningKeyPair& pair,
                           std::uint64_t version, std::uint64_t seed) {
    RecordCodec codec;
    Bytes data = test::pseudo_random(2 * block_size, seed);
    BlockTag tags[2];
    tag_blocks(keys, data, tags);
    auto sealed = seal_chunk(keys, codec, tags, data, RecordCodec::Compress::yes);
    REQUIRE(sealed);
    Manifest m;
    m.image = "payroll";
    m.version = version;
    m.virtual_size = 1 << 20;
    m.family = keys.family_id();
    m.chunks.push_back({0, sealed->id, static_cast<std::uint32_t>(sealed->object.size())});
    return {encode_manifest(m, pair.secret_key), sealed->id};
}
} // namespace

TEST_CASE("one process at a time holds a store", "[store]") {
    test::TempDir dir;
    auto first = Store::open(dir / "s");
    REQUIRE(first);
    auto second = Store::open(dir / "s");
    REQUIRE_FALSE(second);
    CHECK(second.error().message.find("in use by another") != std::string::npos);
}

TEST_CASE("staged chunks become visible at flush, versions at commit, old ones are pruned",
          "[store]") {
    test::TempDir dir;
    FamilyKeys keys(crypto::Key{3});
    auto pair = crypto::generate_signing_key();
    auto store = Store::open(dir / "s", 1 << 30);
    REQUIRE(store);
    std::vector<StoredVersion> versions;
    for (std::uint64_t v = 1; v <= 3; ++v) {
        versions.push_back(make_version(keys, pair, v, v));
        RecordCodec codec;
        Bytes data = test::pseudo_random(2 * block_size, v);
        BlockTag tags[2];
        tag_blocks(keys, data, tags);
        auto sealed = seal_chunk(keys, codec, tags, data, RecordCodec::Compress::yes);
        REQUIRE(store->stage_chunk(sealed->id, sealed->object));
        CHECK_FALSE(store->has_chunk(sealed->id)); // staged, not yet durable
        CHECK(fs::exists(store->readable_chunk_file(sealed->id)));
        REQUIRE(store->commit("payroll", v, versions.back().manifest));
        CHECK(store->has_chunk(sealed->id));
        CHECK(*store->current_version("payroll") == v);
    }
    auto pruned = store->prune("payroll", 2, pair.public_key);
    REQUIRE(pruned);
    CHECK(pruned->manifests_removed == 1);
    CHECK(pruned->chunks_removed == 1);
    CHECK_FALSE(store->has_chunk(versions[0].chunk));
    CHECK(store->has_chunk(versions[1].chunk));
    CHECK(store->has_chunk(versions[2].chunk));
    auto m = store->load_manifest("payroll", 3, pair.public_key);
    REQUIRE(m);
    CHECK(m->version == 3);
}

TEST_CASE("reopening a store discards chunks a crash left staged", "[store]") {
    test::TempDir dir;
    { REQUIRE(Store::open(dir / "s")); }
    // A process killed between stage_chunk and flush leaves its file in incoming/.
    REQUIRE(write_file_atomic(dir / "s" / "incoming" / to_hex(ChunkId{1}),
                              as_bytes("not durable yet"), Durability::none));
    auto store = Store::open(dir / "s");
    REQUIRE(store);
    CHECK(fs::is_empty(dir / "s" / "incoming"));
    CHECK_FALSE(store->has_chunk(ChunkId{1}));
}

TEST_CASE("closing a store keeps the chunks it staged", "[store]") {
    test::TempDir dir;
    {
        auto store = Store::open(dir / "s");
        REQUIRE(store);
        REQUIRE(store->stage_chunk(ChunkId{1}, as_bytes("received before the cut")));
    }
    auto store = Store::open(dir / "s");
    REQUIRE(store);
    CHECK(store->has_chunk(ChunkId{1}));
}
