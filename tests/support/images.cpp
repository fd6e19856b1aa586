#include "support/images.hpp"

#include "heirloom/trim/vhd.hpp"
#include "support/support.hpp"

#include <algorithm>
#include <numeric>
#include <random>
#include <stdexcept>

namespace heirloom::test {

namespace {
Bytes file_content(std::size_t size, std::mt19937_64& rng) {
    Bytes data = pseudo_random(size, rng());
    if (rng() % 2 == 0) {
        // Text-like: compressible, as many real files are.
        for (auto& b : data)
            b = static_cast<std::uint8_t>('a' + b % 8);
    }
    return data;
}
} // namespace

SyntheticDisk make_disk(std::uint64_t size, int files, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    SyntheticDisk disk;
    disk.content.assign(size, 0);
    std::uint64_t cursor = 64 * 1024;
    for (int i = 0; i < files; ++i) {
        std::size_t len = 1000 + rng() % (300 * 1024);
        cursor += (rng() % 8) * 4096; // free space between files
        cursor = (cursor + 4095) / 4096 * 4096;
        if (cursor + len >= size)
            break;
        DiskFile f{cursor, {}};
        if (i > 3 && rng() % 10 == 0)
            f.data = disk.files[rng() % disk.files.size()].data; // a duplicate file
        else
            f.data = file_content(len, rng);
        std::copy(f.data.begin(), f.data.end(), disk.content.begin() + static_cast<long>(cursor));
        cursor += f.data.size();
        disk.files.push_back(std::move(f));
    }
    return disk;
}

void rewrite_files(SyntheticDisk& disk, int count, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    for (int i = 0; i < count && !disk.files.empty(); ++i) {
        DiskFile& f = disk.files[rng() % disk.files.size()];
        Bytes fresh = file_content(f.data.size(), rng);
        std::copy(fresh.begin(), fresh.end(), disk.content.begin() + static_cast<long>(f.offset));
        f.data = std::move(fresh);
    }
}

void write_vhd(const fs::path& path, ByteView content, std::uint64_t shuffle_seed) {
    auto writer = trim::vhd::DynamicWriter::create(path, content.size());
    if (!writer)
        throw std::runtime_error(writer.error().message);
    constexpr std::uint64_t piece = 2u << 20;
    std::vector<std::uint64_t> order((content.size() + piece - 1) / piece);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), std::mt19937_64(shuffle_seed));
    for (std::uint64_t p : order) {
        std::uint64_t off = p * piece;
        std::uint64_t len = std::min<std::uint64_t>(piece, content.size() - off);
        if (!writer->write(off, content.subspan(off, len)))
            throw std::runtime_error("VHD write failed");
    }
    if (!writer->finish())
        throw std::runtime_error("VHD finish failed");
}

Bytes read_vhd(const fs::path& path) {
    auto image = trim::vhd::Image::open(path);
    if (!image)
        throw std::runtime_error(image.error().message);
    Bytes out(image->virtual_size());
    if (!image->read(0, out))
        throw std::runtime_error("VHD read failed");
    return out;
}

void write_files(const SyntheticDisk& disk, const fs::path& folder, int every_nth) {
    for (std::size_t i = 0; i < disk.files.size(); ++i)
        if (i % static_cast<std::size_t>(every_nth) == 0)
            write_file(folder / ("dir" + std::to_string(i % 7)) / ("file" + std::to_string(i)),
                       disk.files[i].data);
}

trim::KeySet make_keys(const fs::path& dir) {
    if (!trim::generate_keys(dir))
        throw std::runtime_error("generate_keys failed");
    auto keys = trim::load_keys(dir, trim::NeedSigningKey::yes);
    if (!keys)
        throw std::runtime_error(keys.error().message);
    return std::move(*keys);
}

} // namespace heirloom::test
