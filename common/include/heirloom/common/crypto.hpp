#pragma once

// Thin wrappers over OpenSSL (SHA-256, HMAC, AES-256-GCM) and libsodium (Ed25519, random),
// so the rest of the code never touches their C APIs directly.

#include "heirloom/common/bytes.hpp"

#include <array>
#include <cstdint>
#include <memory>

namespace heirloom::crypto {

using Digest = std::array<std::uint8_t, 32>;
using Key = std::array<std::uint8_t, 32>;
using Nonce = std::array<std::uint8_t, 12>;
using GcmTag = std::array<std::uint8_t, 16>;
using SigningPublicKey = std::array<std::uint8_t, 32>;
using SigningSecretKey = std::array<std::uint8_t, 64>;
using Signature = std::array<std::uint8_t, 64>;

// Must be called once before any other function here (initialises libsodium).
Status init();

void random_bytes(MutableByteView out);
void secure_wipe(MutableByteView bytes);
// Zeroes a string that held a secret (a password, a PEM key), then empties it.
void secure_wipe(std::string& text);

Digest sha256(ByteView data);

// HMAC-SHA-256 with the key schedule done once, so hashing millions of 4 KiB blocks under one
// key costs little more than plain SHA-256. Hashing is const and safe from many threads.
class KeyedHash {
  public:
    explicit KeyedHash(ByteView key);
    ~KeyedHash();
    KeyedHash(const KeyedHash& other);
    KeyedHash& operator=(const KeyedHash& other);
    KeyedHash(KeyedHash&&) noexcept;
    KeyedHash& operator=(KeyedHash&&) noexcept;

    Digest operator()(ByteView data) const;
    // Hashes the concatenation of several parts without copying them together.
    Digest operator()(std::initializer_list<ByteView> parts) const;

  private:
    struct State;
    std::unique_ptr<State> state_;
};

Digest hmac_sha256(ByteView key, ByteView data);

// AES-256-GCM with a reusable context: one per thread, for many records. Not thread-safe.
class AesGcm {
  public:
    AesGcm();
    ~AesGcm();
    AesGcm(const AesGcm&) = delete;
    AesGcm& operator=(const AesGcm&) = delete;
    Result<GcmTag> seal(const Key& key, const Nonce& nonce, ByteView aad, ByteView plaintext,
                        MutableByteView ciphertext);
    Status open(const Key& key, const Nonce& nonce, ByteView aad, ByteView ciphertext,
                const GcmTag& tag, MutableByteView plaintext);

  private:
    struct State;
    std::unique_ptr<State> state_;
};

// AES-256-GCM, one-shot. seal writes ciphertext (same length as plaintext) and returns the tag.
Result<GcmTag> aes_gcm_seal(const Key& key, const Nonce& nonce, ByteView aad, ByteView plaintext,
                            MutableByteView ciphertext);
// open fails with Errc::crypto when the tag does not authenticate ciphertext and aad.
Status aes_gcm_open(const Key& key, const Nonce& nonce, ByteView aad, ByteView ciphertext,
                    const GcmTag& tag, MutableByteView plaintext);

struct SigningKeyPair {
    SigningPublicKey public_key;
    SigningSecretKey secret_key;
};
SigningKeyPair generate_signing_key();
Signature sign(const SigningSecretKey& key, ByteView message);
bool verify(const SigningPublicKey& key, ByteView message, const Signature& signature);

} // namespace heirloom::crypto
