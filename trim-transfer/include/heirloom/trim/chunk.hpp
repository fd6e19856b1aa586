#pragma once

// The chunk object: up to 64 consecutive 4 KiB blocks of a virtual disk, each sealed as its
// own record so that an endpoint can fetch (by HTTP range) only the blocks it lacks and can
// decrypt any single block on read. Layout (little-endian, see docs/formats.md):
//
//   "HLMCHNK1" | u16 format | u16 block_count | u32 reserved | chunk_id[32]
//   block_count × { u8 codec | u16 record_len | tag[16] }
//   records of non-zero blocks, in block order: nonce[12] | ciphertext | gcm_tag[16]
//
// The chunk ID is the keyed hash of the block tags, so the header's table is verified by
// recomputing it, and each block by its tag. Records are AES-256-GCM under a key derived from
// the chunk ID, with associated data binding chunk ID, block index, codec and tag: a record
// cannot be moved to another chunk or position.

#include "heirloom/common/crypto.hpp"
#include "heirloom/trim/format.hpp"
#include "heirloom/trim/keys.hpp"

#include <cstdint>
#include <vector>

namespace heirloom::trim {

enum class Codec : std::uint8_t { zero = 0, raw = 1, zstd = 2 };

inline constexpr std::uint32_t chunk_header_fixed_size = 48;
inline constexpr std::uint32_t block_entry_size = 19;
inline constexpr std::uint32_t record_overhead = 12 + 16;
inline constexpr std::uint32_t max_record_size = block_size + record_overhead;

constexpr std::uint32_t chunk_header_size(std::uint32_t blocks) {
    return chunk_header_fixed_size + block_entry_size * blocks;
}

struct BlockEntry {
    Codec codec = Codec::zero;
    std::uint16_t record_size = 0; // 0 for zero blocks
    BlockTag tag = zero_tag;
};

struct ChunkHeader {
    ChunkId id{};
    std::vector<BlockEntry> blocks;
    std::vector<std::uint32_t> record_offsets; // offset of each block's record in the object

    std::uint32_t header_size() const {
        return chunk_header_size(static_cast<std::uint32_t>(blocks.size()));
    }
    std::uint64_t object_size() const;
};

enum class CheckId { no, yes };

// Parses and checks a chunk header (the first chunk_header_size(n) bytes of an object; more
// bytes may follow). With an expected ID, refuses a header that belongs to another chunk.
// The chunk ID is always recomputed from the tags, so a tampered table is refused.
Result<ChunkHeader> parse_chunk_header(ByteView bytes, const FamilyKeys& keys,
                                       const ChunkId* expected = nullptr);

// Per-thread scratch state for sealing and opening records (zstd contexts, buffers).
class RecordCodec {
  public:
    RecordCodec();
    ~RecordCodec();
    RecordCodec(const RecordCodec&) = delete;
    RecordCodec& operator=(const RecordCodec&) = delete;

    enum class Compress { no, yes };

    // Seals one 4 KiB block as record `index` of chunk `id`. Returns the codec used (zstd only
    // when it saves space) and appends the record to out.
    Result<Codec> seal(const FamilyKeys& keys, const crypto::Key& chunk_key, const ChunkId& id,
                       std::uint32_t index, const BlockTag& tag, ByteView block, Compress compress,
                       Bytes& out);

    // Authenticates and decrypts a record into a 4 KiB block, then checks the block's tag.
    // Nothing is written to out unless everything verifies.
    Status open(const FamilyKeys& keys, const crypto::Key& chunk_key, const ChunkId& id,
                std::uint32_t index, const BlockEntry& entry, ByteView record, MutableByteView out);

  private:
    struct State;
    State* state_;
};

// Builds a complete chunk object from its block entries and sealed records (records of zero
// blocks are empty). Entries' record sizes must match the records.
Bytes assemble_chunk(const ChunkId& id, std::span<const BlockEntry> entries,
                     std::span<const ByteView> records);

// Seals up to 64 plaintext blocks (4 KiB each, zero blocks included) into a chunk object.
// Returns the object; the ID is computed from the blocks' tags. All-zero chunks have no object.
struct SealedChunk {
    ChunkId id{};
    std::vector<BlockEntry> entries;
    Bytes object;
};
Result<SealedChunk> seal_chunk(const FamilyKeys& keys, RecordCodec& codec,
                               std::span<const BlockTag> tags, ByteView blocks,
                               RecordCodec::Compress compress);

// Computes the tags of blocks (zero blocks get zero_tag).
void tag_blocks(const FamilyKeys& keys, ByteView blocks, std::span<BlockTag> tags);

// Opens every record of a chunk object into plaintext blocks (zero blocks zero-filled).
Status open_chunk(const FamilyKeys& keys, RecordCodec& codec, const ChunkHeader& header,
                  ByteView object, MutableByteView out);

// The header describing entries as laid out by assemble_chunk (record offsets computed).
ChunkHeader header_from_entries(const ChunkId& id, std::vector<BlockEntry> entries);

// Reads and verifies the header of a chunk object file, checking that the file's size is
// exactly what the header describes (a torn or truncated object is refused).
Result<ChunkHeader> read_chunk_header_file(const fs::path& path, const FamilyKeys& keys,
                                           const ChunkId& id);

// Reads a whole chunk object file, verifies it and decrypts it into out (blocks × 4 KiB).
// The verified header is stored in header_out when given.
Status read_chunk_plaintext(const fs::path& path, const ChunkId& id, const FamilyKeys& keys,
                            RecordCodec& codec, Bytes& out, ChunkHeader* header_out = nullptr);

// Reads, authenticates and decrypts one block of a chunk object file.
Status read_block_from_object(const fs::path& path, const ChunkHeader& header, std::uint32_t block,
                              const FamilyKeys& keys, RecordCodec& codec, MutableByteView out);
// The same, from an already open object file.
Status read_block_from_fd(int fd, const fs::path& path, const ChunkHeader& header,
                          std::uint32_t block, const FamilyKeys& keys, RecordCodec& codec,
                          MutableByteView out);

} // namespace heirloom::trim
