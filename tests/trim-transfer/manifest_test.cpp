#include "heirloom/trim/manifest.hpp"

#include <catch2/catch.hpp>

using namespace heirloom;
using namespace heirloom::trim;

namespace {
Manifest sample(std::uint64_t version = 3) {
    Manifest m;
    m.image = "payroll";
    m.version = version;
    m.created = 1700000000;
    m.expires = 0;
    m.virtual_size = 10ull << 20;
    m.family = FamilyId{9};
    for (std::uint32_t i : {0u, 3u, 39u})
        m.chunks.push_back({i, ChunkId{static_cast<std::uint8_t>(i + 1)}, 5000});
    return m;
}
} // namespace

TEST_CASE("a signed manifest round-trips", "[manifest]") {
    auto pair = crypto::generate_signing_key();
    Manifest m = sample();
    Bytes bytes = encode_manifest(m, pair.secret_key);
    auto parsed = parse_manifest(bytes, pair.public_key);
    REQUIRE(parsed);
    CHECK(parsed->image == "payroll");
    CHECK(parsed->version == 3);
    CHECK(parsed->virtual_size == m.virtual_size);
    REQUIRE(parsed->chunks.size() == 3);
    CHECK(parsed->chunks[2].index == 39);
    CHECK(parsed->chunks[2].id == m.chunks[2].id);
}

TEST_CASE("any changed byte breaks the manifest signature", "[manifest]") {
    auto pair = crypto::generate_signing_key();
    Bytes bytes = encode_manifest(sample(), pair.secret_key);
    for (std::size_t pos = 0; pos < bytes.size(); ++pos) {
        Bytes bad = bytes;
        bad[pos] ^= 1;
        auto parsed = parse_manifest(bad, pair.public_key);
        REQUIRE_FALSE(parsed);
        CHECK(parsed.error().code == Errc::crypto);
    }
}

TEST_CASE("truncated manifests and other servers' manifests are refused", "[manifest]") {
    auto pair = crypto::generate_signing_key();
    auto other = crypto::generate_signing_key();
    Bytes bytes = encode_manifest(sample(), pair.secret_key);
    for (std::size_t len = 0; len < bytes.size(); ++len)
        CHECK_FALSE(parse_manifest(ByteView(bytes.data(), len), pair.public_key));
    auto parsed = parse_manifest(bytes, other.public_key);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().message.find("pinned server key") != std::string::npos);
}

TEST_CASE("structurally invalid manifests are refused even when signed", "[manifest]") {
    auto pair = crypto::generate_signing_key();
    auto refused = [&](Manifest m, std::string_view words) {
        auto parsed = parse_manifest(encode_manifest(m, pair.secret_key), pair.public_key);
        REQUIRE_FALSE(parsed);
        INFO(parsed.error().message);
        CHECK(parsed.error().message.find(words) != std::string::npos);
    };
    Manifest m = sample();
    std::swap(m.chunks[0], m.chunks[1]);
    refused(m, "out of order");
    m = sample();
    m.chunks.push_back({40, ChunkId{}, 5000});
    refused(m, "beyond the disk");
    m = sample();
    m.chunks[0].object_size = 3;
    refused(m, "impossible");
    m = sample();
    m.image = "../etc";
    refused(m, "invalid image name");
    m = sample();
    m.version = 0;
    refused(m, "version 0");
    m = sample();
    m.virtual_size = 1000;
    refused(m, "virtual size");
}

TEST_CASE("manifest expectations: name, family, replay and expiry", "[manifest]") {
    Manifest m = sample(5);
    ManifestExpectations ok{"payroll", FamilyId{9}, 4, 1800000000};
    CHECK(check_manifest(m, ok));
    auto e = ok;
    e.image = "billing";
    CHECK(check_manifest(m, e).error().message.find("'payroll' when 'billing'") !=
          std::string::npos);
    e = ok;
    e.family = FamilyId{8};
    CHECK_FALSE(check_manifest(m, e));
    e = ok;
    e.newer_than = 5;
    CHECK(check_manifest(m, e).error().message.find("refusing to go back") != std::string::npos);
    e.newer_than = 7;
    CHECK_FALSE(check_manifest(m, e));
    m.expires = 1799999999;
    CHECK(check_manifest(m, ok).error().message.find("expired") != std::string::npos);
}
