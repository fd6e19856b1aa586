#include "heirloom/server/image_store.hpp"

#include "heirloom/policy/model.hpp"
#include "heirloom/trim/chunk.hpp"
#include "heirloom/trim/delta.hpp"
#include "heirloom/trim/repository.hpp"
#include "heirloom/trim/source.hpp"

#include <fcntl.h>
#include <unistd.h>

namespace heirloom::server {
namespace {

bool lower_hex(std::string_view s, std::size_t n) {
    if (s.size() != n)
        return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    return true;
}

template <std::size_t N> std::array<std::uint8_t, N> hex_id(std::string_view hex) {
    auto bytes = from_hex_fixed<N>(hex);
    return bytes ? *bytes : std::array<std::uint8_t, N>{};
}

Status check_image_name(std::string_view name) {
    return policy::check_id(name, "image name");
}

} // namespace

bool uploadable_object_path(std::string_view path) {
    if (path.starts_with("chunks/")) {
        std::string_view rest = path.substr(7);
        return rest.size() == 67 && lower_hex(rest.substr(0, 2), 2) && rest[2] == '/' &&
               lower_hex(rest.substr(3), 64) && rest.substr(0, 2) == rest.substr(3, 2);
    }
    if (path.starts_with("deltas/")) {
        std::string_view rest = path.substr(7);
        return rest.size() == 132 && lower_hex(rest.substr(0, 2), 2) && rest[2] == '/' &&
               lower_hex(rest.substr(3, 64), 64) && rest[67] == '-' &&
               lower_hex(rest.substr(68), 64) && rest.substr(0, 2) == rest.substr(3, 2);
    }
    return false;
}

Result<ServerKeys> load_or_create_server_keys(const fs::path& data_dir) {
    fs::path dir = data_dir / "keys";
    fs::path secret_file = dir / "signing.key";
    fs::path public_file = dir / "signing.pub";
    if (!fs::exists(secret_file)) {
        HL_TRY(make_dirs(dir));
        fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace);
        auto pair = crypto::generate_signing_key();
        HL_TRY(trim::write_key_file(public_file, pair.public_key, FileMode::public_read));
        HL_TRY(trim::write_key_file(secret_file, pair.secret_key, FileMode::owner_only));
        crypto::secure_wipe(pair.secret_key);
    }
    ServerKeys keys;
    Bytes secret = HL_TRY(trim::read_key_file(secret_file, 64, trim::KeySecrecy::secret));
    Bytes pub = HL_TRY(trim::read_key_file(public_file, 32, trim::KeySecrecy::public_key));
    std::copy(secret.begin(), secret.end(), keys.secret.begin());
    std::copy(pub.begin(), pub.end(), keys.public_key.begin());
    crypto::secure_wipe(secret);
    if (!std::equal(pub.begin(), pub.end(), keys.secret.begin() + 32))
        return fail(Errc::crypto,
                    secret_file.string() + " and " + public_file.string() + " are not a pair");
    return keys;
}

Result<std::unique_ptr<ImageStore>> ImageStore::open(const fs::path& data_dir) {
    HL_TRY(make_dirs(data_dir / "images"));
    std::error_code ec;
    // Uploads cut short by a crash or a dropped connection: the admin's push sends them again.
    for (const auto& image : fs::directory_iterator(data_dir / "images", ec))
        for (const auto& part : fs::directory_iterator(image.path() / "incoming", ec))
            if (part.path().extension() == ".part")
                fs::remove(part.path(), ec);
    return std::unique_ptr<ImageStore>(new ImageStore(data_dir));
}

Result<trim::FamilyId> ImageStore::create_image(std::string_view name) {
    HL_TRY(check_image_name(name));
    fs::path dir = image_dir(name);
    if (fs::exists(dir / "family.key"))
        return fail(Errc::conflict, "image " + std::string(name) + " already exists");
    HL_TRY(make_dirs(dir / "incoming"));
    HL_TRY(make_dirs(repo_dir(name) / "images" / name));
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace);
    crypto::Key secret{};
    crypto::random_bytes(secret);
    trim::FamilyKeys keys(secret);
    auto written = trim::write_key_file(dir / "family.key", secret, FileMode::owner_only);
    crypto::secure_wipe(secret);
    HL_TRY(written);
    return keys.family_id();
}

