#include "heirloom/trim/store.hpp"

#include <fmt/format.h>
#include <set>
#include <unistd.h>

namespace heirloom::trim {

namespace {
fs::path incoming_file(const fs::path& dir, const ChunkId& id) {
    return dir / "incoming" / to_hex(id);
}

} // namespace

Result<Store> Store::open(const fs::path& dir, std::uint64_t checkpoint_bytes) {
    for (const char* sub : {"chunks", "images", "incoming", "seeds"})
        HL_TRY(make_dirs(dir / sub));
    auto lock = HL_TRY(FileLock::acquire(dir / "lock", "store " + dir.string()));
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir / "incoming", ec))
        fs::remove(entry.path(), ec);
    return Store(dir, std::move(lock), std::max<std::uint64_t>(checkpoint_bytes, 1));
}

Store::~Store() {
    if (mutex_)
        (void)flush();
}

bool Store::has_chunk(const ChunkId& id) const {
    std::error_code ec;
    return fs::exists(chunk_file(id), ec);
}

Result<std::optional<std::uint64_t>> read_current_version(const fs::path& dir,
                                                          std::string_view image) {
    fs::path p = dir / "images" / image / "current";
    std::error_code ec;
    if (!fs::exists(p, ec))
        return std::optional<std::uint64_t>{};
    std::string text = HL_TRY(read_text_file(p, 64));
    return std::optional<std::uint64_t>(HL_TRY_CTX(parse_version_pointer(text), p.string()));
}

Result<Manifest> read_stored_manifest(const fs::path& dir, std::string_view image,
                                      std::uint64_t version, const crypto::SigningPublicKey& key) {
    fs::path p = dir / manifest_path(image, version);
    Bytes bytes = HL_TRY(read_file(p, max_manifest_size));
    return HL_TRY_CTX(parse_manifest(bytes, key), p.string());
}

Result<std::optional<std::uint64_t>> Store::current_version(std::string_view image) const {
    return read_current_version(dir_, image);
}

Result<Manifest> Store::load_manifest(std::string_view image, std::uint64_t version,
                                      const crypto::SigningPublicKey& key) const {
    return read_stored_manifest(dir_, image, version, key);
}

std::vector<std::string> Store::images() const {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir_ / "images", ec)) {
        std::string name = entry.path().filename().string();
        if (valid_image_name(name) && fs::exists(entry.path() / "current", ec))
            names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    return names;
}

Status Store::stage_chunk(const ChunkId& id, ByteView object) {
    HL_TRY(write_file_atomic(incoming_file(dir_, id), object, Durability::none));
    std::lock_guard lock(*mutex_);
    staged_.push_back(id);
    staged_bytes_ += object.size();
    if (staged_bytes_ >= checkpoint_bytes_)
        return flush_locked();
    return {};
}

Status Store::flush() {
    std::lock_guard lock(*mutex_);
    return flush_locked();
}

Status Store::flush_locked() {
    if (staged_.empty())
        return {};
    // Data first: a chunk's name appears in chunks/ only once its content is on disk.
    HL_TRY(sync_filesystem(dir_));
    for (const auto& id : staged_) {
        fs::path to = chunk_file(id);
        HL_TRY(make_dirs(to.parent_path()));
        std::error_code ec;
        fs::rename(incoming_file(dir_, id), to, ec);
        if (ec)
            return fail(Errc::io, "move chunk into the store: " + ec.message());
    }
    staged_.clear();
    staged_bytes_ = 0;
    return {};
}

fs::path Store::readable_chunk_file(const ChunkId& id) const {
    fs::path staged = incoming_file(dir_, id);
    std::error_code ec;
    if (fs::exists(staged, ec))
        return staged;
    return chunk_file(id);
}

Status Store::commit(std::string_view image, std::uint64_t version, ByteView manifest_bytes) {
    HL_TRY(flush());
    HL_TRY(sync_filesystem(dir_));
    HL_TRY(make_dirs(dir_ / "images" / image));
    HL_TRY(write_file_atomic(dir_ / manifest_path(image, version), manifest_bytes));
    std::string pointer = fmt::format("{}\n", version);
    return write_file_atomic(dir_ / "images" / image / "current", as_bytes(pointer));
}

Result<Store::PruneResult> Store::prune(std::string_view image, unsigned keep,
                                        const crypto::SigningPublicKey& key) {
    PruneResult result;
    auto current = HL_TRY(current_version(image));
    if (!current)
        return result;
    keep = std::max(keep, 1u);
    std::error_code ec;
    // Manifests of this image older than the kept window go first.
    for (const auto& entry : fs::directory_iterator(dir_ / "images" / image, ec)) {
        std::string file = entry.path().filename().string();
        if (!file.starts_with("v") || !file.ends_with(".manifest"))
            continue;
        auto v = parse_version_pointer(file.substr(1, file.size() - 10));
        if (v && (*v + keep <= *current || *v > *current)) {
            fs::remove(entry.path(), ec);
            ++result.manifests_removed;
        }
    }
    // Then chunks no remaining manifest (of any image) references.
    std::set<ChunkId> live;
    for (const auto& dir_entry : fs::directory_iterator(dir_ / "images", ec)) {
        for (const auto& entry : fs::directory_iterator(dir_entry.path(), ec)) {
            if (entry.path().extension() != ".manifest")
                continue;
            Bytes bytes = HL_TRY(read_file(entry.path(), max_manifest_size));
            auto m = parse_manifest(bytes, key);
            if (!m)
                return fail(Errc::corrupt, "prune stopped, nothing removed: " +
                                               entry.path().string() + ": " + m.error().message);
            for (const auto& c : m->chunks)
                live.insert(c.id);
        }
    }
    for (const auto& sub : fs::directory_iterator(dir_ / "chunks", ec)) {
        for (const auto& entry : fs::directory_iterator(sub.path(), ec)) {
            auto id = from_hex_fixed<32>(entry.path().filename().string());
            if (id && live.contains(*id))
                continue;
            fs::remove(entry.path(), ec);
            ++result.chunks_removed;
        }
    }
    return result;
}

} // namespace heirloom::trim
