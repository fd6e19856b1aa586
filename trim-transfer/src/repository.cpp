#include "heirloom/trim/repository.hpp"

#include "heirloom/trim/chunk.hpp"
#include "heirloom/trim/delta.hpp"
#include "heirloom/trim/vhd.hpp"

#include <atomic>
#include <chrono>
#include <ctime>
#include <fcntl.h>
#include <fmt/format.h>
#include <mutex>
#include <set>
#include <sys/file.h>
#include <thread>
#include <unistd.h>
#include <unordered_map>
#include <unordered_set>

namespace heirloom::trim {

std::string latest_path(std::string_view image) {
    return fmt::format("images/{}/latest", image);
}

std::string manifest_path(std::string_view image, std::uint64_t version) {
    return fmt::format("images/{}/v{}.manifest", image, version);
}

Result<std::uint64_t> parse_version_pointer(std::string_view text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
        text.remove_suffix(1);
    if (text.empty() || text.size() > 19)
        return fail(Errc::corrupt, "version pointer is empty or too long");
    std::uint64_t v = 0;
    for (char c : text) {
        if (c < '0' || c > '9')
            return fail(Errc::corrupt, "version pointer is not a number");
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (v == 0)
        return fail(Errc::corrupt, "version pointer is zero");
    return v;
}

Result<std::optional<std::uint64_t>> repository_latest(const fs::path& repo,
                                                       std::string_view image) {
    fs::path p = repo / latest_path(image);
    if (!fs::exists(p))
        return std::optional<std::uint64_t>{};
    std::string text = HL_TRY(read_text_file(p, 64));
    return std::optional<std::uint64_t>(HL_TRY_CTX(parse_version_pointer(text), p.string()));
}

Result<FileLock> FileLock::acquire(const fs::path& path, std::string_view what) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail_errno("open lock", path.string());
    Fd owner(fd);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0)
        return fail(Errc::conflict, fmt::format("{} is in use by another heirloom-image process; "
                                                "wait for it to finish",
                                                what));
    return FileLock(std::move(owner));
}