Result<crypto::Key> ImageStore::family_secret(std::string_view name) const {
    HL_TRY(check_image_name(name));
    fs::path file = image_dir(name) / "family.key";
    if (!fs::exists(file))
        return fail(Errc::not_found, "no image " + std::string(name));
    Bytes secret = HL_TRY(trim::read_key_file(file, 32, trim::KeySecrecy::secret));
    crypto::Key key{};
    std::copy(secret.begin(), secret.end(), key.begin());
    crypto::secure_wipe(secret);
    return key;
}

Result<trim::FamilyKeys> ImageStore::family(std::string_view name) const {
    crypto::Key secret = HL_TRY(family_secret(name));
    trim::FamilyKeys keys(secret);
    crypto::secure_wipe(secret);
    return keys;
}

Result<fs::path> ImageStore::object_file(std::string_view name, std::string_view path) const {
    HL_TRY(check_image_name(name));
    std::string own = "images/" + std::string(name) + "/";
    bool allowed =
        uploadable_object_path(path) || (path.starts_with(own) && trim::valid_object_path(path) &&
                                         path.find('/', own.size()) == std::string_view::npos);
    if (!allowed)
        return fail(Errc::invalid_argument, "not an object of image " + std::string(name));
    return repo_dir(name) / path;
}

Result<std::optional<std::uint64_t>> ImageStore::latest(std::string_view name) const {
    HL_TRY(check_image_name(name));
    return trim::repository_latest(repo_dir(name), name);
}

Result<std::vector<std::string>> ImageStore::missing(std::string_view name,
                                                     const std::vector<std::string>& paths) const {
    HL_TRY(check_image_name(name));
    std::vector<std::string> out;
    for (const auto& p : paths) {
        if (!uploadable_object_path(p))
            return fail(Errc::invalid_argument,
                        "\"" + p.substr(0, 200) + "\" is not a chunk or delta object path");
        if (!fs::exists(repo_dir(name) / p))
            out.push_back(p);
    }
    return out;
}

ImageStore::Upload::Upload(const ImageStore* store, std::string image, std::string path,
                           fs::path temp, Fd fd, std::uint64_t limit)
    : store_(store), image_(std::move(image)), path_(std::move(path)), temp_(std::move(temp)),
      fd_(std::move(fd)), limit_(limit) {}

ImageStore::Upload::Upload(Upload&& other) noexcept
    : store_(other.store_), image_(std::move(other.image_)), path_(std::move(other.path_)),
      temp_(std::move(other.temp_)), fd_(std::move(other.fd_)), size_(other.size_),
      limit_(other.limit_) {
    other.temp_.clear();
}

ImageStore::Upload::~Upload() {
    if (!temp_.empty()) {
        std::error_code ec;
        fs::remove(temp_, ec);
    }
}

Status ImageStore::Upload::append(ByteView bytes) {
    if (size_ + bytes.size() > limit_)
        return fail(Errc::invalid_argument,
                    "object " + path_ + " is larger than " + std::to_string(limit_) + " bytes");
    HL_TRY(write_all(fd_.get(), bytes, temp_));
    size_ += bytes.size();
    return {};
}

Result<bool> ImageStore::Upload::finish() {
    if (::fsync(fd_.get()) != 0)
        return fail_errno("fsync", temp_.string());
    fd_ = Fd();
    HL_TRY(store_->verify_object(image_, path_, temp_));
    fs::path final_path = store_->repo_dir(image_) / path_;
    if (fs::exists(final_path))
        return false; // the destructor removes the duplicate
    HL_TRY(make_dirs(final_path.parent_path()));
    if (::rename(temp_.c_str(), final_path.c_str()) != 0)
        return fail_errno("rename", final_path.string());
    temp_.clear();
    HL_TRY(fsync_dir(final_path.parent_path()));
    return true;
}

Result<ImageStore::Upload> ImageStore::begin_upload(std::string_view name, std::string_view path,
                                                    std::uint64_t max_size) const {
    HL_TRY(check_image_name(name));
    if (!uploadable_object_path(path))
        return fail(Errc::invalid_argument, "not a chunk or delta object path");
    if (!fs::exists(image_dir(name) / "family.key"))
        return fail(Errc::not_found, "no image " + std::string(name));
    Bytes nonce(8);
    crypto::random_bytes(nonce);
    fs::path temp = image_dir(name) / "incoming" / (to_hex(nonce) + ".part");
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return fail_errno("create", temp.string());
    return Upload(this, std::string(name), std::string(path), temp, Fd(fd), max_size);
}

