#pragma once

// The agent's secrets at rest: the agent token and image keys, each sealed (AES-256-GCM, the
// name as associated data) under a device key that lives in the private state folder, mode
// 0600, and nowhere else. The same key authenticates the agent's own state files (the time
// anchor, the policy high-water serial), so an edit of them is noticed. See docs/security.md
// for what this does and does not protect against.

#include "heirloom/common/crypto.hpp"
#include "heirloom/common/error.hpp"
#include "heirloom/common/file.hpp"

#include <string_view>

namespace heirloom::agent {

class Vault {
  public:
    // Opens the vault in dir (created 0700), making a device key on first use.
    static Result<Vault> open(const fs::path& dir);

    Status put(std::string_view name, ByteView secret);
    // not_found when there is no such secret; crypto when it was tampered with or sealed
    // under another device key.
    Result<Bytes> get(std::string_view name) const;
    Status remove(std::string_view name);
    bool has(std::string_view name) const;

    // Writes data with a MAC under the device key; read_authenticated refuses a file whose
    // MAC does not match (edited by hand, or copied from another endpoint).
    Status write_authenticated(const fs::path& file, std::string_view label,
                               std::string_view text) const;
    Result<std::string> read_authenticated(const fs::path& file, std::string_view label) const;

  private:
    Vault(fs::path dir, crypto::Key key) : dir_(std::move(dir)), key_(key) {}
    Result<fs::path> file_for(std::string_view name) const;
    fs::path dir_;
    crypto::Key key_;
};

} // namespace heirloom::agent
