#include "heirloom/trim/seeds.hpp"

#include "heirloom/common/crypto.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <map>
#include <mutex>
#include <sys/stat.h>
#include <thread>

namespace heirloom::trim {

void SeedIndex::add(const BlockTag& tag, BlockLocation where) {
    if (tag != zero_tag)
        entries_.push_back({tag, where});
}

void SeedIndex::finish() {
    std::stable_sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) {
        if (a.tag != b.tag)
            return a.tag < b.tag;
        return a.where.seed < b.where.seed;
    });
    auto last = std::unique(entries_.begin(), entries_.end(),
                            [](const Entry& a, const Entry& b) { return a.tag == b.tag; });
    entries_.erase(last, entries_.end());
    entries_.shrink_to_fit();
}

const BlockLocation* SeedIndex::find(const BlockTag& tag) const {
    auto it = std::lower_bound(entries_.begin(), entries_.end(), tag,
                               [](const Entry& e, const BlockTag& t) { return e.tag < t; });
    if (it == entries_.end() || it->tag != tag)
        return nullptr;
    return &it->where;
}

ChunkSeed ChunkSeed::load(std::vector<std::pair<ChunkId, fs::path>> chunk_files,
                          const FamilyKeys& keys) {
    ChunkSeed seed;
    for (auto& [id, path] : chunk_files) {
        if (seed.by_id_.contains(id))
            continue;
        auto header = read_chunk_header_file(path, keys, id);
        if (!header) {
            ++seed.skipped_;
            continue;
        }
        seed.by_id_.emplace(id, static_cast<std::uint32_t>(seed.chunks_.size()));
        seed.chunks_.push_back({std::move(path), std::move(*header)});
    }
    return seed;
}

std::optional<std::uint32_t> ChunkSeed::find(const ChunkId& id) const {
    auto it = by_id_.find(id);
    if (it == by_id_.end())
        return std::nullopt;
    return it->second;
}

void ChunkSeed::add_to(SeedIndex& index, std::uint32_t seed_number) const {
    for (std::uint32_t c = 0; c < chunks_.size(); ++c) {
        const auto& blocks = chunks_[c].header.blocks;
        for (std::uint32_t b = 0; b < blocks.size(); ++b)
            index.add(blocks[b].tag, {seed_number, c, b});
    }
}

Result<int> OpenFiles::get(const fs::path& path) {
    for (auto& e : entries_)
        if (e.fd && e.path == path)
            return e.fd.get();
    Entry& slot = entries_[next_++ % entries_.size()];
    slot.fd = HL_TRY(open_read(path));
    slot.path = path;
    return slot.fd.get();
}

Status ChunkSeed::read_block(const FamilyKeys& keys, RecordCodec& codec, OpenFiles& files,
                             std::uint32_t object, std::uint32_t block, MutableByteView out) const {
    const Chunk& chunk = chunks_.at(object);
    int fd = HL_TRY(files.get(chunk.path));
    return read_block_from_fd(fd, chunk.path, chunk.header, block, keys, codec, out);
}

