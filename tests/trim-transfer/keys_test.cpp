#include "heirloom/trim/keys.hpp"
#include "support/support.hpp"

#include <catch2/catch.hpp>
#include <sys/stat.h>

using namespace heirloom;
using namespace heirloom::trim;

TEST_CASE("keygen writes private keys only the owner can read, and never overwrites", "[keys]") {
    test::TempDir dir;
    REQUIRE(generate_keys(dir / "k"));
    struct stat st {};
    REQUIRE(::stat((dir / "k" / "family.key").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    REQUIRE(::stat((dir / "k" / "signing.key").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    auto again = generate_keys(dir / "k");
    REQUIRE_FALSE(again);
    CHECK(again.error().message.find("refusing to overwrite") != std::string::npos);
    auto keys = load_keys(dir / "k", NeedSigningKey::yes);
    REQUIRE(keys);
    CHECK(keys->signing_secret.has_value());
}

TEST_CASE("keys readable by others, damaged or mismatched are refused", "[keys]") {
    test::TempDir dir;
    REQUIRE(generate_keys(dir / "k"));
    SECTION("group-readable secret") {
        ::chmod((dir / "k" / "family.key").c_str(), 0640);
        auto keys = load_keys(dir / "k", NeedSigningKey::no);
        REQUIRE_FALSE(keys);
        CHECK(keys.error().message.find("chmod 600") != std::string::npos);
    }
    SECTION("not hex") {
        test::write_file(dir / "k" / "signing.pub", as_bytes("zz\n"));
        CHECK_FALSE(load_keys(dir / "k", NeedSigningKey::no));
    }
    SECTION("a public key from another pair") {
        REQUIRE(generate_keys(dir / "other"));
        fs::copy_file(dir / "other" / "signing.pub", dir / "k" / "signing.pub",
                      fs::copy_options::overwrite_existing);
        auto keys = load_keys(dir / "k", NeedSigningKey::yes);
        REQUIRE_FALSE(keys);
        CHECK(keys.error().message.find("not a pair") != std::string::npos);
    }
    SECTION("missing folder") {
        auto keys = load_keys(dir / "nope", NeedSigningKey::no);
        REQUIRE_FALSE(keys);
        CHECK(keys.error().code == Errc::not_found);
    }
}

TEST_CASE("derived identifiers are keyed", "[keys]") {
    FamilyKeys a(crypto::Key{1});
    FamilyKeys b(crypto::Key{2});
    Bytes block = test::pseudo_random(block_size, 3);
    CHECK(a.block_tag(block) == a.block_tag(block));
    CHECK(a.block_tag(block) != b.block_tag(block));
    CHECK(a.family_id() != b.family_id());
    BlockTag tags[2] = {a.block_tag(block), zero_tag};
    CHECK(a.chunk_id(tags) != b.chunk_id(tags));
}