namespace {

// True when a chunk object already in the repository is complete (a crash or power cut
// during an earlier pack must not leave a damaged object that later packs trust).
bool object_intact(const fs::path& path, const FamilyKeys& keys, const ChunkId& id,
                   std::uint32_t* size) {
    auto fd = open_read(path);
    if (!fd)
        return false;
    auto total = file_size(fd->get(), path);
    Bytes head(chunk_header_size(chunk_blocks));
    if (!total || *total < chunk_header_fixed_size)
        return false;
    head.resize(std::min<std::uint64_t>(head.size(), *total));
    if (!pread_exact(fd->get(), head, 0, path))
        return false;
    auto header = parse_chunk_header(head, keys, &id);
    if (!header || header->object_size() != *total)
        return false;
    *size = static_cast<std::uint32_t>(*total);
    return true;
}

Status write_object(const fs::path& path, ByteView object) {
    HL_TRY(make_dirs(path.parent_path()));
    // No fsync per chunk: one syncfs() before the manifest is written makes them durable.
    return write_file_atomic(path, object, Durability::none);
}

struct PackState {
    PackState(const vhd::Image& i, const fs::path& r, const KeySet& k, const PackOptions& o,
              std::uint32_t count)
        : image(i), repo(r), keys(k), options(o), chunk_count(count) {}
    const vhd::Image& image;
    const fs::path& repo;
    const KeySet& keys;
    const PackOptions& options;
    std::uint32_t chunk_count;
    std::atomic<std::uint32_t> next{0};
    std::atomic<std::uint32_t> done{0};
    std::atomic<bool> failed{false};
    std::mutex mutex;
    std::vector<ManifestEntry> entries;
    std::optional<Error> error;
    std::uint64_t data_bytes = 0, chunks_new = 0, bytes_new = 0;
    std::set<ChunkId> fresh; // chunks this pack wrote
};

Status pack_one(PackState& s, RecordCodec& codec, std::uint32_t index, Bytes& buffer,
                std::vector<BlockTag>& tags) {
    std::uint64_t offset = std::uint64_t{index} * chunk_bytes;
    std::uint64_t length = std::min<std::uint64_t>(chunk_bytes, s.image.virtual_size() - offset);
    std::uint32_t blocks = static_cast<std::uint32_t>((length + block_size - 1) / block_size);
    if (!s.image.may_hold_data(offset, length))
        return {};
    buffer.assign(std::size_t{blocks} * block_size, 0);
    HL_TRY(s.image.read(offset, MutableByteView(buffer.data(), length)));
    tags.resize(blocks);
    tag_blocks(s.keys.family, buffer, tags);
    std::uint64_t data = 0;
    for (const auto& t : tags)
        data += t == zero_tag ? 0 : block_size;
    if (data == 0)
        return {};
    ChunkId id = s.keys.family.chunk_id(tags);
    fs::path path = s.repo / chunk_path(id);
    std::uint32_t size = 0;
    std::uint64_t written = 0;
    if (!object_intact(path, s.keys.family, id, &size)) {
        auto sealed =
            HL_TRY(seal_chunk(s.keys.family, codec, tags, buffer, RecordCodec::Compress::yes));
        HL_TRY(write_object(path, sealed.object));
        size = static_cast<std::uint32_t>(sealed.object.size());
        written = size;
    }
    std::lock_guard lock(s.mutex);
    s.entries.push_back({index, id, size});
    s.data_bytes += data;
    s.chunks_new += written ? 1 : 0;
    s.bytes_new += written;
    if (written)
        s.fresh.insert(id);
    return {};
}

void pack_worker(PackState& s) {
    RecordCodec codec;
    Bytes buffer;
    std::vector<BlockTag> tags;
    while (!s.failed) {
        std::uint32_t index = s.next++;
        if (index >= s.chunk_count)
            return;
        auto ok = pack_one(s, codec, index, buffer, tags);
        if (!ok) {
            std::lock_guard lock(s.mutex);
            if (!s.error)
                s.error = ok.error().context(fmt::format("chunk {}", index));
            s.failed = true;
            return;
        }
        std::uint32_t done = ++s.done;
        if (s.options.progress && (done % 64 == 0 || done == s.chunk_count))
            s.options.progress->update("pack", std::uint64_t{done} * chunk_bytes,
                                       std::uint64_t{s.chunk_count} * chunk_bytes);
    }
}

struct DeltaPlan {
    std::vector<DeltaEntry> entries;
    std::uint64_t bytes = 0;
    std::uint64_t saving = 0;
};

// For each chunk this pack wrote where the previous version had another chunk: a librsync
// delta from that chunk, kept when it is at least 10% smaller than the records of the blocks
// an endpoint holding the previous version would otherwise fetch.
Result<DeltaPlan> make_deltas(const fs::path& repo, const FamilyKeys& keys,
                              const Manifest& previous, const std::vector<ManifestEntry>& entries,
                              const std::set<ChunkId>& fresh, unsigned threads) {
    std::unordered_set<BlockTag, TagHash> old_tags;
    std::unordered_map<std::uint32_t, ChunkId> old_at;
    for (const auto& e : previous.chunks) {
        auto header = HL_TRY(read_chunk_header_file(repo / chunk_path(e.id), keys, e.id));
        for (const auto& b : header.blocks)
            old_tags.insert(b.tag);
        old_at.emplace(e.index, e.id);
    }
    std::vector<std::pair<ManifestEntry, ChunkId>> todo;
    for (const auto& e : entries) {
        auto it = old_at.find(e.index);
        if (fresh.contains(e.id) && it != old_at.end() && it->second != e.id)
            todo.emplace_back(e, it->second);
    }
    DeltaPlan plan;
    std::mutex mutex;
    std::optional<Error> error;
    std::atomic<std::size_t> next{0};
    auto work = [&] {
        RecordCodec codec;
        for (std::size_t i = next++; i < todo.size(); i = next++) {
            const auto& [entry, from] = todo[i];
            auto result = [&]() -> Status {
                ChunkHeader header;
                Bytes new_plain;
                HL_TRY(read_chunk_plaintext(repo / chunk_path(entry.id), entry.id, keys, codec,
                                            new_plain, &header));
                std::uint64_t cost = 0;
                for (const auto& b : header.blocks)
                    cost += old_tags.contains(b.tag) ? 0 : b.record_size;
                if (cost == 0)
                    return {};
                Bytes old_plain;
                HL_TRY(read_chunk_plaintext(repo / chunk_path(from), from, keys, codec, old_plain));
                Bytes delta = HL_TRY(make_delta(old_plain, new_plain));
                Bytes sealed = HL_TRY(seal_delta(keys, from, entry.id, delta));
                if (sealed.size() * 10 >= cost * 9)
                    return {};
                HL_TRY(write_object(repo / delta_path(from, entry.id), sealed));
                std::lock_guard lock(mutex);
                plan.entries.push_back(
                    {entry.index, from, static_cast<std::uint32_t>(sealed.size())});
                plan.bytes += sealed.size();
                plan.saving += cost - sealed.size();
                return {};
            }();
            if (!result) {
                std::lock_guard lock(mutex);
                error = result.error().context(fmt::format("delta for chunk {}", entry.index));
                next = todo.size();
            }
        }
    };
    {
        std::vector<std::jthread> workers;
        for (unsigned i = 0; i < threads; ++i)
            workers.emplace_back(work);
    }
    if (error)
        return std::unexpected(*error);
    std::sort(plan.entries.begin(), plan.entries.end(),
              [](const auto& a, const auto& b) { return a.index < b.index; });
    return plan;
}

} // namespace

