#include "heirloom/trim/image_ops.hpp"

#include "heirloom/common/json.hpp"
#include "heirloom/trim/chunk.hpp"
#include "heirloom/trim/repository.hpp"
#include "heirloom/trim/store.hpp"
#include "heirloom/trim/vhd.hpp"

#include <atomic>
#include <chrono>
#include <fmt/format.h>
#include <mutex>
#include <thread>
#include <unistd.h>

namespace heirloom::trim {

namespace {

double since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

Result<Manifest> stored_manifest(const Store& store, std::string_view image,
                                 std::optional<std::uint64_t> version, const KeySet& keys) {
    if (!version) {
        version = HL_TRY(store.current_version(image));
        if (!version)
            return fail(Errc::not_found, fmt::format("image '{}' is not in store {}; run "
                                                     "heirloom-image sync first",
                                                     image, store.dir().string()));
    }
    return store.load_manifest(image, *version, keys.signing_public);
}

} // namespace

Result<ExportResult> export_image(const fs::path& store_dir, std::string_view image,
                                  std::optional<std::uint64_t> version, const fs::path& out,
                                  const KeySet& keys, Progress* progress) {
    auto started = std::chrono::steady_clock::now();
    Store store = HL_TRY(Store::open(store_dir));
    Manifest m = HL_TRY(stored_manifest(store, image, version, keys));
    fs::path tmp = out;
    tmp += ".partial";
    auto writer = HL_TRY(vhd::DynamicWriter::create(tmp, m.virtual_size));
    RecordCodec codec;
    Bytes plain;
    ExportResult result{m.version, m.virtual_size, 0, 0};
    for (std::size_t i = 0; i < m.chunks.size(); ++i) {
        const auto& entry = m.chunks[i];
        auto ok =
            read_chunk_plaintext(store.chunk_file(entry.id), entry.id, keys.family, codec, plain);
        if (!ok) {
            std::error_code ec;
            fs::remove(tmp, ec);
            return std::unexpected(
                ok.error().context(fmt::format("export '{}' v{}", image, m.version)));
        }
        std::uint64_t offset = std::uint64_t{entry.index} * chunk_bytes;
        std::uint64_t length = std::min<std::uint64_t>(plain.size(), m.virtual_size - offset);
        HL_TRY(writer.write(offset, ByteView(plain.data(), length)));
        result.data_bytes += length;
        if (progress && (i % 64 == 0 || i + 1 == m.chunks.size()))
            progress->update("export", i + 1, m.chunks.size());
    }
    crypto::secure_wipe(plain);
    HL_TRY(writer.finish());
    std::error_code ec;
    fs::rename(tmp, out, ec);
    if (ec)
        return fail(Errc::io, "move exported image to " + out.string() + ": " + ec.message());
    result.seconds = since(started);
    return result;
}

Result<VerifyResult> verify_image(const fs::path& store_dir, std::string_view image,
                                  std::optional<std::uint64_t> version, const KeySet& keys,
                                  Progress* progress) {
    auto started = std::chrono::steady_clock::now();
    Store store = HL_TRY(Store::open(store_dir));
    Manifest m = HL_TRY(stored_manifest(store, image, version, keys));
    VerifyResult result;
    result.version = m.version;
    result.chunks = m.chunks.size();
    std::atomic<std::size_t> next{0};
    std::atomic<std::size_t> done{0};
    std::atomic<std::uint64_t> data{0};
    std::mutex mutex;
    auto work = [&] {
        RecordCodec codec;
        Bytes plain;
        for (std::size_t i = next++; i < m.chunks.size(); i = next++) {
            auto ok = read_chunk_plaintext(store.chunk_file(m.chunks[i].id), m.chunks[i].id,
                                           keys.family, codec, plain);
            if (!ok) {
                std::lock_guard lock(mutex);
                result.problems.push_back(fmt::format(
                    "chunk {} (disk offset {}): {}", to_hex(m.chunks[i].id),
                    std::uint64_t{m.chunks[i].index} * chunk_bytes, ok.error().message));
            } else {
                data += plain.size();
            }
            std::size_t d = ++done;
            if (progress && (d % 64 == 0 || d == m.chunks.size()))
                progress->update("verify", d, m.chunks.size());
        }
        crypto::secure_wipe(plain);
    };
    {
        std::vector<std::jthread> threads;
        for (unsigned i = 0; i < std::max(1u, std::thread::hardware_concurrency()); ++i)
            threads.emplace_back(work);
    }
    std::sort(result.problems.begin(), result.problems.end());
    result.data_bytes = data;
    result.seconds = since(started);
    return result;
}

Result<MediaResult> create_media(ObjectSource& repo, std::string_view image,
                                 std::optional<std::uint64_t> version, const fs::path& out,
                                 Progress* progress) {
    auto started = std::chrono::steady_clock::now();
    if (!version) {
        auto pointer = repo.get(latest_path(image), 64);
        if (!pointer && pointer.error().code == Errc::not_found)
            return fail(Errc::not_found,
                        fmt::format("image '{}' has no version in {}", image, repo.describe()));
        Bytes text = HL_TRY(std::move(pointer));
        version = HL_TRY(parse_version_pointer(std::string(text.begin(), text.end())));
    }
    Bytes manifest_bytes = HL_TRY(repo.get(manifest_path(image, *version), max_manifest_size));
    // The media tool holds no keys: structure is checked here, signatures by every endpoint.
    Manifest m = HL_TRY_CTX(parse_manifest_unverified(manifest_bytes), "manifest");
    if (m.image != image || m.version != *version)
        return fail(Errc::corrupt,
                    fmt::format("{} gave the manifest of {} v{} for {} v{}", repo.describe(),
                                m.image, m.version, image, *version));
    HL_TRY(make_dirs(out / "images" / image));
    MediaResult result;
    result.version = m.version;
    result.chunks = m.chunks.size();
    for (std::size_t i = 0; i < m.chunks.size(); ++i) {
        const auto& entry = m.chunks[i];
        fs::path to = out / chunk_path(entry.id);
        std::error_code ec;
        if (fs::exists(to, ec) && fs::file_size(to, ec) == entry.object_size)
            continue;
        Bytes object = HL_TRY(repo.get(chunk_path(entry.id), entry.object_size));
        if (object.size() != entry.object_size)
            return fail(Errc::corrupt, fmt::format("chunk {} in the repository has the wrong size",
                                                   to_hex(entry.id)));
        HL_TRY(make_dirs(to.parent_path()));
        HL_TRY(write_file_atomic(to, object, Durability::none));
        ++result.chunks_copied;
        result.bytes_copied += object.size();
        if (progress && (i % 64 == 0 || i + 1 == m.chunks.size()))
            progress->update("media", i + 1, m.chunks.size());
    }
    HL_TRY(sync_filesystem(out));
    HL_TRY(write_file_atomic(out / manifest_path(image, m.version), manifest_bytes));
    std::string pointer = fmt::format("{}\n", m.version);
    HL_TRY(write_file_atomic(out / latest_path(image), as_bytes(pointer)));

    // The marker that tells an endpoint this folder is media, not a folder of host files.
    Json marker = {{"format", 1}, {"images", Json::object()}};
    if (auto text = read_text_file(out / "heirloom-media.json", 1 << 20)) {
        auto old = parse_json(*text);
        if (old && old->is_object() && old->contains("images") && (*old)["images"].is_object())
            marker["images"] = (*old)["images"];
    }
    marker["images"][std::string(image)] = m.version;
    std::string dumped = marker.dump(2) + "\n";
    HL_TRY(write_file_atomic(out / "heirloom-media.json", as_bytes(dumped)));
    result.seconds = since(started);
    return result;
}

Result<MediaResult> create_media(const fs::path& repo, std::string_view image,
                                 std::optional<std::uint64_t> version, const fs::path& out,
                                 Progress* progress) {
    if (!fs::is_directory(repo))
        return fail(Errc::not_found, "repository folder " + repo.string() + " does not exist");
    auto source = HL_TRY(open_source(repo.string()));
    return create_media(*source, image, version, out, progress);
}

} // namespace heirloom::trim
