#include "heirloom/agent/vault.hpp"

#include "heirloom/agent/paths.hpp"
#include "heirloom/common/url.hpp"
#include "heirloom/trim/keys.hpp"

namespace heirloom::agent {
namespace {

constexpr std::string_view seal_context = "heirloom-vault-v1:";
constexpr std::string_view mac_context = "heirloom-state-v1:";
constexpr std::size_t max_secret = 64 << 10;

bool valid_name(std::string_view name) {
    if (name.empty() || name.size() > 128 || name.front() == '.')
        return false;
    for (char c : name)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
            return false;
    return true;
}

Bytes with_context(std::string_view context, std::string_view name) {
    std::string text = std::string(context) + std::string(name);
    return Bytes(text.begin(), text.end());
}

} // namespace

Result<Vault> Vault::open(const fs::path& dir) {
    HL_TRY(ensure_private_dir(dir));
    fs::path key_file = dir / "device.key";
    crypto::Key key{};
    if (!fs::exists(key_file)) {
        crypto::random_bytes(key);
        HL_TRY(trim::write_key_file(key_file, key, FileMode::owner_only));
    }
    Bytes stored = HL_TRY(trim::read_key_file(key_file, key.size(), trim::KeySecrecy::secret));
    std::copy(stored.begin(), stored.end(), key.begin());
    crypto::secure_wipe(stored);
    return Vault(dir, key);
}

Result<fs::path> Vault::file_for(std::string_view name) const {
    if (!valid_name(name))
        return fail(Errc::invalid_argument, "bad secret name '" + printable(name) + "'");
    return dir_ / (std::string(name) + ".sealed");
}

Status Vault::put(std::string_view name, ByteView secret) {
    fs::path file = HL_TRY(file_for(name));
    crypto::Nonce nonce{};
    crypto::random_bytes(nonce);
    Bytes out(nonce.size() + sizeof(crypto::GcmTag) + secret.size());
    MutableByteView cipher(out.data() + nonce.size() + sizeof(crypto::GcmTag), secret.size());
    auto tag =
        HL_TRY(crypto::aes_gcm_seal(key_, nonce, with_context(seal_context, name), secret, cipher));
    std::copy(nonce.begin(), nonce.end(), out.begin());
    std::copy(tag.begin(), tag.end(), out.begin() + static_cast<std::ptrdiff_t>(nonce.size()));
    return write_file_atomic(file, out, Durability::fsync, FileMode::owner_only);
}

Result<Bytes> Vault::get(std::string_view name) const {
    fs::path file = HL_TRY(file_for(name));
    if (!fs::exists(file))
        return fail(Errc::not_found, "no secret " + std::string(name));
    Bytes sealed = HL_TRY(read_file(file, max_secret));
    crypto::Nonce nonce{};
    crypto::GcmTag tag{};
    if (sealed.size() < nonce.size() + tag.size())
        return fail(Errc::crypto, file.string() + " is truncated");
    std::copy_n(sealed.begin(), nonce.size(), nonce.begin());
    std::copy_n(sealed.begin() + static_cast<std::ptrdiff_t>(nonce.size()), tag.size(),
                tag.begin());
    ByteView cipher(sealed.data() + nonce.size() + tag.size(),
                    sealed.size() - nonce.size() - tag.size());
    Bytes plain(cipher.size());
    if (auto opened =
            crypto::aes_gcm_open(key_, nonce, with_context(seal_context, name), cipher, tag, plain);
        !opened)
        return fail(Errc::crypto, file.string() + " does not open with this endpoint's device key "
                                                  "(tampered with, or copied from elsewhere)");
    return plain;
}

bool Vault::has(std::string_view name) const {
    auto file = file_for(name);
    return file && fs::exists(*file);
}

Status Vault::remove(std::string_view name) {
    fs::path file = HL_TRY(file_for(name));
    std::error_code ec;
    fs::remove(file, ec);
    if (ec)
        return fail(Errc::io, "remove " + file.string() + ": " + ec.message());
    return {};
}

Status Vault::write_authenticated(const fs::path& file, std::string_view label,
                                  std::string_view text) const {
    Bytes message = with_context(mac_context, label);
    message.push_back(0);
    message.insert(message.end(), text.begin(), text.end());
    std::string out = to_hex(crypto::hmac_sha256(key_, message)) + "\n" + std::string(text);
    return write_file_atomic(file, as_bytes(out), Durability::fsync, FileMode::owner_only);
}

Result<std::string> Vault::read_authenticated(const fs::path& file, std::string_view label) const {
    std::string stored = HL_TRY(read_text_file(file, 4 << 20));
    auto newline = stored.find('\n');
    if (newline != 64)
        return fail(Errc::crypto, file.string() + " is not an authenticated state file");
    std::string text = stored.substr(65);
    Bytes message = with_context(mac_context, label);
    message.push_back(0);
    message.insert(message.end(), text.begin(), text.end());
    if (to_hex(crypto::hmac_sha256(key_, message)) != stored.substr(0, 64))
        return fail(Errc::crypto, file.string() + " was changed outside the agent");
    return text;
}

} // namespace heirloom::agent
