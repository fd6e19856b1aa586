#pragma once

// The signed manifest of one image version: which chunk covers each 256 KiB stretch of the
// virtual disk (chunks that are entirely zero are absent). Layout (little-endian, see
// docs/formats.md):
//
//   "HLMMANI1" | u16 format | u16 name_len | u32 block_size | u32 chunk_blocks
//   | u64 virtual_size | u64 version | i64 created | i64 expires (0 = never)
//   | family_id[16] | disk_uuid[16] | name | u32 entry_count
//   | entry_count × { u32 chunk_index | chunk_id[32] | u32 object_size }
//   | u32 delta_count | delta_count × { u32 chunk_index | from_id[32] | u32 object_size }
//   | signature[64]   (Ed25519 over everything before it)
//
// A delta entry says that the chunk at chunk_index can also be made from the previous
// version's chunk from_id with the delta object deltas/…/<from_id>-<chunk_id> (delta.hpp).
//
// 40 bytes per non-zero chunk: a fully allocated 64 GiB disk needs 10 MiB, a typical one
// with 15 GiB in use under 2.5 MiB.

#include "heirloom/common/crypto.hpp"
#include "heirloom/trim/format.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace heirloom::trim {

struct ManifestEntry {
    std::uint32_t index = 0; // chunk index: covers virtual bytes [index * 256 KiB, +256 KiB)
    ChunkId id{};
    std::uint32_t object_size = 0;
};

struct DeltaEntry {
    std::uint32_t index = 0; // a chunk index that has a ManifestEntry
    ChunkId from{};          // the chunk of an earlier version the delta applies to
    std::uint32_t object_size = 0;
};

struct Manifest {
    std::string image;
    std::uint64_t version = 0;
    std::int64_t created = 0; // unix seconds
    std::int64_t expires = 0; // unix seconds; 0 = never
    std::uint64_t virtual_size = 0;
    FamilyId family{};
    std::array<std::uint8_t, 16> disk_uuid{};
    std::vector<ManifestEntry> chunks;
    std::vector<DeltaEntry> deltas; // in chunk index order

    std::uint32_t chunk_count() const; // chunks covering the virtual size (incl. zero ones)
    std::uint32_t blocks_in_chunk(std::uint32_t index) const;
};

inline constexpr std::uint64_t max_manifest_size = 256ull << 20;

Bytes encode_manifest(const Manifest& manifest, const crypto::SigningSecretKey& key);

// Checks the signature with the pinned public key first, then parses strictly. Nothing of an
// unsigned or tampered manifest is trusted.
Result<Manifest> parse_manifest(ByteView bytes, const crypto::SigningPublicKey& key);

// Parses without checking the signature (for tools and fuzzing only).
Result<Manifest> parse_manifest_unverified(ByteView bytes);

// What an endpoint expects of a manifest it is about to act on.
struct ManifestExpectations {
    std::string image;            // must match
    FamilyId family{};            // must match the keys we hold
    std::uint64_t newer_than = 0; // version must be greater (replay protection)
    std::int64_t now = 0;         // unix seconds, for expiry
};
Status check_manifest(const Manifest& manifest, const ManifestExpectations& expect);

} // namespace heirloom::trim
