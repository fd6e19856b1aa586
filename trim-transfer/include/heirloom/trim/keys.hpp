#pragma once

// Key material of an image family: the family secret (from which the chunk-ID, encryption and
// nonce keys are derived) and the Ed25519 key pair that signs manifests. In standalone use
// they live in a keys folder made by `heirloom-image keygen`; later the server holds them.

#include "heirloom/common/crypto.hpp"
#include "heirloom/common/file.hpp"
#include "heirloom/trim/format.hpp"

#include <optional>

namespace heirloom::trim {

// Keys derived from one family secret. Block tags and chunk IDs are keyed, so nobody without
// the secret can probe whether a known file is inside an image.
class FamilyKeys {
  public:
    explicit FamilyKeys(const crypto::Key& secret);

    const FamilyId& family_id() const { return family_id_; }
    BlockTag block_tag(ByteView block) const;
    ChunkId chunk_id(std::span<const BlockTag> tags) const;
    // The AES-256-GCM key for the records of one chunk.
    crypto::Key chunk_key(const ChunkId& id) const;
    // A nonce that is a function of everything that distinguishes one sealed record from
    // another under the same chunk key, so it can never repeat for different plaintexts.
    crypto::Nonce record_nonce(const ChunkId& id, std::uint32_t index, std::uint8_t codec,
                               ByteView payload_digest) const;

    // Key and nonce of the delta object between two chunks (see delta.hpp).
    crypto::Key delta_key(const ChunkId& from, const ChunkId& to) const;
    crypto::Nonce delta_nonce(const ChunkId& from, const ChunkId& to, ByteView payload) const;

  private:
    FamilyId family_id_{};
    crypto::KeyedHash id_hash_;
    crypto::KeyedHash enc_hash_;
    crypto::KeyedHash nonce_hash_;
};

enum class NeedSigningKey { no, yes };

struct KeySet {
    FamilyKeys family;
    crypto::SigningPublicKey signing_public{};
    std::optional<crypto::SigningSecretKey> signing_secret;
};

enum class KeySecrecy { public_key, secret };

// Writes a key as one line of hex, atomically and durably.
Status write_key_file(const fs::path& path, ByteView key, FileMode mode);

// Reads a key file of exactly size bytes. Secret key files readable by group or others are
// refused, so a key that leaked through permissions is noticed.
Result<Bytes> read_key_file(const fs::path& path, std::size_t size, KeySecrecy secrecy);

// Creates family.key, signing.key and signing.pub in dir (mode 0700/0600); refuses to
// overwrite existing keys.
Status generate_keys(const fs::path& dir);

// Loads a keys folder. Secret files readable by group or others are refused.
Result<KeySet> load_keys(const fs::path& dir, NeedSigningKey need);

} // namespace heirloom::trim
