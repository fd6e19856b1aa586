// Fuzzes the manifest parser: any bytes must give a Manifest or an error, never a crash.
#include "heirloom/trim/manifest.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    heirloom::ByteView bytes(data, size);
    auto m = heirloom::trim::parse_manifest_unverified(bytes);
    if (m) {
        // A parsed manifest must be internally consistent.
        for (const auto& c : m->chunks)
            if (c.index >= m->chunk_count())
                __builtin_trap();
    }
    heirloom::crypto::SigningPublicKey key{};
    (void)heirloom::trim::parse_manifest(bytes, key);
    return 0;
}
