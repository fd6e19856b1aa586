// Seals a valid chunk from the input, flips bytes of the sealed object where the input says,
// and checks the one property that matters: a changed object never opens successfully.
#include "heirloom/trim/chunk.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>

using namespace heirloom;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const trim::FamilyKeys keys(crypto::Key{7, 7, 7});
    static trim::RecordCodec codec;
    if (size < 2)
        return 0;
    std::size_t blocks = data[0] % 4 + 1;
    Bytes plain(blocks * trim::block_size, 0);
    for (std::size_t b = 0; b < blocks; ++b) {
        if ((data[1] >> b) & 1)
            continue; // a zero block
        for (std::size_t i = 0; i < trim::block_size; ++i)
            plain[b * trim::block_size + i] = static_cast<std::uint8_t>((i * (b + 3)) ^ data[1]);
    }
    std::vector<trim::BlockTag> tags(blocks);
    trim::tag_blocks(keys, plain, tags);
    bool any_data = false;
    for (const auto& t : tags)
        any_data |= t != trim::zero_tag;
    if (!any_data)
        return 0;
    auto sealed = trim::seal_chunk(keys, codec, tags, plain, trim::RecordCodec::Compress::yes);
    if (!sealed)
        __builtin_trap();
    Bytes object = sealed->object;
    bool changed = false;
    for (std::size_t i = 2; i + 4 <= size; i += 4) {
        std::size_t pos = (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16)) % object.size();
        std::uint8_t flip = data[i + 3] ? data[i + 3] : 1;
        object[pos] ^= flip;
        changed = true;
    }
    changed = changed && object != sealed->object;
    Bytes out(plain.size());
    auto header = trim::parse_chunk_header(object, keys, &sealed->id);
    bool opened = header && header->object_size() == object.size() &&
                  trim::open_chunk(keys, codec, *header, object, out).has_value();
    if (changed && opened)
        __builtin_trap(); // tampering went unnoticed
    if (!changed && (!opened || out != plain))
        __builtin_trap(); // an intact chunk must open to its plaintext
    return 0;
}
