// The low-level SHA-256 API is deprecated in OpenSSL 3 but is the only way to copy a keyed
// HMAC state as a plain struct, which makes per-block HMAC nearly as fast as SHA-256.
#define OPENSSL_SUPPRESS_DEPRECATED

#include "heirloom/common/crypto.hpp"

#include <cstring>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sodium.h>

namespace heirloom::crypto {

Status init() {
    if (sodium_init() < 0)
        return fail(Errc::crypto, "libsodium failed to initialise");
    return {};
}

void random_bytes(MutableByteView out) {
    randombytes_buf(out.data(), out.size());
}

void secure_wipe(MutableByteView bytes) {
    sodium_memzero(bytes.data(), bytes.size());
}

void secure_wipe(std::string& text) {
    sodium_memzero(text.data(), text.size());
    text.clear();
}

Digest sha256(ByteView data) {
    Digest out;
    SHA256(data.data(), data.size(), out.data());
    return out;
}

struct KeyedHash::State {
    SHA256_CTX inner;
    SHA256_CTX outer;
};

KeyedHash::KeyedHash(ByteView key) : state_(std::make_unique<State>()) {
    std::array<std::uint8_t, 64> block{};
    if (key.size() > block.size()) {
        Digest d = sha256(key);
        std::memcpy(block.data(), d.data(), d.size());
    } else {
        std::memcpy(block.data(), key.data(), key.size());
    }
    std::array<std::uint8_t, 64> pad;
    for (std::size_t i = 0; i < 64; ++i)
        pad[i] = block[i] ^ 0x36;
    SHA256_Init(&state_->inner);
    SHA256_Update(&state_->inner, pad.data(), pad.size());
    for (std::size_t i = 0; i < 64; ++i)
        pad[i] = block[i] ^ 0x5c;
    SHA256_Init(&state_->outer);
    SHA256_Update(&state_->outer, pad.data(), pad.size());
    secure_wipe(block);
    secure_wipe(pad);
}

KeyedHash::~KeyedHash() {
    if (state_)
        secure_wipe({reinterpret_cast<std::uint8_t*>(state_.get()), sizeof(State)});
}
KeyedHash::KeyedHash(const KeyedHash& other) : state_(std::make_unique<State>(*other.state_)) {}
KeyedHash& KeyedHash::operator=(const KeyedHash& other) {
    if (this != &other)
        state_ = std::make_unique<State>(*other.state_);
    return *this;
}
KeyedHash::KeyedHash(KeyedHash&&) noexcept = default;
KeyedHash& KeyedHash::operator=(KeyedHash&&) noexcept = default;

Digest KeyedHash::operator()(ByteView data) const {
    return (*this)({data});
}

Digest KeyedHash::operator()(std::initializer_list<ByteView> parts) const {
    SHA256_CTX ctx = state_->inner;
    for (ByteView part : parts)
        SHA256_Update(&ctx, part.data(), part.size());
    Digest inner;
    SHA256_Final(inner.data(), &ctx);
    ctx = state_->outer;
    SHA256_Update(&ctx, inner.data(), inner.size());
    Digest out;
    SHA256_Final(out.data(), &ctx);
    return out;
}

Digest hmac_sha256(ByteView key, ByteView data) {
    return KeyedHash(key)(data);
}

struct AesGcm::State {
    EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    ~State() {
        EVP_CIPHER_CTX_free(ctx);
        EVP_CIPHER_free(cipher);
    }
};

AesGcm::AesGcm() : state_(std::make_unique<State>()) {}
AesGcm::~AesGcm() = default;

Result<GcmTag> AesGcm::seal(const Key& key, const Nonce& nonce, ByteView aad, ByteView plaintext,
                            MutableByteView ciphertext) {
    if (ciphertext.size() != plaintext.size())
        return fail(Errc::invalid_argument, "ciphertext buffer has the wrong size");
    EVP_CIPHER_CTX* c = state_->ctx;
    int len = 0;
    GcmTag tag{};
    bool ok = state_->cipher && c &&
              EVP_EncryptInit_ex2(c, state_->cipher, key.data(), nonce.data(), nullptr) &&
              EVP_EncryptUpdate(c, nullptr, &len, aad.data(), static_cast<int>(aad.size())) &&
              EVP_EncryptUpdate(c, ciphertext.data(), &len, plaintext.data(),
                                static_cast<int>(plaintext.size())) &&
              EVP_EncryptFinal_ex(c, ciphertext.data() + len, &len) &&
              EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag.data());
    if (!ok)
        return fail(Errc::crypto, "AES-256-GCM encryption failed");
    return tag;
}

Status AesGcm::open(const Key& key, const Nonce& nonce, ByteView aad, ByteView ciphertext,
                    const GcmTag& tag, MutableByteView plaintext) {
    if (ciphertext.size() != plaintext.size())
        return fail(Errc::invalid_argument, "plaintext buffer has the wrong size");
    EVP_CIPHER_CTX* c = state_->ctx;
    int len = 0;
    GcmTag expected = tag;
    bool ok = state_->cipher && c &&
              EVP_DecryptInit_ex2(c, state_->cipher, key.data(), nonce.data(), nullptr) &&
              EVP_DecryptUpdate(c, nullptr, &len, aad.data(), static_cast<int>(aad.size())) &&
              EVP_DecryptUpdate(c, plaintext.data(), &len, ciphertext.data(),
                                static_cast<int>(ciphertext.size())) &&
              EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, expected.data()) &&
              EVP_DecryptFinal_ex(c, plaintext.data() + len, &len) > 0;
    if (!ok) {
        secure_wipe(plaintext);
        return fail(Errc::crypto, "authentication tag mismatch (data tampered or wrong key)");
    }
    return {};
}

Result<GcmTag> aes_gcm_seal(const Key& key, const Nonce& nonce, ByteView aad, ByteView plaintext,
                            MutableByteView ciphertext) {
    return AesGcm().seal(key, nonce, aad, plaintext, ciphertext);
}

Status aes_gcm_open(const Key& key, const Nonce& nonce, ByteView aad, ByteView ciphertext,
                    const GcmTag& tag, MutableByteView plaintext) {
    return AesGcm().open(key, nonce, aad, ciphertext, tag, plaintext);
}

SigningKeyPair generate_signing_key() {
    SigningKeyPair pair;
    crypto_sign_keypair(pair.public_key.data(), pair.secret_key.data());
    return pair;
}

Signature sign(const SigningSecretKey& key, ByteView message) {
    Signature sig;
    crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), key.data());
    return sig;
}

bool verify(const SigningPublicKey& key, ByteView message, const Signature& signature) {
    return crypto_sign_verify_detached(signature.data(), message.data(), message.size(),
                                       key.data()) == 0;
}

} // namespace heirloom::crypto
