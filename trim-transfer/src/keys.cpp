#include "heirloom/trim/keys.hpp"

#include "heirloom/common/file.hpp"

#include <sys/stat.h>

namespace heirloom::trim {

namespace {
crypto::Key derive(const crypto::Key& secret, std::string_view label) {
    return crypto::hmac_sha256(secret, as_bytes(label));
}
} // namespace

FamilyKeys::FamilyKeys(const crypto::Key& secret)
    : id_hash_(derive(secret, "heirloom v1 block and chunk ids")),
      enc_hash_(derive(secret, "heirloom v1 chunk encryption")),
      nonce_hash_(derive(secret, "heirloom v1 record nonces")) {
    crypto::Digest id = derive(secret, "heirloom v1 family id");
    std::copy_n(id.begin(), family_id_.size(), family_id_.begin());
}

BlockTag FamilyKeys::block_tag(ByteView block) const {
    crypto::Digest d = id_hash_({as_bytes("block"), block});
    BlockTag tag;
    std::copy_n(d.begin(), tag.size(), tag.begin());
    // All-zero is reserved for zero blocks; a real block hashing to it is astronomically
    // unlikely, but keep the reservation exact.
    if (tag == zero_tag)
        tag[0] = 1;
    return tag;
}

ChunkId FamilyKeys::chunk_id(std::span<const BlockTag> tags) const {
    std::uint8_t count[2] = {static_cast<std::uint8_t>(tags.size()),
                             static_cast<std::uint8_t>(tags.size() >> 8)};
    return id_hash_({as_bytes("chunk"),
                     count,
                     {reinterpret_cast<const std::uint8_t*>(tags.data()), tags.size_bytes()}});
}

crypto::Key FamilyKeys::chunk_key(const ChunkId& id) const {
    return enc_hash_(id);
}

crypto::Nonce FamilyKeys::record_nonce(const ChunkId& id, std::uint32_t index, std::uint8_t codec,
                                       ByteView payload_digest) const {
    std::uint8_t fields[5] = {
        static_cast<std::uint8_t>(index), static_cast<std::uint8_t>(index >> 8),
        static_cast<std::uint8_t>(index >> 16), static_cast<std::uint8_t>(index >> 24), codec};
    crypto::Digest d = nonce_hash_({id, fields, payload_digest});
    crypto::Nonce nonce;
    std::copy_n(d.begin(), nonce.size(), nonce.begin());
    return nonce;
}

crypto::Key FamilyKeys::delta_key(const ChunkId& from, const ChunkId& to) const {
    return enc_hash_({as_bytes("delta"), from, to});
}

crypto::Nonce FamilyKeys::delta_nonce(const ChunkId& from, const ChunkId& to,
                                      ByteView payload) const {
    crypto::Digest digest = crypto::sha256(payload);
    crypto::Digest d = nonce_hash_({as_bytes("delta"), from, to, digest});
    crypto::Nonce nonce;
    std::copy_n(d.begin(), nonce.size(), nonce.begin());
    return nonce;
}

namespace {
constexpr const char* family_file = "family.key";
constexpr const char* secret_file = "signing.key";
constexpr const char* public_file = "signing.pub";

template <std::size_t N>
Result<std::array<std::uint8_t, N>> read_key(const fs::path& path, bool secret) {
    Bytes key =
        HL_TRY(read_key_file(path, N, secret ? KeySecrecy::secret : KeySecrecy::public_key));
    std::array<std::uint8_t, N> out{};
    std::copy(key.begin(), key.end(), out.begin());
    crypto::secure_wipe(key);
    return out;
}
} // namespace

Status write_key_file(const fs::path& path, ByteView key, FileMode mode) {
    std::string hex = to_hex(key) + "\n";
    auto done = write_file_atomic(path, as_bytes(hex), Durability::fsync, mode);
    crypto::secure_wipe({reinterpret_cast<std::uint8_t*>(hex.data()), hex.size()});
    return done;
}

Result<Bytes> read_key_file(const fs::path& path, std::size_t size, KeySecrecy secrecy) {
    if (secrecy == KeySecrecy::secret) {
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0)
            return fail_errno("read key", path.string());
        if (st.st_mode & 077)
            return fail(Errc::invalid_argument, path.string() +
                                                    " is readable by other users; run: chmod 600 " +
                                                    path.string());
    }
    std::string text = HL_TRY(read_text_file(path, 4096));
    while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
        text.pop_back();
    Bytes key = HL_TRY_CTX(from_hex(text), "read key " + path.string());
    crypto::secure_wipe({reinterpret_cast<std::uint8_t*>(text.data()), text.size()});
    if (key.size() != size)
        return fail(Errc::corrupt, "read key " + path.string() + ": expected " +
                                       std::to_string(size) + " bytes, found " +
                                       std::to_string(key.size()));
    return key;
}

Status generate_keys(const fs::path& dir) {
    for (const char* name : {family_file, secret_file, public_file})
        if (fs::exists(dir / name))
            return fail(Errc::conflict,
                        (dir / name).string() + " already exists; refusing to overwrite keys");
    HL_TRY(make_dirs(dir));
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace);
    crypto::Key family{};
    crypto::random_bytes(family);
    auto pair = crypto::generate_signing_key();
    HL_TRY(write_key_file(dir / family_file, family, FileMode::owner_only));
    HL_TRY(write_key_file(dir / secret_file, pair.secret_key, FileMode::owner_only));
    HL_TRY(write_key_file(dir / public_file, pair.public_key, FileMode::public_read));
    crypto::secure_wipe(family);
    crypto::secure_wipe(pair.secret_key);
    return {};
}

Result<KeySet> load_keys(const fs::path& dir, NeedSigningKey need) {
    auto family = HL_TRY(read_key<32>(dir / family_file, true));
    KeySet keys{FamilyKeys(family), {}, std::nullopt};
    crypto::secure_wipe(family);
    keys.signing_public = HL_TRY(read_key<32>(dir / public_file, false));
    if (need == NeedSigningKey::yes) {
        keys.signing_secret = HL_TRY(read_key<64>(dir / secret_file, true));
        // libsodium's secret key embeds the public key in its second half.
        if (!std::equal(keys.signing_public.begin(), keys.signing_public.end(),
                        keys.signing_secret->begin() + 32))
            return fail(Errc::crypto,
                        "signing.key and signing.pub in " + dir.string() + " are not a pair");
    }
    return keys;
}

} // namespace heirloom::trim
