#pragma once

// Constants and identifiers shared by the image formats (see docs/formats.md).

#include "heirloom/common/bytes.hpp"

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>

namespace heirloom::trim {

// Matching unit: guest file systems align file data to 4 KiB, so host files match disk blocks.
inline constexpr std::uint32_t block_size = 4096;
// Transfer and storage unit: a chunk covers this many consecutive blocks of the virtual disk.
inline constexpr std::uint32_t chunk_blocks = 64;
inline constexpr std::uint32_t chunk_bytes = block_size * chunk_blocks;

// A block's identity: the first 16 bytes of HMAC-SHA-256 under the family's ID key.
using BlockTag = std::array<std::uint8_t, 16>;
// A chunk's identity: HMAC-SHA-256 under the family's ID key over its block tags.
using ChunkId = std::array<std::uint8_t, 32>;
// Public identifier of an image family's key, so wrong keys give a clear error.
using FamilyId = std::array<std::uint8_t, 16>;

// The tag given to all-zero blocks, which are never stored or sent.
inline constexpr BlockTag zero_tag{};

inline std::string chunk_hex(const ChunkId& id) {
    return to_hex(id);
}
// Object path of a chunk inside a repository or store: "chunks/ab/ab12…".
std::string chunk_path(const ChunkId& id);

// Hash functor so tags and IDs can key unordered containers (they are already uniform).
struct TagHash {
    template <std::size_t N> std::size_t operator()(const std::array<std::uint8_t, N>& a) const {
        std::size_t h;
        static_assert(N >= sizeof h);
        std::memcpy(&h, a.data(), sizeof h);
        return h;
    }
};

// Image names: 1..64 of [a-z0-9._-], starting with a letter or digit.
bool valid_image_name(std::string_view name);

} // namespace heirloom::trim
