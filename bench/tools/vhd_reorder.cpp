// heirloom-bench-vhd-reorder IN.raw OUT.vhd --seed N [--block-size BYTES]
//
// Writes the raw disk image IN.raw as a dynamic VHD whose data blocks are allocated in a
// pseudo-random order (a seeded permutation of the virtual blocks). The virtual disk is
// identical to IN.raw (`qemu-img compare -f raw IN.raw OUT.vhd` says so); only the physical
// layout of the file differs from what `qemu-img convert -O vpc` produces. All-zero blocks are
// left unallocated. The permutation is our own Fisher-Yates over splitmix64, so the same seed
// gives the same file on every platform and standard library.

#include "heirloom/common/bytes.hpp"
#include "heirloom/common/file.hpp"
#include "heirloom/trim/vhd.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace heirloom;

struct SplitMix64 {
    std::uint64_t state;
    std::uint64_t next() {
        std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    // Uniform in [0, bound) without modulo bias.
    std::uint64_t below(std::uint64_t bound) {
        const std::uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
        std::uint64_t v;
        do
            v = next();
        while (v >= limit);
        return v % bound;
    }
};

int usage() {
    std::fputs("usage: heirloom-bench-vhd-reorder IN.raw OUT.vhd --seed N [--block-size BYTES]\n",
               stderr);
    return 2;
}

bool parse_u64(std::string_view s, std::uint64_t& out) {
    if (s.empty())
        return false;
    char* end = nullptr;
    const std::string str(s);
    out = std::strtoull(str.c_str(), &end, 0);
    return end && *end == '\0';
}

Status reorder(const fs::path& in, const fs::path& out, std::uint64_t seed,
               std::uint32_t block_size) {
    auto fd = HL_TRY(open_read(in));
    const std::uint64_t size = HL_TRY(file_size(fd.get(), in));
    if (size == 0 || size % trim::vhd::sector_size != 0)
        return fail(Errc::invalid_argument,
                    in.string() + ": size " + std::to_string(size) + " is not a multiple of 512");
    auto writer = HL_TRY_CTX(trim::vhd::DynamicWriter::create(out, size, block_size),
                             "create " + out.string());

    const std::uint64_t blocks = (size + block_size - 1) / block_size;
    std::vector<std::uint64_t> order(blocks);
    std::iota(order.begin(), order.end(), std::uint64_t{0});
    SplitMix64 rng{seed};
    for (std::uint64_t i = blocks; i > 1; --i)
        std::swap(order[i - 1], order[rng.below(i)]);

    // The input is read in the shuffled order: tell the kernel not to waste read-ahead.
    ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_RANDOM);
    Bytes buf(block_size);
    std::uint64_t written = 0;
    for (const std::uint64_t b : order) {
        const std::uint64_t offset = b * block_size;
        const std::uint64_t len = std::min<std::uint64_t>(block_size, size - offset);
        MutableByteView view(buf.data(), len);
        HL_TRY(pread_exact(fd.get(), view, offset, in));
        if (all_zero(view))
            continue;
        HL_TRY_CTX(writer.write(offset, view), "write block " + std::to_string(b));
        ++written;
    }
    HL_TRY_CTX(writer.finish(), "finish " + out.string());
    std::fprintf(stderr,
                 "heirloom-bench-vhd-reorder: %llu of %llu blocks allocated in shuffled order "
                 "(seed %llu)\n",
                 static_cast<unsigned long long>(written), static_cast<unsigned long long>(blocks),
                 static_cast<unsigned long long>(seed));
    return {};
}

} // namespace

int main(int argc, char** argv) {
    std::vector<std::string_view> pos;
    std::uint64_t seed = 1;
    std::uint64_t block_size = 2u << 20;
    bool have_seed = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if ((arg == "--seed" || arg == "--block-size") && i + 1 < argc) {
            std::uint64_t& dst = arg == "--seed" ? seed : block_size;
            if (!parse_u64(argv[++i], dst))
                return usage();
            have_seed = have_seed || arg == "--seed";
        } else if (arg == "-h" || arg == "--help") {
            usage();
            return 0;
        } else if (arg.starts_with("--")) {
            return usage();
        } else {
            pos.push_back(arg);
        }
    }
    if (pos.size() != 2 || !have_seed || block_size < trim::vhd::sector_size ||
        block_size > (256u << 20) || (block_size & (block_size - 1)) != 0)
        return usage();
    const auto start = std::chrono::steady_clock::now();
    if (auto ok = reorder(fs::path(pos[0]), fs::path(pos[1]), seed,
                          static_cast<std::uint32_t>(block_size));
        !ok) {
        std::fprintf(stderr, "heirloom-bench-vhd-reorder: %s\n", ok.error().message.c_str());
        return 1;
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "heirloom-bench-vhd-reorder: done in %.1f s\n", secs);
    return 0;
}