namespace {

constexpr std::array<std::uint8_t, 8> index_magic{'H', 'L', 'M', 'S', 'E', 'E', 'D', '1'};

std::int64_t ns(const struct timespec& ts) {
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

using FileTags = std::map<std::string, std::pair<HostFolderSeed::File, std::vector<BlockTag>>>;

// Reads a previous index; any damage just means starting afresh.
FileTags load_index(const fs::path& path, const FamilyId& family) {
    FileTags out;
    auto bytes = read_file(path, 4ull << 30);
    if (!bytes)
        return out;
    Reader r(*bytes);
    auto magic = r.fixed<8>("magic");
    auto fam = r.fixed<16>("family");
    auto count = r.u32("count");
    if (!magic || *magic != index_magic || !fam || *fam != family || !count)
        return out;
    for (std::uint32_t i = 0; i < *count; ++i) {
        HostFolderSeed::File f;
        auto len = r.u16("path length");
        auto p = len ? r.raw("path", *len) : Result<ByteView>(fail(Errc::corrupt, ""));
        auto size = r.u64("size");
        auto mtime = r.u64("mtime");
        auto ctime = r.u64("ctime");
        auto inode = r.u64("inode");
        if (!p || !size || !mtime || !ctime || !inode || *size > (1ull << 44))
            return {};
        f.path.assign(p->begin(), p->end());
        f.size = *size;
        f.mtime_ns = static_cast<std::int64_t>(*mtime);
        f.ctime_ns = static_cast<std::int64_t>(*ctime);
        f.inode = *inode;
        std::uint64_t ntags = (f.size + block_size - 1) / block_size;
        auto raw = r.raw("tags", ntags * sizeof(BlockTag));
        if (!raw)
            return {};
        std::vector<BlockTag> tags(ntags);
        std::memcpy(tags.data(), raw->data(), raw->size());
        out.emplace(f.path, std::make_pair(f, std::move(tags)));
    }
    return out;
}

Status save_index(const fs::path& path, const FamilyId& family,
                  const std::vector<HostFolderSeed::File>& files,
                  const std::vector<BlockTag>& tags) {
    Writer w;
    w.raw(index_magic);
    w.raw(family);
    w.u32(static_cast<std::uint32_t>(files.size()));
    for (const auto& f : files) {
        w.u16(static_cast<std::uint16_t>(f.path.size()));
        w.raw(as_bytes(f.path));
        w.u64(f.size);
        w.u64(static_cast<std::uint64_t>(f.mtime_ns));
        w.u64(static_cast<std::uint64_t>(f.ctime_ns));
        w.u64(f.inode);
        std::uint64_t ntags = (f.size + block_size - 1) / block_size;
        w.raw({reinterpret_cast<const std::uint8_t*>(tags.data() + f.first_tag),
               ntags * sizeof(BlockTag)});
    }
    return write_file_atomic(path, w.bytes(), Durability::none);
}

// Hashes one file into tags; a file that changes size while being read is skipped.
Result<std::vector<BlockTag>> hash_file(const fs::path& path, std::uint64_t size,
                                        const FamilyKeys& keys) {
    auto fd = HL_TRY(open_read(path));
    ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
    std::vector<BlockTag> tags((size + block_size - 1) / block_size);
    constexpr std::size_t piece = 1 << 20;
    Bytes buf(piece);
    for (std::uint64_t off = 0; off < size; off += piece) {
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(piece, size - off));
        HL_TRY(pread_exact(fd.get(), MutableByteView(buf.data(), n), off, path));
        std::size_t padded = (n + block_size - 1) / block_size * block_size;
        std::memset(buf.data() + n, 0, padded - n);
        tag_blocks(keys, ByteView(buf.data(), padded),
                   std::span<BlockTag>(tags.data() + off / block_size, padded / block_size));
    }
    return tags;
}

} // namespace

