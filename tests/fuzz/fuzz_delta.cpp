// Fuzzes applying a librsync delta to a fixed base and opening sealed delta objects: any
// bytes must give a result of exactly the expected size or an error, never a crash or an
// output larger than asked for.
#include "heirloom/trim/delta.hpp"

#include <cstddef>
#include <cstdint>

using namespace heirloom;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const Bytes base = [] {
        Bytes b(trim::chunk_bytes);
        for (std::size_t i = 0; i < b.size(); ++i)
            b[i] = static_cast<std::uint8_t>(i * 31 + (i >> 9));
        return b;
    }();
    static const trim::FamilyKeys keys(crypto::Key{4});
    ByteView input(data, size);
    auto out = trim::apply_delta(base, input, trim::chunk_bytes);
    if (out && out->size() != trim::chunk_bytes)
        __builtin_trap();
    (void)trim::open_delta(keys, trim::ChunkId{1}, trim::ChunkId{2}, input);
    return 0;
}
