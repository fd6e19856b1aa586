// Fuzzes the VHD reader and writer. The first input byte picks a mode:
//   0: the rest is a whole file, parsed directly and opened as an image;
//   1: the rest patches a valid dynamic VHD (so the fuzzer reaches the BAT and block checks
//      without having to discover checksums), optionally re-sealing the checksums;
//   2: the rest drives DynamicWriter, and the result must read back as written.
// Anything that parses must encode back to the same bytes, and nothing may crash.

#include "heirloom/trim/vhd.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

using namespace heirloom;
using namespace heirloom::trim;

namespace {

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "fuzz_vhd: invariant failed: %s\n", what);
        std::abort();
    }
}

// One in-memory file reused for every input, reachable by path through /proc.
struct MemFile {
    int fd = -1;
    std::string path;
    MemFile() {
        fd = ::memfd_create("fuzz_vhd", MFD_CLOEXEC);
        check(fd >= 0, "memfd_create");
        path = "/proc/self/fd/" + std::to_string(fd);
    }
    void set(ByteView data) const {
        check(::ftruncate(fd, 0) == 0, "ftruncate");
        std::size_t done = 0;
        while (done < data.size()) {
            ssize_t n =
                ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(done));
            check(n > 0, "pwrite");
            done += static_cast<std::size_t>(n);
        }
    }
};

MemFile& mem_file() {
    static MemFile file;
    return file;
}

void seal(std::uint8_t* structure, std::size_t size, std::size_t checksum_offset) {
    std::memset(structure + checksum_offset, 0, 4);
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i < size; ++i)
        sum += structure[i];
    store_be32(structure + checksum_offset, ~sum);
}

// Checks that whatever parses also encodes back to exactly the same bytes: every field is
// either kept or required to be a fixed value, so nothing may be lost.
void parse_structures(ByteView file) {
    if (file.size() < vhd::footer_size)
        return;
    auto footer = vhd::parse_footer(file.last(vhd::footer_size), file.size());
    if (!footer)
        return;
    check(vhd::encode_footer(*footer) == Bytes(file.end() - 512, file.end()), "footer round trip");
    if (footer->disk_type != vhd::DiskType::dynamic)
        return;
    check(footer->data_offset + vhd::dynamic_header_size <= file.size(), "header inside file");
    auto header = vhd::parse_dynamic_header(
        file.subspan(footer->data_offset, vhd::dynamic_header_size), *footer, file.size());
    if (!header)
        return;
    check(vhd::encode_dynamic_header(*header) ==
              Bytes(file.begin() + static_cast<std::ptrdiff_t>(footer->data_offset),
                    file.begin() + static_cast<std::ptrdiff_t>(footer->data_offset + 1024)),
          "header round trip");
}

// Opens the file as an image and reads a bounded sample of it.
void open_and_read(ByteView file) {
    mem_file().set(file);
    auto image = vhd::Image::open(mem_file().path);
    if (!image)
        return;
    const std::uint64_t size = image->virtual_size();
    check(size <= vhd::max_virtual_size && size % 512 == 0, "virtual size");
    static Bytes buf(256 << 10);
    // The start, the end, and a few places in between; virtual disks may be 2 TiB.
    const std::uint64_t spots[] = {0, size / 3, size / 2,
                                   size > buf.size() ? size - buf.size() : 0};
    for (std::uint64_t at : spots) {
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), size - at));
        MutableByteView out(buf.data(), n);
        auto ok = image->read(at, out);
        if (ok && !image->may_hold_data(at, n))
            check(all_zero(out), "unallocated range reads as zeros");
    }
    check(!image->read(size, MutableByteView(buf.data(), 1)), "read past the end fails");
    (void)image->allocated_blocks();
}

