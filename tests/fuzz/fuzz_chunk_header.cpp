// Fuzzes the chunk header parser and record opening with a fixed family key: any bytes must
// give a header or an error, never a crash or an out-of-bounds read.
#include "heirloom/trim/chunk.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const heirloom::trim::FamilyKeys keys(heirloom::crypto::Key{1, 2, 3});
    static heirloom::trim::RecordCodec codec;
    heirloom::ByteView bytes(data, size);
    auto header = heirloom::trim::parse_chunk_header(bytes, keys);
    if (!header)
        return 0;
    // Headers that pass (only possible with the right key) must describe in-bounds records.
    heirloom::Bytes out(header->blocks.size() * heirloom::trim::block_size);
    if (header->object_size() == size)
        (void)heirloom::trim::open_chunk(keys, codec, *header, bytes, out);
    return 0;
}
