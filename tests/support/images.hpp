#pragma once

// Synthetic disks for image-engine tests: file-like content at 4 KiB-aligned places, zero
// stretches and duplicates, written as dynamic VHDs in a chosen block order.

#include "heirloom/common/bytes.hpp"
#include "heirloom/common/file.hpp"
#include "heirloom/trim/keys.hpp"

#include <cstdint>
#include <vector>

namespace heirloom::test {

struct DiskFile {
    std::uint64_t offset = 0; // 4 KiB aligned
    Bytes data;
};

struct SyntheticDisk {
    Bytes content; // the whole virtual disk
    std::vector<DiskFile> files;
};

// A disk of `size` bytes holding `files` pseudo-random files (some compressible, some
// duplicated), the rest zero.
SyntheticDisk make_disk(std::uint64_t size, int files, std::uint64_t seed);

// Rewrites `count` of the disk's files with new content of similar size, in place.
void rewrite_files(SyntheticDisk& disk, int count, std::uint64_t seed);

// Writes content as a dynamic VHD whose blocks are allocated in a shuffled order.
void write_vhd(const fs::path& path, ByteView content, std::uint64_t shuffle_seed);

// Reads a VHD's whole virtual disk.
Bytes read_vhd(const fs::path& path);

// Writes the disk's files into a folder as plain files (a Trim Transfer seed).
void write_files(const SyntheticDisk& disk, const fs::path& folder, int every_nth = 1);

// A keys folder made by generate_keys, loaded with the signing secret.
trim::KeySet make_keys(const fs::path& dir);

} // namespace heirloom::test
