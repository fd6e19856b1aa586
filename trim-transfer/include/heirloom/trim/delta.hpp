#pragma once

// Byte-level deltas between two versions of a chunk, for content that is not block-aligned:
// a small edit inside a 4 KiB block, or bytes shifted by an insertion. At pack time a chunk
// that changed since the previous version gets a librsync delta against the previous
// version's chunk at the same place, kept only when it is smaller than the block records an
// updating endpoint would otherwise fetch. Delta objects are sealed like records: zstd, then
// AES-256-GCM under a key derived from both chunk IDs, with the IDs as associated data.
//
//   "HLMDELT1" | u16 format | u16 reserved | u32 payload_size | from_id[32] | to_id[32]
//   | nonce[12] | ciphertext | gcm_tag[16]

#include "heirloom/trim/format.hpp"
#include "heirloom/trim/keys.hpp"

namespace heirloom::trim {

inline constexpr std::uint32_t max_delta_object_size = 2 * chunk_bytes;

// Object path of the delta from one chunk to another: "deltas/ab/<from>-<to>".
std::string delta_path(const ChunkId& from, const ChunkId& to);

// A librsync delta turning old_plain into new_plain (256-byte blocks, BLAKE2 sums).
Result<Bytes> make_delta(ByteView old_plain, ByteView new_plain);

// Applies a librsync delta to old_plain; the result must be exactly expected_size bytes, and
// nothing larger is ever produced (a hostile delta cannot make it allocate more).
Result<Bytes> apply_delta(ByteView old_plain, ByteView delta, std::size_t expected_size);

Result<Bytes> seal_delta(const FamilyKeys& keys, const ChunkId& from, const ChunkId& to,
                         ByteView delta);
// Checks the object's header and authenticity and returns the librsync delta.
Result<Bytes> open_delta(const FamilyKeys& keys, const ChunkId& from, const ChunkId& to,
                         ByteView object);

} // namespace heirloom::trim