// A valid dynamic VHD: 4 KiB blocks, 8 of them, blocks 5, 1 and 6 allocated in that order.
Bytes base_image() {
    constexpr std::uint32_t block = 4096;
    constexpr std::uint32_t blocks = 8;
    vhd::Footer footer;
    footer.data_offset = 512;
    footer.current_size = footer.original_size = block * blocks;
    footer.geometry = vhd::geometry_for(footer.current_size);
    vhd::DynamicHeader header;
    header.table_offset = 1536;
    header.max_table_entries = blocks;
    header.block_size = block;
    Bytes file = vhd::encode_footer(footer);
    Bytes h = vhd::encode_dynamic_header(header);
    file.insert(file.end(), h.begin(), h.end());
    Bytes bat(512, 0xFF);
    const std::uint32_t order[] = {5, 1, 6};
    std::uint32_t sector = 4;
    for (std::uint32_t b : order) {
        store_be32(bat.data() + 4 * b, sector);
        sector += 1 + block / 512;
    }
    file.insert(file.end(), bat.begin(), bat.end());
    for (std::uint32_t i = 0; i < 3; ++i) {
        file.insert(file.end(), 512, 0xFF);
        for (std::uint32_t j = 0; j < block; ++j)
            file.push_back(static_cast<std::uint8_t>(i * 31 + j));
    }
    Bytes tail = vhd::encode_footer(footer);
    file.insert(file.end(), tail.begin(), tail.end());
    return file;
}

void patch_mode(const std::uint8_t* data, std::size_t size) {
    static const Bytes base = base_image();
    Bytes file = base;
    if (size == 0)
        return;
    std::uint8_t flags = data[0];
    ++data;
    --size;
    // Patches are (offset: 2 bytes, value: 1 byte); an offset past the end truncates there.
    for (; size >= 3; data += 3, size -= 3) {
        std::size_t at = (std::size_t{data[0]} << 8) | data[1];
        if (at < file.size())
            file[at] = data[2];
        else if (flags & 4)
            file.resize(std::max<std::size_t>(at % (file.size() + 1), 1));
    }
    if (file.size() >= 512 && (flags & 1)) {
        seal(file.data() + file.size() - 512, 512, 64);
        if (flags & 8)
            std::copy(file.end() - 512, file.end(), file.begin());
    }
    if (file.size() >= 1536 && (flags & 2))
        seal(file.data() + 512, 1024, 36);
    parse_structures(file);
    open_and_read(file);
}

void writer_mode(const std::uint8_t* data, std::size_t size) {
    if (size < 3)
        return;
    const std::uint32_t block_size = 512u << (data[0] % 8);
    const std::uint64_t virtual_size = (std::uint64_t{data[1]} + 1) * 4 * 512;
    data += 2;
    size -= 2;
    MemFile& file = mem_file();
    auto writer = vhd::DynamicWriter::create(file.path, virtual_size, block_size);
    check(bool(writer), "writer create");
    Bytes expected(virtual_size, 0);
    Bytes piece;
    // Each write is (sector: 1 byte, sectors: 1 byte, fill: 1 byte); fill 0 writes zeros.
    for (; size >= 3; data += 3, size -= 3) {
        std::uint64_t offset = std::uint64_t{data[0]} * 512;
        std::uint64_t length = (std::uint64_t{data[1]} % 16) * 512;
        piece.assign(length, data[2]);
        for (std::size_t i = 0; data[2] != 0 && i < piece.size(); i += 97)
            piece[i] = static_cast<std::uint8_t>(piece[i] + i);
        auto ok = writer->write(offset, piece);
        check(bool(ok) == (offset + length <= virtual_size), "write bounds");
        if (ok)
            std::copy(piece.begin(), piece.end(),
                      expected.begin() + static_cast<std::ptrdiff_t>(offset));
    }
    check(bool(writer->finish()), "writer finish");
    auto image = vhd::Image::open(file.path);
    check(bool(image), "writer output opens");
    Bytes back(virtual_size);
    check(bool(image->read(0, back)), "writer output reads");
    check(back == expected, "writer output reads back as written");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0)
        return 0;
    switch (data[0] % 3) {
    case 0: {
        ByteView file(data + 1, size - 1);
        parse_structures(file);
        if (file.size() >= 1024) {
            vhd::Footer footer;
            footer.current_size = 1 << 20;
            (void)vhd::parse_dynamic_header(file.first(1024), footer, file.size());
        }
        open_and_read(file);
        break;
    }
    case 1:
        patch_mode(data + 1, size - 1);
        break;
    default:
        writer_mode(data + 1, size - 1);
        break;
    }
    return 0;
}
