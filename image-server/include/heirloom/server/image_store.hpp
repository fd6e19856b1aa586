#pragma once

// The server's images on disk. Each image has its own family key and its own repository
// folder in the layout of repository.hpp, so a static server could serve it and an agent
// syncs from https://SERVER/v1/images/NAME/repo exactly as from a folder:
//
//   DATA/keys/signing.key, signing.pub   the server's Ed25519 pair (manifests and policies)
//   DATA/images/NAME/family.key          the image's family secret (0600)
//   DATA/images/NAME/repo/…              images/NAME/latest, vN.manifest, chunks/, deltas/
//   DATA/images/NAME/incoming/*.part     uploads in progress (removed at start)
//
// Objects are immutable and verified before they become visible: an upload is written to
// incoming/, authenticated with the image's key (every record of a chunk, every delta), and
// renamed into place. A version becomes visible only when its manifest, re-signed by the
// server, and then the latest pointer are written; a server killed at any point loses at most
// the upload in progress, and the admin's push resumes with what is still missing.

#include "heirloom/common/crypto.hpp"
#include "heirloom/common/file.hpp"
#include "heirloom/server/metadata.hpp"
#include "heirloom/trim/keys.hpp"
#include "heirloom/trim/manifest.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace heirloom::server {

struct ServerKeys {
    crypto::SigningSecretKey secret{};
    crypto::SigningPublicKey public_key{};
};

// Loads the server's signing pair from DATA/keys, creating it on first use.
Result<ServerKeys> load_or_create_server_keys(const fs::path& data_dir);

class ImageStore {
  public:
    static Result<std::unique_ptr<ImageStore>> open(const fs::path& data_dir);

    // Creates an image's folders and family key; Errc::conflict when it exists.
    Result<trim::FamilyId> create_image(std::string_view name);
    // The image's family secret, for admins packing a version and agents decrypting one.
    Result<crypto::Key> family_secret(std::string_view name) const;
    // The file behind a repository object path an agent may read, e.g. "chunks/ab/ab12…",
    // "images/NAME/latest"; refuses anything else (Errc::invalid_argument).
    Result<fs::path> object_file(std::string_view name, std::string_view path) const;
    // The newest version (nullopt: none yet).
    Result<std::optional<std::uint64_t>> latest(std::string_view name) const;
    // Which of these object paths (chunks/…, deltas/…) the image does not have yet.
    Result<std::vector<std::string>> missing(std::string_view name,
                                             const std::vector<std::string>& paths) const;

    // An object upload in progress: bytes are appended to a file in incoming/, then finish()
    // verifies it and moves it into place. Dropping an unfinished upload removes its file.
    class Upload {
      public:
        Upload(Upload&&) noexcept;
        Upload& operator=(Upload&&) = delete;
        ~Upload();
        Status append(ByteView bytes);
        // Returns true when the object was new, false when the image already had it.
        Result<bool> finish();

      private:
        friend class ImageStore;
        Upload(const ImageStore* store, std::string image, std::string path, fs::path temp, Fd fd,
               std::uint64_t limit);
        const ImageStore* store_;
        std::string image_;
        std::string path_;
        fs::path temp_;
        Fd fd_;
        std::uint64_t size_ = 0;
        std::uint64_t limit_;
    };
    Result<Upload> begin_upload(std::string_view name, std::string_view path,
                                std::uint64_t max_size) const;

    // Makes version the newest: checks the manifest an admin packed (its image, family and
    // version, and that every object it names is here and of the right size), signs it with
    // the server's key, and publishes it. Returns the record to keep in the metadata.
    Result<VersionRecord> commit_version(std::string_view name, std::uint64_t version,
                                         ByteView manifest, const ServerKeys& keys,
                                         std::string_view pushed_by, std::int64_t now,
                                         Metadata& metadata) const;

    fs::path image_dir(std::string_view name) const { return root_ / "images" / name; }
    fs::path repo_dir(std::string_view name) const { return image_dir(name) / "repo"; }

  private:
    explicit ImageStore(fs::path root) : root_(std::move(root)) {}
    Result<trim::FamilyKeys> family(std::string_view name) const;
    Status verify_object(std::string_view name, std::string_view path, const fs::path& file) const;
    fs::path root_;
};

// True for an object path an admin may upload: chunks/ab/<64 hex> or
// deltas/ab/<64 hex>-<64 hex>, in lowercase.
bool uploadable_object_path(std::string_view path);

} // namespace heirloom::server