Status ImageStore::verify_object(std::string_view name, std::string_view path,
                                 const fs::path& file) const {
    auto keys = HL_TRY(family(name));
    std::string_view rest = path.substr(10); // past "chunks/ab/" or "deltas/ab/"
    if (path.starts_with("chunks/")) {
        auto id = hex_id<32>(rest);
        trim::RecordCodec codec;
        Bytes plain;
        HL_TRY_CTX(trim::read_chunk_plaintext(file, id, keys, codec, plain), std::string(path));
        return {};
    }
    auto from = hex_id<32>(rest.substr(0, 64));
    auto to = hex_id<32>(rest.substr(65));
    Bytes object = HL_TRY(read_file(file, trim::max_delta_object_size));
    auto opened = trim::open_delta(keys, from, to, object);
    if (!opened)
        return std::unexpected(std::move(opened).error().context(std::string(path)));
    return {};
}

Result<VersionRecord> ImageStore::commit_version(std::string_view name, std::uint64_t version,
                                                 ByteView manifest_bytes, const ServerKeys& keys,
                                                 std::string_view pushed_by, std::int64_t now,
                                                 Metadata& metadata) const {
    auto family_keys = HL_TRY(family(name));
    auto lock = HL_TRY(
        trim::FileLock::acquire(image_dir(name) / "push.lock", "image " + std::string(name)));
    auto m = HL_TRY_CTX(trim::parse_manifest_unverified(manifest_bytes), "manifest");
    if (m.image != name)
        return fail(Errc::invalid_argument,
                    "the manifest is of image " + m.image + ", not " + std::string(name));
    if (m.family != family_keys.family_id())
        return fail(Errc::invalid_argument, "the manifest was packed with another key than image " +
                                                std::string(name) +
                                                "'s; fetch the image's key and pack again");
    if (m.version != version)
        return fail(Errc::invalid_argument, "the manifest is version " + std::to_string(m.version) +
                                                ", not " + std::to_string(version));
    auto latest_version = HL_TRY(latest(name));
    if (latest_version && version <= *latest_version)
        return fail(Errc::conflict, "image " + std::string(name) + " already has version " +
                                        std::to_string(*latest_version) + "; push a newer version");
    VersionRecord record{std::string(name), version, now, m.virtual_size,
                         m.chunks.size(),   0,       0,   std::string(pushed_by)};
    std::vector<std::string> absent;
    auto check = [&](const std::string& path, std::uint32_t size) {
        std::error_code ec;
        auto have = fs::file_size(repo_dir(name) / path, ec);
        if (ec || have != size)
            absent.push_back(path);
        record.object_bytes += size;
    };
    for (const auto& e : m.chunks)
        check(trim::chunk_path(e.id), e.object_size);
    for (const auto& d : m.deltas) {
        const auto* entry = std::find_if(m.chunks.data(), m.chunks.data() + m.chunks.size(),
                                         [&](const auto& c) { return c.index == d.index; });
        if (entry == m.chunks.data() + m.chunks.size())
            return fail(Errc::corrupt, "manifest: a delta names chunk index " +
                                           std::to_string(d.index) + ", which has no chunk");
        check(trim::delta_path(d.from, entry->id), d.object_size);
    }
    if (!absent.empty())
        return fail(Errc::conflict, std::to_string(absent.size()) +
                                        " objects of this version are missing or incomplete, "
                                        "first " +
                                        absent.front() + "; upload them first");
    Bytes signed_manifest = trim::encode_manifest(m, keys.secret);
    record.manifest_bytes = signed_manifest.size();
    fs::path repo = repo_dir(name);
    HL_TRY(make_dirs(repo / "images" / name));
    HL_TRY(write_file_atomic(repo / trim::manifest_path(name, version), signed_manifest));
    HL_TRY(metadata.add_version(record));
    std::string pointer = std::to_string(version) + "\n";
    HL_TRY(write_file_atomic(repo / trim::latest_path(name), as_bytes(pointer)));
    return record;
}

} // namespace heirloom::server