Result<PackResult> pack_image(const fs::path& vhd_path, const fs::path& repo, const KeySet& keys,
                              const PackOptions& options) {
    auto started = std::chrono::steady_clock::now();
    if (!valid_image_name(options.name))
        return fail(Errc::invalid_argument,
                    fmt::format("'{}' is not a valid image name: use 1-64 of a-z, 0-9, '.', '_', "
                                "'-', starting with a letter or digit",
                                options.name));
    if (!keys.signing_secret)
        return fail(Errc::invalid_argument, "packing needs the signing secret key");
    auto image = HL_TRY_CTX(vhd::Image::open(vhd_path), vhd_path.string());
    HL_TRY(make_dirs(repo / "images" / options.name));
    HL_TRY(make_dirs(repo / "chunks"));
    auto lock = HL_TRY(FileLock::acquire(repo / ".lock", "repository " + repo.string()));

    auto latest = HL_TRY(repository_latest(repo, options.name));
    std::uint64_t version = options.version.value_or(latest.value_or(0) + 1);
    if (latest && version <= *latest)
        return fail(Errc::conflict, fmt::format("version {} is not newer than the repository's "
                                                "latest version {} of '{}'; versions only increase",
                                                version, *latest, options.name));

    Manifest m;
    m.image = options.name;
    m.version = version;
    m.virtual_size = image.virtual_size();
    m.created = std::time(nullptr);
    m.expires = options.expires_in_seconds > 0 ? m.created + options.expires_in_seconds : 0;
    m.family = keys.family.family_id();
    m.disk_uuid = image.footer().unique_id;
    if (m.virtual_size % 512 != 0)
        return fail(Errc::unsupported, "virtual size is not a multiple of 512 bytes");

    PackState state(image, repo, keys, options, m.chunk_count());
    unsigned threads =
        options.threads ? options.threads : std::max(1u, std::thread::hardware_concurrency());
    std::vector<std::jthread> workers;
    for (unsigned i = 0; i < threads; ++i)
        workers.emplace_back([&state] { pack_worker(state); });
    workers.clear();
    if (state.error)
        return std::unexpected(state.error->context("pack " + vhd_path.string()));

    std::sort(state.entries.begin(), state.entries.end(),
              [](const auto& a, const auto& b) { return a.index < b.index; });
    m.chunks = std::move(state.entries);
    DeltaPlan deltas;
    if (options.deltas && latest) {
        Bytes bytes = HL_TRY(read_file(repo / manifest_path(m.image, *latest), max_manifest_size));
        auto previous = HL_TRY_CTX(parse_manifest(bytes, keys.signing_public),
                                   fmt::format("previous version v{}", *latest));
        if (previous.family == m.family && previous.virtual_size == m.virtual_size)
            deltas =
                HL_TRY(make_deltas(repo, keys.family, previous, m.chunks, state.fresh, threads));
    }
    m.deltas = deltas.entries;
    Bytes encoded = encode_manifest(m, *keys.signing_secret);
    // Chunks first, durably; then the manifest; then the pointer that makes it visible.
    HL_TRY(sync_filesystem(repo));
    HL_TRY(write_file_atomic(repo / manifest_path(m.image, version), encoded));
    std::string pointer = fmt::format("{}\n", version);
    HL_TRY(write_file_atomic(repo / latest_path(m.image), as_bytes(pointer)));

    PackResult result;
    result.image = m.image;
    result.version = version;
    result.virtual_size = m.virtual_size;
    result.data_bytes = state.data_bytes;
    result.chunks = m.chunks.size();
    result.chunks_new = state.chunks_new;
    result.bytes_new = state.bytes_new;
    result.manifest_bytes = encoded.size();
    result.deltas = deltas.entries.size();
    result.delta_bytes = deltas.bytes;
    result.delta_saving = deltas.saving;
    result.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return result;
}

} // namespace heirloom::trim