Result<HostFolderSeed> HostFolderSeed::index(const fs::path& folder, const fs::path& cache_dir,
                                             const FamilyKeys& keys, Progress* progress) {
    std::error_code ec;
    fs::path root = fs::canonical(folder, ec);
    if (ec || !fs::is_directory(root, ec))
        return fail(Errc::not_found, "seed folder " + folder.string() +
                                         " does not exist or is "
                                         "not a folder");
    HL_TRY(make_dirs(cache_dir));
    std::string key = to_hex(crypto::sha256(as_bytes(root.string()))).substr(0, 32);
    fs::path index_file = cache_dir / (key + ".idx");
    FileTags previous = load_index(index_file, keys.family_id());

    // Walk the folder; regular files only, never following symlinks out of it.
    struct Todo {
        File file;
        std::vector<BlockTag> tags;
        bool reuse = false;
        bool ok = true;
    };
    std::vector<Todo> todo;
    auto options = fs::directory_options::skip_permission_denied;
    for (auto it = fs::recursive_directory_iterator(root, options, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        struct stat st {};
        if (::lstat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0)
            continue;
        File f;
        f.path = fs::relative(it->path(), root, ec).string();
        if (ec || f.path.size() > 4096)
            continue;
        f.size = static_cast<std::uint64_t>(st.st_size);
        f.mtime_ns = ns(st.st_mtim);
        f.ctime_ns = ns(st.st_ctim);
        f.inode = st.st_ino;
        Todo t{f, {}, false, true};
        if (auto old = previous.find(f.path); old != previous.end()) {
            const File& o = old->second.first;
            if (o.size == f.size && o.mtime_ns == f.mtime_ns && o.ctime_ns == f.ctime_ns &&
                o.inode == f.inode) {
                t.tags = std::move(old->second.second);
                t.reuse = true;
            }
        }
        todo.push_back(std::move(t));
    }
    if (ec)
        return fail(Errc::io, "index seed folder " + root.string() + ": " + ec.message());

    std::uint64_t total = 0;
    for (const auto& t : todo)
        total += t.reuse ? 0 : t.file.size;
    std::atomic<std::size_t> next{0};
    std::atomic<std::uint64_t> hashed_bytes{0};
    auto worker = [&] {
        for (std::size_t i = next++; i < todo.size(); i = next++) {
            if (todo[i].reuse)
                continue;
            auto tags = hash_file(root / todo[i].file.path, todo[i].file.size, keys);
            if (!tags) {
                todo[i].ok = false; // unreadable or changing: simply not a seed
                continue;
            }
            todo[i].tags = std::move(*tags);
            std::uint64_t done = hashed_bytes += todo[i].file.size;
            if (progress)
                progress->update("index seed", done, total);
        }
    };
    {
        std::vector<std::jthread> threads;
        for (unsigned i = 0; i < std::max(1u, std::thread::hardware_concurrency()); ++i)
            threads.emplace_back(worker);
    }

    HostFolderSeed seed;
    seed.folder_ = root;
    for (auto& t : todo) {
        if (!t.ok)
            continue;
        t.file.first_tag = seed.tags_.size();
        seed.tags_.insert(seed.tags_.end(), t.tags.begin(), t.tags.end());
        seed.files_.push_back(std::move(t.file));
        seed.files_hashed_ += t.reuse ? 0 : 1;
        seed.bytes_indexed_ += seed.files_.back().size;
    }
    // The index is a cache: failing to save it costs time next run, not correctness.
    (void)save_index(index_file, keys.family_id(), seed.files_, seed.tags_);
    return seed;
}

void HostFolderSeed::add_to(SeedIndex& index, std::uint32_t seed_number) const {
    for (std::uint32_t f = 0; f < files_.size(); ++f) {
        std::uint64_t ntags = (files_[f].size + block_size - 1) / block_size;
        for (std::uint64_t b = 0; b < ntags; ++b)
            index.add(tags_[files_[f].first_tag + b],
                      {seed_number, f, static_cast<std::uint32_t>(b)});
    }
}

Status HostFolderSeed::read_block(const FamilyKeys& keys, OpenFiles& files, std::uint32_t object,
                                  std::uint32_t block, const BlockTag& expected,
                                  MutableByteView out) const {
    const File& f = files_.at(object);
    fs::path path = folder_ / f.path;
    int fd = HL_TRY(files.get(path));
    std::uint64_t offset = std::uint64_t{block} * block_size;
    if (offset >= f.size)
        return fail(Errc::corrupt, path.string() + " shrank since it was indexed");
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(block_size, f.size - offset));
    // A file that shrank reads short here and is refused; one that changed fails the tag.
    HL_TRY(pread_exact(fd, out.first(n), offset, path));
    std::memset(out.data() + n, 0, block_size - n);
    if (keys.block_tag(out) != expected)
        return fail(Errc::corrupt, path.string() + " changed since it was indexed");
    return {};
}

} // namespace heirloom::trim
