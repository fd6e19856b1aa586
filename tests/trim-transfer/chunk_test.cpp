#include "heirloom/trim/chunk.hpp"
#include "support/support.hpp"

#include <catch2/catch.hpp>

using namespace heirloom;
using namespace heirloom::trim;

namespace {
struct Fixture {
    FamilyKeys keys{crypto::Key{42}};
    RecordCodec codec;

    Bytes blocks(std::size_t n, std::uint64_t seed, bool zero_second = false) {
        Bytes data = test::pseudo_random(n * block_size, seed);
        // The first block is compressible text, so both codecs are exercised.
        for (std::size_t i = 0; i < block_size; ++i)
            data[i] = static_cast<std::uint8_t>('a' + i % 5);
        if (zero_second && n > 1)
            std::fill(data.begin() + block_size, data.begin() + 2 * block_size, 0);
        return data;
    }
    SealedChunk seal(const Bytes& data) {
        std::vector<BlockTag> tags(data.size() / block_size);
        tag_blocks(keys, data, tags);
        auto sealed = seal_chunk(keys, codec, tags, data, RecordCodec::Compress::yes);
        REQUIRE(sealed);
        return *sealed;
    }
    Status open(const Bytes& object, const ChunkId& id, Bytes& out) {
        auto header = parse_chunk_header(object, keys, &id);
        if (!header)
            return std::unexpected(header.error());
        out.assign(header->blocks.size() * block_size, 0xAA);
        return open_chunk(keys, codec, *header, object, out);
    }
};
} // namespace

TEST_CASE_METHOD(Fixture, "a sealed chunk opens to its plaintext", "[chunk]") {
    Bytes data = blocks(64, 1, true);
    SealedChunk sealed = seal(data);
    CHECK(sealed.entries[0].codec == Codec::zstd);
    CHECK(sealed.entries[1].codec == Codec::zero);
    CHECK(sealed.entries[2].codec == Codec::raw);
    Bytes out;
    REQUIRE(open(sealed.object, sealed.id, out));
    CHECK(out == data);
}

TEST_CASE_METHOD(Fixture, "sealing is deterministic and content-addressed", "[chunk]") {
    Bytes data = blocks(8, 2);
    CHECK(seal(data).object == seal(data).object);
    Bytes other = data;
    other[5 * block_size + 7] ^= 1;
    CHECK(seal(other).id != seal(data).id);
}

TEST_CASE_METHOD(Fixture, "every tampered byte of a chunk object is refused", "[chunk]") {
    Bytes data = blocks(4, 3, true);
    SealedChunk sealed = seal(data);
    Bytes out;
    for (std::size_t pos = 0; pos < sealed.object.size(); pos += 7) {
        Bytes tampered = sealed.object;
        tampered[pos] ^= 0x40;
        INFO("tampered byte " << pos);
        CHECK_FALSE(open(tampered, sealed.id, out));
    }
}

TEST_CASE_METHOD(Fixture, "truncated chunk objects are refused", "[chunk]") {
    SealedChunk sealed = seal(blocks(4, 4));
    Bytes out;
    for (std::size_t len = 0; len < sealed.object.size(); len += 97) {
        Bytes cut(sealed.object.begin(), sealed.object.begin() + static_cast<long>(len));
        CHECK_FALSE(open(cut, sealed.id, out));
    }
}

TEST_CASE_METHOD(Fixture, "a chunk cannot be opened with another family's keys", "[chunk]") {
    SealedChunk sealed = seal(blocks(4, 5));
    FamilyKeys other{crypto::Key{43}};
    auto header = parse_chunk_header(sealed.object, other, &sealed.id);
    REQUIRE_FALSE(header);
    CHECK(header.error().message.find("wrong image keys") != std::string::npos);
}

TEST_CASE_METHOD(Fixture, "a record moved to another position or chunk is refused", "[chunk]") {
    Bytes data = blocks(2, 6);
    std::copy(data.begin() + block_size, data.end(), data.begin()); // two equal raw blocks
    SealedChunk sealed = seal(data);
    auto header = parse_chunk_header(sealed.object, keys, &sealed.id);
    REQUIRE(header);
    crypto::Key key = keys.chunk_key(sealed.id);
    ByteView record0(sealed.object.data() + header->record_offsets[0],
                     header->blocks[0].record_size);
    Bytes out(block_size);
    // Same content, same chunk, but position 1: the associated data differs.
    CHECK_FALSE(codec.open(keys, key, sealed.id, 1, header->blocks[0], record0, out));
    // Another chunk's key and ID.
    SealedChunk other = seal(blocks(2, 7));
    CHECK_FALSE(
        codec.open(keys, keys.chunk_key(other.id), other.id, 0, header->blocks[0], record0, out));
    CHECK(codec.open(keys, key, sealed.id, 0, header->blocks[0], record0, out));
}

TEST_CASE_METHOD(Fixture, "headers with impossible fields are refused with a clear error",
                 "[chunk]") {
    SealedChunk sealed = seal(blocks(2, 8));
    auto expect_error = [&](std::size_t pos, std::uint8_t value, std::string_view words) {
        Bytes bad = sealed.object;
        bad[pos] = value;
        auto header = parse_chunk_header(bad, keys);
        REQUIRE_FALSE(header);
        INFO(header.error().message);
        CHECK(header.error().message.find(words) != std::string::npos);
    };
    expect_error(0, 'X', "bad magic");
    expect_error(8, 9, "format 9");
    expect_error(10, 65, "block count");
    expect_error(12, 1, "reserved");
    expect_error(48, 7, "unknown codec");
}
