#include "heirloom/trim/vhd.hpp"
#include "support/skip.hpp"
#include "support/support.hpp"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <unistd.h>

using namespace heirloom;
using namespace heirloom::trim;
namespace test = heirloom::test;

namespace {

// Field offsets written out independently of the implementation, from the specification.
constexpr std::size_t foot_features = 8;
constexpr std::size_t foot_version = 12;
constexpr std::size_t foot_data_offset = 16;
constexpr std::size_t foot_timestamp = 24;
constexpr std::size_t foot_creator_app = 28;
constexpr std::size_t foot_creator_version = 32;
constexpr std::size_t foot_host_os = 36;
constexpr std::size_t foot_original_size = 40;
constexpr std::size_t foot_current_size = 48;
constexpr std::size_t foot_cylinders = 56;
constexpr std::size_t foot_heads = 58;
constexpr std::size_t foot_sectors = 59;
constexpr std::size_t foot_disk_type = 60;
constexpr std::size_t foot_checksum = 64;
constexpr std::size_t foot_unique_id = 68;
constexpr std::size_t foot_saved_state = 84;
constexpr std::size_t foot_reserved = 85;

constexpr std::size_t head_data_offset = 8;
constexpr std::size_t head_table_offset = 16;
constexpr std::size_t head_version = 24;
constexpr std::size_t head_max_entries = 28;
constexpr std::size_t head_block_size = 32;
constexpr std::size_t head_checksum = 36;
constexpr std::size_t head_parent_id = 40;
constexpr std::size_t head_parent_timestamp = 56;
constexpr std::size_t head_reserved1 = 60;
constexpr std::size_t head_parent_name = 64;
constexpr std::size_t head_locators = 576;
constexpr std::size_t head_reserved2 = 768;

Bytes slurp(const fs::path& path) {
    auto data = read_file(path, 1ull << 30);
    REQUIRE(data);
    return *data;
}

// Describes the first difference between two buffers, or nothing when they are equal, so a
// failing check prints one line rather than megabytes of bytes.
std::string difference(const Bytes& got, const Bytes& want) {
    if (got.size() != want.size())
        return "sizes differ: got " + std::to_string(got.size()) + ", want " +
               std::to_string(want.size());
    auto [g, w] = std::mismatch(got.begin(), got.end(), want.begin());
    if (g == got.end())
        return {};
    return "first difference at offset " + std::to_string(g - got.begin()) + ": got " +
           std::to_string(*g) + ", want " + std::to_string(*w);
}

// Recomputes the one's-complement byte-sum checksum of a footer or header in place.
void fix_checksum(std::uint8_t* structure, std::size_t size, std::size_t checksum_offset) {
    std::memset(structure + checksum_offset, 0, 4);
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i < size; ++i)
        sum += structure[i];
    store_be32(structure + checksum_offset, ~sum);
}

std::string error_of(const fs::path& path) {
    auto image = vhd::Image::open(path);
    if (image)
        return "(opened successfully)";
    return image.error().message;
}

// Writes a dynamic VHD holding `content` (whose size must be a multiple of 512), writing the
// blocks in the given order; all-zero blocks are offered too and must allocate nothing.
void write_vhd(const fs::path& path, const Bytes& content, std::uint32_t block_size,
               const std::vector<std::uint64_t>& order) {
    auto writer = vhd::DynamicWriter::create(path, content.size(), block_size);
    REQUIRE(writer);
    for (std::uint64_t block : order) {
        std::uint64_t offset = block * block_size;
        std::uint64_t n = std::min<std::uint64_t>(block_size, content.size() - offset);
        REQUIRE(writer->write(offset, ByteView(content).subspan(offset, n)));
    }
    REQUIRE(writer->finish());
}

// Reads the whole virtual disk in pieces of `piece` bytes.
Bytes read_all(const vhd::Image& image, std::size_t piece) {
    Bytes out(image.virtual_size());
    for (std::uint64_t offset = 0; offset < out.size(); offset += piece) {
        std::size_t n =
            static_cast<std::size_t>(std::min<std::uint64_t>(piece, out.size() - offset));
        auto ok = image.read(offset, MutableByteView(out).subspan(offset, n));
        REQUIRE(ok);
    }
    return out;
}

// Content with random, zero and partly-zero blocks, so sparse and dense paths both run.
Bytes mixed_content(std::uint64_t size, std::uint32_t block_size, std::uint64_t seed) {
    Bytes content = test::pseudo_random(size, seed);
    for (std::uint64_t block = 0; block * block_size < size; ++block) {
        std::uint64_t offset = block * block_size;
        std::uint64_t n = std::min<std::uint64_t>(block_size, size - offset);
        switch (block % 4) {
        case 1: // entirely zero: must stay unallocated
            std::memset(content.data() + offset, 0, n);
            break;
        case 2: // zero except the last sector
            if (n > 512)
                std::memset(content.data() + offset, 0, n - 512);
            break;
        default:
            break;
        }
    }
    return content;
}

std::uint64_t qemu_virtual_size(const fs::path& path) {
    // qemu does not probe fixed VHDs (they start with disk data), so name the format.
    auto r = test::run({"qemu-img", "info", "-f", "vpc", "--output=json", path.string()});
    REQUIRE(r.exit_code == 0);
    return nlohmann::json::parse(r.out).at("virtual-size").get<std::uint64_t>();
}

// qemu sizes VHDs from unknown creators by their CHS geometry; this names the image so that
// qemu uses the footer's current size, as Hyper-V does.
std::string qemu_current_size_spec(const fs::path& path) {
    nlohmann::json spec = {{"driver", "vpc"},
                           {"force_size_calc", "current_size"},
                           {"file", {{"driver", "file"}, {"filename", path.string()}}}};
    return "json:" + spec.dump();
}

// A fixed VHD built by hand: the data followed by a footer.
void write_fixed(const fs::path& path, const Bytes& content) {
    vhd::Footer footer;
    footer.disk_type = vhd::DiskType::fixed;
    footer.data_offset = ~std::uint64_t{0};
    footer.current_size = footer.original_size = content.size();
    footer.geometry = vhd::geometry_for(content.size());
    footer.unique_id[0] = 7;
    Bytes file = content;
    Bytes tail = vhd::encode_footer(footer);
    file.insert(file.end(), tail.begin(), tail.end());
    test::write_file(path, file);
}

} // namespace

TEST_CASE("VHD geometry follows the specification's CHS algorithm", "[vhd]") {
    // Small disks use 17 sectors per track and at least 4 heads.
    auto g = vhd::geometry_for(10ull << 20);
    CHECK(g.sectors_per_track == 17);
    CHECK(g.heads == 4);
    CHECK(g.cylinders == 20480 / 17 / 4);
    // The capped geometry for anything from about 127 GiB up.
    g = vhd::geometry_for(1ull << 40);
    CHECK(g.cylinders == 65535);
    CHECK(g.heads == 16);
    CHECK(g.sectors_per_track == 255);
    CHECK(vhd::geometry_for(0).cylinders == 0);
    // Exactly 4096 cylinder-heads at 17 sectors per track no longer fit 4 heads of 1024
    // cylinders, so the algorithm moves on to 31 sectors and 16 heads.
    g = vhd::geometry_for(4096ull * 17 * 512);
    CHECK(g.sectors_per_track == 31);
    CHECK(g.heads == 16);
    CHECK(g.cylinders == 4096 * 17 / 31 / 16);
    g = vhd::geometry_for(4095ull * 17 * 512);
    CHECK(g.sectors_per_track == 17);
    CHECK(g.heads == 4);

    if (!test::have_program("qemu-img"))
        HL_SKIP("qemu-img is not installed (installer/install-deps.sh installs qemu-utils)");
    // qemu-img computes geometry with the same appendix; it rounds the size up to a whole
    // number of cylinders, so geometry_for that size must give qemu's geometry back.
    test::TempDir dir;
    for (std::uint64_t mib : {1, 3, 100, 511, 4000, 70000, 200000}) {
        INFO("size " << mib << " MiB");
        fs::path path = dir / ("g" + std::to_string(mib) + ".vhd");
        auto r = test::run({"qemu-img", "create", "-q", "-f", "vpc", "-o", "subformat=dynamic",
                            path.string(), std::to_string(mib) + "M"});
        REQUIRE(r.exit_code == 0);
        auto image = vhd::Image::open(path);
        REQUIRE(image);
        auto expected = vhd::geometry_for(image->virtual_size());
        CHECK(image->footer().geometry.cylinders == expected.cylinders);
        CHECK(image->footer().geometry.heads == expected.heads);
        CHECK(image->footer().geometry.sectors_per_track == expected.sectors_per_track);
        CHECK(image->virtual_size() >= (mib << 20));
        CHECK(image->allocated_blocks() == 0);
    }
}

TEST_CASE("VHD footer and dynamic header encode and parse back", "[vhd]") {
    vhd::Footer footer;
    footer.data_offset = 512;
    footer.timestamp = 123456789;
    footer.current_size = footer.original_size = 40ull << 20;
    footer.geometry = vhd::geometry_for(footer.current_size);
    footer.unique_id = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    Bytes bytes = vhd::encode_footer(footer);
    REQUIRE(bytes.size() == 512);
    CHECK(std::memcmp(bytes.data(), "conectix", 8) == 0);
    CHECK(load_be32(bytes.data() + foot_version) == 0x00010000);
    CHECK(load_be64(bytes.data() + foot_current_size) == 40ull << 20);
    CHECK(load_be32(bytes.data() + foot_disk_type) == 3);
    std::uint32_t stored = load_be32(bytes.data() + foot_checksum);
    fix_checksum(bytes.data(), bytes.size(), foot_checksum);
    CHECK(load_be32(bytes.data() + foot_checksum) == stored);

    const std::uint64_t file_size = 512 + 1024 + 512 + 20 * (512 + (2u << 20)) + 512;
    auto parsed = vhd::parse_footer(bytes, file_size);
    REQUIRE(parsed);
    CHECK(parsed->timestamp == 123456789);
    CHECK(parsed->current_size == 40ull << 20);
    CHECK(parsed->unique_id == footer.unique_id);
    CHECK(parsed->creator_application == footer.creator_application);
    CHECK(difference(vhd::encode_footer(*parsed), bytes) == "");

    vhd::DynamicHeader header;
    header.table_offset = 1536;
    header.max_table_entries = 20;
    Bytes hbytes = vhd::encode_dynamic_header(header);
    REQUIRE(hbytes.size() == 1024);
    CHECK(std::memcmp(hbytes.data(), "cxsparse", 8) == 0);
    CHECK(load_be64(hbytes.data() + head_data_offset) == ~std::uint64_t{0});
    auto hparsed = vhd::parse_dynamic_header(hbytes, *parsed, file_size);
    REQUIRE(hparsed);
    CHECK(hparsed->table_offset == 1536);
    CHECK(hparsed->max_table_entries == 20);
    CHECK(hparsed->block_size == 2u << 20);
    CHECK(difference(vhd::encode_dynamic_header(*hparsed), hbytes) == "");

    CHECK(!vhd::parse_footer(ByteView(bytes).first(511), file_size));
    CHECK(!vhd::parse_dynamic_header(ByteView(hbytes).first(1000), *parsed, file_size));
}

TEST_CASE("VHD writer output reads back: random block order, sparse areas, partial block",
          "[vhd]") {
    test::TempDir dir;
    const std::uint32_t block_size = GENERATE(4096u, 64u << 10, 2u << 20);
    INFO("block size " << block_size);
    // 14.5 blocks plus 3 sectors: the last block is partial and ends in data.
    const std::uint64_t size = 14ull * block_size + block_size / 2 + 3 * 512;
    Bytes content = mixed_content(size, block_size, block_size);
    const std::uint64_t blocks = (size + block_size - 1) / block_size;

    std::vector<std::uint64_t> order(blocks);
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(42);
    std::shuffle(order.begin(), order.end(), rng);
    // Leave two data blocks unwritten: they must read as zeros.
    std::vector<std::uint64_t> skipped = {order[0], order[1]};
    order.erase(order.begin(), order.begin() + 2);
    Bytes expected = content;
    for (std::uint64_t block : skipped) {
        std::uint64_t n = std::min<std::uint64_t>(block_size, size - block * block_size);
        std::memset(expected.data() + block * block_size, 0, n);
    }

    fs::path path = dir / "disk.vhd";
    write_vhd(path, content, block_size, order);

    auto image = vhd::Image::open(path);
    REQUIRE(image);
    CHECK(image->virtual_size() == size);
    CHECK(image->footer().disk_type == vhd::DiskType::dynamic);
    REQUIRE(image->dynamic_header());
    CHECK(image->dynamic_header()->block_size == block_size);
    CHECK(image->dynamic_header()->max_table_entries == blocks);

    std::uint64_t nonzero_blocks = 0;
    for (std::uint64_t block = 0; block < blocks; ++block) {
        std::uint64_t offset = block * block_size;
        std::uint64_t n = std::min<std::uint64_t>(block_size, size - offset);
        bool data = !all_zero(ByteView(expected).subspan(offset, n));
        nonzero_blocks += data;
        INFO("block " << block);
        CHECK(image->may_hold_data(offset, n) == data);
    }
    CHECK(image->allocated_blocks() == nonzero_blocks);
    CHECK(image->may_hold_data(0, size));
    CHECK(!image->may_hold_data(size, 512));
    CHECK(!image->may_hold_data(0, 0));

    // Several read sizes, including ones that straddle block boundaries.
    for (std::size_t piece : {std::size_t{512}, std::size_t{block_size},
                              std::size_t{3 * 4096 + 512}, std::size_t{256} << 10}) {
        INFO("read piece " << piece);
        CHECK(difference(read_all(*image, piece), expected) == "");
    }
    Bytes tail(1024);
    REQUIRE(image->read(size - 1024, tail));
    CHECK(std::equal(tail.begin(), tail.end(), expected.end() - 1024));
    Bytes nothing;
    CHECK(image->read(size, nothing));
    Bytes over(1024);
    auto past = image->read(size - 512, over);
    REQUIRE(!past);
    CHECK(past.error().code == Errc::invalid_argument);

    // Blocks sit in the file in the order they were first written with data.
    Bytes file = slurp(path);
    std::uint64_t table = load_be64(file.data() + 512 + head_table_offset);
    std::uint32_t previous = 0;
    for (std::uint64_t block : order) {
        std::uint32_t entry = load_be32(file.data() + table + 4 * block);
        std::uint64_t offset = block * block_size;
        std::uint64_t n = std::min<std::uint64_t>(block_size, size - offset);
        if (all_zero(ByteView(content).subspan(offset, n))) {
            CHECK(entry == vhd::unallocated);
            continue;
        }
        CHECK(entry > previous);
        previous = entry;
        // The sector bitmap of an allocated block is all ones.
        std::uint64_t bitmap = ((block_size / 512 + 7) / 8 + 511) / 512 * 512;
        CHECK(std::all_of(file.begin() + entry * 512ull, file.begin() + entry * 512ull + bitmap,
                          [](std::uint8_t b) { return b == 0xFF; }));
    }
    // The file ends right after the last block, with the footer repeated.
    CHECK(file.size() ==
          previous * 512ull + ((block_size / 512 + 7) / 8 + 511) / 512 * 512 + block_size + 512);
    CHECK(std::equal(file.begin(), file.begin() + 512, file.end() - 512));
}

TEST_CASE("VHD writer handles rewrites, small writes and writes across blocks", "[vhd]") {
    test::TempDir dir;
    const std::uint32_t block_size = 8192;
    const std::uint64_t size = 10 * 8192;
    fs::path path = dir / "disk.vhd";
    auto writer = vhd::DynamicWriter::create(path, size, block_size);
    REQUIRE(writer);
    CHECK(writer->virtual_size() == size);
    Bytes expected(size, 0);
    auto put = [&](std::uint64_t offset, const Bytes& data) {
        REQUIRE(writer->write(offset, data));
        std::copy(data.begin(), data.end(), expected.begin() + static_cast<std::ptrdiff_t>(offset));
    };
    put(8192 + 1024, test::pseudo_random(512, 1));      // one sector inside block 1
    put(3 * 8192 - 1024, test::pseudo_random(4096, 2)); // spans blocks 2 and 3
    put(8192 + 1024, Bytes(512, 0));                    // zero over allocated data is written
    put(9 * 8192, Bytes(8192, 0));                      // zero into unallocated: nothing
    put(0, test::pseudo_random(5 * 8192, 3));           // five blocks at once
    put(4 * 8192, test::pseudo_random(8192, 4));        // rewrite a whole block

    CHECK(!writer->write(100, Bytes(512, 1)));
    CHECK(!writer->write(0, Bytes(100, 1)));
    CHECK(!writer->write(size - 512, Bytes(1024, 1)));
    CHECK(!writer->write(size + 512, Bytes(512, 1)));
    REQUIRE(writer->finish());
    CHECK(!writer->write(0, Bytes(512, 1)));
    CHECK(!writer->finish());

    auto image = vhd::Image::open(path);
    REQUIRE(image);
    CHECK(image->allocated_blocks() == 5);
    CHECK(difference(read_all(*image, 4096), expected) == "");
    CHECK(!image->may_hold_data(9 * 8192, 8192));
}

TEST_CASE("VHD writer refuses bad parameters", "[vhd]") {
    test::TempDir dir;
    CHECK(!vhd::DynamicWriter::create(dir / "a.vhd", 0));
    CHECK(!vhd::DynamicWriter::create(dir / "a.vhd", 1000));
    CHECK(!vhd::DynamicWriter::create(dir / "a.vhd", vhd::max_virtual_size + 512));
    CHECK(!vhd::DynamicWriter::create(dir / "a.vhd", 1 << 20, 3000));
    CHECK(!vhd::DynamicWriter::create(dir / "a.vhd", 1 << 20, 256));
    CHECK(!vhd::DynamicWriter::create(dir / "missing" / "a.vhd", 1 << 20));
    // The largest disk the format allows is accepted and stays sparse.
    auto big = vhd::DynamicWriter::create(dir / "big.vhd", vhd::max_virtual_size);
    REQUIRE(big);
    REQUIRE(big->write(vhd::max_virtual_size - 4096, test::pseudo_random(4096, 9)));
    REQUIRE(big->finish());
    auto image = vhd::Image::open(dir / "big.vhd");
    REQUIRE(image);
    CHECK(image->virtual_size() == vhd::max_virtual_size);
    CHECK(image->allocated_blocks() == 1);
    Bytes tail(4096);
    REQUIRE(image->read(vhd::max_virtual_size - 4096, tail));
    CHECK(difference(tail, test::pseudo_random(4096, 9)) == "");
}

TEST_CASE("VHD reads are safe from many threads", "[vhd]") {
    test::TempDir dir;
    const std::uint32_t block_size = 64 << 10;
    const std::uint64_t size = 64ull * block_size;
    Bytes content = mixed_content(size, block_size, 77);
    std::vector<std::uint64_t> order(64);
    std::iota(order.rbegin(), order.rend(), 0);
    write_vhd(dir / "disk.vhd", content, block_size, order);
    auto image = vhd::Image::open(dir / "disk.vhd");
    REQUIRE(image);
    std::atomic<int> mismatches{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            Bytes buf(20000 / 512 * 512);
            for (std::uint64_t offset = static_cast<std::uint64_t>(t) * 512;
                 offset + buf.size() <= size; offset += 7 * 4096) {
                if (!image->read(offset, buf) ||
                    !std::equal(buf.begin(), buf.end(), content.begin() + offset))
                    ++mismatches;
            }
        });
    for (auto& thread : threads)
        thread.join();
    CHECK(mismatches == 0);
}

TEST_CASE("VHD fixed disks read as stored", "[vhd]") {
    test::TempDir dir;
    Bytes content = test::pseudo_random(3 << 20, 5);
    write_fixed(dir / "fixed.vhd", content);
    auto image = vhd::Image::open(dir / "fixed.vhd");
    REQUIRE(image);
    CHECK(image->footer().disk_type == vhd::DiskType::fixed);
    CHECK(!image->dynamic_header());
    CHECK(image->virtual_size() == content.size());
    CHECK(image->may_hold_data(0, 512));
    CHECK(difference(read_all(*image, 100 * 512), content) == "");
}

TEST_CASE("VHD reader reads images qemu-img writes", "[vhd]") {
    if (!test::have_program("qemu-img"))
        HL_SKIP("qemu-img is not installed (installer/install-deps.sh installs qemu-utils)");
    test::TempDir dir;
    const std::string subformat = GENERATE(std::string("dynamic"), std::string("fixed"));
    INFO("subformat " << subformat);

    // Random data with zero holes, some of them whole 2 MiB blocks (qemu leaves those
    // unallocated), and a size that is no multiple of the block size.
    const std::uint64_t size = (9ull << 20) + 3 * 512;
    Bytes raw = mixed_content(size, 2u << 20, 11);
    std::memset(raw.data() + (4 << 20) + 4096, 0, 100000);
    test::write_file(dir / "in.raw", raw);
    fs::path vhd_path = dir / "out.vhd";
    auto r = test::run({"qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o",
                        "subformat=" + subformat, (dir / "in.raw").string(), vhd_path.string()});
    REQUIRE(r.exit_code == 0);

    auto image = vhd::Image::open(vhd_path);
    REQUIRE(image);
    // qemu rounds the size up to whole CHS cylinders; the extra reads as zeros.
    CHECK(image->virtual_size() == qemu_virtual_size(vhd_path));
    REQUIRE(image->virtual_size() >= size);
    Bytes expected = raw;
    expected.resize(image->virtual_size(), 0);
    CHECK(difference(read_all(*image, 256 << 10), expected) == "");
    if (subformat == "dynamic") {
        CHECK(image->footer().disk_type == vhd::DiskType::dynamic);
        // Block 1 is all zeros, so qemu leaves it unallocated; blocks 0, 2, 3 and 4 hold data.
        CHECK(image->allocated_blocks() == 4);
        CHECK(!image->may_hold_data(2u << 20, 2u << 20));
        CHECK(image->may_hold_data(2u << 20, (2u << 20) + 512));
    } else {
        CHECK(image->footer().disk_type == vhd::DiskType::fixed);
    }

    // An empty disk straight from qemu-img create.
    fs::path empty = dir / "empty.vhd";
    r = test::run({"qemu-img", "create", "-q", "-f", "vpc", "-o", "subformat=" + subformat,
                   empty.string(), "30M"});
    REQUIRE(r.exit_code == 0);
    auto blank = vhd::Image::open(empty);
    REQUIRE(blank);
    CHECK(blank->virtual_size() == qemu_virtual_size(empty));
    Bytes all = read_all(*blank, 1 << 20);
    CHECK(all_zero(all));
}

TEST_CASE("VHD reader reads a dynamic disk qemu-io wrote into", "[vhd]") {
    if (!test::have_program("qemu-img") || !test::have_program("qemu-io"))
        HL_SKIP("qemu-img or qemu-io is not installed (installer/install-deps.sh installs "
                "qemu-utils)");
    test::TempDir dir;
    fs::path path = dir / "d.vhd";
    REQUIRE(test::run({"qemu-img", "create", "-q", "-f", "vpc", "-o", "subformat=dynamic",
                       path.string(), "20M"})
                .exit_code == 0);
    // Writes land in blocks 7, 1 and 2, then 3, so the file order is not disk order.
    auto r =
        test::run({"qemu-io", "-f", "vpc", "-c", "write -P 0xab 14680064 65536", "-c",
                   "write -P 0xcd 4193792 1024", "-c", "write -P 0x11 6291456 512", path.string()});
    REQUIRE(r.exit_code == 0);
    auto image = vhd::Image::open(path);
    REQUIRE(image);
    CHECK(image->allocated_blocks() == 4); // the 0xcd write straddles blocks 1 and 2
    CHECK(!image->may_hold_data(0, 2u << 20));
    Bytes expected(image->virtual_size(), 0);
    std::memset(expected.data() + 14680064, 0xab, 65536);
    std::memset(expected.data() + 4193792, 0xcd, 1024);
    std::memset(expected.data() + 6291456, 0x11, 512);
    CHECK(difference(read_all(*image, 256 << 10), expected) == "");
}

TEST_CASE("qemu-img reads VHDs our writer makes", "[vhd]") {
    if (!test::have_program("qemu-img"))
        HL_SKIP("qemu-img is not installed (installer/install-deps.sh installs qemu-utils)");
    test::TempDir dir;
    // One size that is no whole number of CHS cylinders (qemu must be told to use the
    // footer's current size, as Hyper-V does) and one that is (qemu reads it as is).
    const bool chs_exact = GENERATE(false, true);
    const std::uint64_t size = chs_exact ? 300ull * 4 * 17 * 512 : (11ull << 20) + 7 * 512;
    INFO("size " << size);
    Bytes content = mixed_content(size, 2u << 20, 21);
    std::vector<std::uint64_t> order((size + (2u << 20) - 1) / (2u << 20));
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(7);
    std::shuffle(order.begin(), order.end(), rng);
    fs::path path = dir / "ours.vhd";
    write_vhd(path, content, 2u << 20, order);
    test::write_file(dir / "expected.raw", content);

    std::string spec = chs_exact ? path.string() : qemu_current_size_spec(path);
    if (chs_exact)
        CHECK(qemu_virtual_size(path) == size);
    auto r = test::run({"qemu-img", "convert", "-O", "raw", spec, (dir / "back.raw").string()});
    REQUIRE(r.exit_code == 0);
    CHECK(difference(slurp(dir / "back.raw"), content) == "");
    r = test::run({"qemu-img", "compare", "-f", "raw", (dir / "expected.raw").string(), spec});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    // qemu's vpc driver has no consistency checker; make sure that is still the reason
    // `qemu-img check` says nothing, rather than a complaint about our file.
    r = test::run({"qemu-img", "check", "-f", "vpc", path.string()});
    CHECK((r.exit_code == 0 || r.err.find("does not support checks") != std::string::npos));

    // A changed byte must be noticed, or the comparison above proves nothing.
    content[3 << 20] ^= 1;
    test::write_file(dir / "expected.raw", content);
    r = test::run({"qemu-img", "compare", "-f", "raw", (dir / "expected.raw").string(), spec});
    CHECK(r.exit_code == 1);
}

namespace {

struct Corruption {
    std::string name;
    std::function<void(std::uint8_t*)> apply;
    std::string expected; // substring of the error
    bool fix_checksum = true;
    Errc code = Errc::corrupt;
    bool parse_alone = true; // false when only the rest of the file shows the damage
};

// A dynamic VHD with 3 allocated blocks of 4 KiB, and its footer and header offsets.
Bytes sample_dynamic(const fs::path& dir) {
    Bytes content = test::pseudo_random(16 * 4096, 3);
    std::memset(content.data() + 4096, 0, 8 * 4096);
    write_vhd(dir / "sample.vhd", content, 4096,
              {9, 0, 10, 1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 14, 15});
    return slurp(dir / "sample.vhd");
}

} // namespace

TEST_CASE("VHD footer corruption names the field", "[vhd]") {
    test::TempDir dir;
    const Bytes good = sample_dynamic(dir.path());
    REQUIRE(vhd::Image::open(dir / "sample.vhd"));
    auto be32 = [](std::size_t at, std::uint32_t v) {
        return [=](std::uint8_t* f) {
            store_be32(f + at, v);
        };
    };
    auto be64 = [](std::size_t at, std::uint64_t v) {
        return [=](std::uint8_t* f) {
            store_be64(f + at, v);
        };
    };
    auto byte = [](std::size_t at, std::uint8_t v) {
        return [=](std::uint8_t* f) {
            f[at] = v;
        };
    };
    const std::uint64_t size = load_be64(good.data() + foot_current_size);
    std::vector<Corruption> cases = {
        {"cookie", [](std::uint8_t* f) { f[7] = 'y'; }, "found \"conectiy\"", false},
        {"checksum", be32(foot_checksum, 0x12345678), "bad checksum (stored 0x12345678", false},
        {"features without bit 2", be32(foot_features, 0), "features"},
        {"unknown feature", be32(foot_features, 0x102), "features"},
        {"format version", be32(foot_version, 0x00020000), "file format version 0x00020000"},
        {"data offset zero", be64(foot_data_offset, 0), "data offset"},
        {"data offset past end", be64(foot_data_offset, good.size()), "data offset"},
        {"data offset all ones", be64(foot_data_offset, ~std::uint64_t{0}), "data offset"},
        {"timestamp", be32(foot_timestamp, 1), "bad checksum", false},
        {"creator application", byte(foot_creator_app, 'X'), "bad checksum", false},
        {"creator version", be32(foot_creator_version, 9), "bad checksum", false},
        {"creator host OS", be32(foot_host_os, 0x4C696E78), "creator host OS \"Linx\""},
        {"original size unaligned", be64(foot_original_size, 1000), "original size 1000"},
        {"original size too large", be64(foot_original_size, vhd::max_virtual_size + 512),
         "original size"},
        {"current size unaligned", be64(foot_current_size, size + 1), "current size"},
        {"current size too large", be64(foot_current_size, vhd::max_virtual_size + 512),
         "current size"},
        {"current size beyond the BAT", be64(foot_current_size, size * 2),
         "less than the current size", true, Errc::corrupt, false},
        {"cylinders", byte(foot_cylinders, 0xFF), "disk geometry"},
        {"heads", byte(foot_heads, 17), "17 heads"},
        {"sectors per track", byte(foot_sectors, 0xFF), "disk geometry"},
        {"disk type none", be32(foot_disk_type, 0), "disk type 0"},
        {"disk type reserved", be32(foot_disk_type, 5), "disk type 5"},
        {"disk type fixed", be32(foot_disk_type, 2), "should be all ones for a fixed disk"},
        {"differencing", be32(foot_disk_type, 4),
         "differencing VHDs (with a parent disk) are not supported", true, Errc::unsupported},
        {"unique id", byte(foot_unique_id + 3, 0x99), "bad checksum", false},
        {"saved state set", byte(foot_saved_state, 1), "saved state", true, Errc::unsupported},
        {"saved state invalid", byte(foot_saved_state, 7), "saved state 7"},
        {"reserved", byte(foot_reserved + 200, 1), "reserved"},
    };
    for (const auto& c : cases) {
        INFO("corrupting " << c.name);
        Bytes file = good;
        std::uint8_t* footer = file.data() + file.size() - 512;
        c.apply(footer);
        if (c.fix_checksum)
            fix_checksum(footer, 512, foot_checksum);
        // The trailing footer is parsed on its own...
        if (c.parse_alone) {
            auto parsed = vhd::parse_footer(ByteView(footer, 512), file.size());
            REQUIRE(!parsed);
            CHECK_THAT(parsed.error().message, Catch::Contains(c.expected));
            CHECK(parsed.error().code == c.code);
            CHECK_THAT(parsed.error().message, Catch::StartsWith("VHD footer: "));
        } else {
            CHECK(vhd::parse_footer(ByteView(footer, 512), file.size()));
        }
        // ...and opening the file reports the same, unless the damage only shows later, in
        // which case the footer copy at offset 0 disagrees first.
        test::write_file(dir / "bad.vhd", file);
        auto image = vhd::Image::open(dir / "bad.vhd");
        REQUIRE(!image);
        CHECK_THAT(image.error().message,
                   Catch::Contains(c.parse_alone ? c.expected : "copy at offset 0 differs"));
        CHECK(image.error().code == c.code);
        // Corrupting both copies alike gives the same answer.
        std::copy(footer, footer + 512, file.data());
        test::write_file(dir / "bad.vhd", file);
        CHECK_THAT(error_of(dir / "bad.vhd"), Catch::Contains(c.expected));
    }

    // The copy at offset 0 must match the footer at the end.
    Bytes file = good;
    file[foot_unique_id] ^= 0x55;
    fix_checksum(file.data(), 512, foot_checksum);
    test::write_file(dir / "bad.vhd", file);
    CHECK_THAT(error_of(dir / "bad.vhd"), Catch::Contains("copy at offset 0 differs"));
}

TEST_CASE("VHD fixed footer corruption names the field", "[vhd]") {
    test::TempDir dir;
    Bytes content = test::pseudo_random(1 << 20, 8);
    write_fixed(dir / "fixed.vhd", content);
    const Bytes good = slurp(dir / "fixed.vhd");
    REQUIRE(vhd::Image::open(dir / "fixed.vhd"));
    struct Case {
        std::size_t at;
        std::uint64_t value;
        int width;
        std::string expected;
    };
    for (const auto& c : std::vector<Case>{
             {foot_data_offset, 512, 8, "data offset 0x200 should be all ones"},
             {foot_data_offset, 0, 8, "data offset"},
             {foot_current_size, (1 << 20) - 512, 8, "current size"},
             {foot_current_size, (1 << 20) + 512, 8, "current size"},
             {foot_disk_type, 3, 4, "data offset"},
         }) {
        INFO("expecting " << c.expected);
        Bytes file = good;
        std::uint8_t* footer = file.data() + file.size() - 512;
        if (c.width == 8)
            store_be64(footer + c.at, c.value);
        else
            store_be32(footer + c.at, static_cast<std::uint32_t>(c.value));
        fix_checksum(footer, 512, foot_checksum);
        test::write_file(dir / "bad.vhd", file);
        CHECK_THAT(error_of(dir / "bad.vhd"), Catch::Contains(c.expected));
    }
    // The 32-bit "0xFFFFFFFF" some writers use for a fixed disk's data offset is accepted.
    Bytes file = good;
    store_be64(file.data() + file.size() - 512 + foot_data_offset, 0xFFFFFFFF);
    fix_checksum(file.data() + file.size() - 512, 512, foot_checksum);
    test::write_file(dir / "ok.vhd", file);
    auto image = vhd::Image::open(dir / "ok.vhd");
    REQUIRE(image);
    CHECK(difference(read_all(*image, 1 << 20), content) == "");
}

TEST_CASE("VHD dynamic header corruption names the field", "[vhd]") {
    test::TempDir dir;
    const Bytes good = sample_dynamic(dir.path());
    const std::size_t header_at = load_be64(good.data() + foot_data_offset);
    REQUIRE(header_at == 512);
    auto be32 = [](std::size_t at, std::uint32_t v) {
        return [=](std::uint8_t* h) {
            store_be32(h + at, v);
        };
    };
    auto be64 = [](std::size_t at, std::uint64_t v) {
        return [=](std::uint8_t* h) {
            store_be64(h + at, v);
        };
    };
    auto byte = [](std::size_t at, std::uint8_t v) {
        return [=](std::uint8_t* h) {
            h[at] = v;
        };
    };
    std::vector<Corruption> cases = {
        {"cookie", byte(0, 'C'), "bad cookie (expected \"cxsparse\", found \"Cxsparse\")", false},
        {"checksum", be32(head_checksum, 0), "bad checksum (stored 0x00000000", false},
        {"data offset", be64(head_data_offset, 0), "data offset 0x0 is not all ones"},
        {"table offset zero", be64(head_table_offset, 0), "table offset"},
        {"table offset in footer copy", be64(head_table_offset, 100), "table offset"},
        {"table offset past end", be64(head_table_offset, good.size() - 100), "table offset"},
        {"table offset into header", be64(head_table_offset, 600), "overlap the header"},
        {"header version", be32(head_version, 0x00010001), "header version 0x00010001"},
        {"max table entries too few", be32(head_max_entries, 15),
         "max table entries 15 of 4096-byte blocks cover 61440 bytes, less than the current size"},
        {"max table entries huge", be32(head_max_entries, 0xFFFFFFFF), "max table entries"},
        {"max table entries beyond the file", be32(head_max_entries, 20000), "20000 entries"},
        {"block size not a power of two", be32(head_block_size, 3000),
         "block size 3000 is not a power of two multiple of 512"},
        {"block size too small", be32(head_block_size, 256), "block size 256"},
        {"block size zero", be32(head_block_size, 0), "block size 0"},
        {"block size larger", be32(head_block_size, 8192), "VHD BAT", true, Errc::corrupt, false},
        {"parent unique id", byte(head_parent_id + 15, 1), "parent unique id"},
        {"parent timestamp", be32(head_parent_timestamp, 5), "parent timestamp"},
        {"reserved after parent timestamp", byte(head_reserved1, 1), "reserved"},
        {"parent unicode name", byte(head_parent_name + 1, 'a'), "parent unicode name"},
        {"parent locator", byte(head_locators + 24 * 3, 'W'), "parent locator"},
        {"reserved at the end", byte(head_reserved2 + 255, 1), "reserved"},
    };
    vhd::Footer footer = *vhd::parse_footer(ByteView(good).last(512), good.size());
    for (const auto& c : cases) {
        INFO("corrupting " << c.name);
        Bytes file = good;
        std::uint8_t* header = file.data() + header_at;
        c.apply(header);
        if (c.fix_checksum)
            fix_checksum(header, 1024, head_checksum);
        auto parsed = vhd::parse_dynamic_header(ByteView(header, 1024), footer, file.size());
        if (c.parse_alone) {
            REQUIRE(!parsed);
            CHECK_THAT(parsed.error().message, Catch::Contains(c.expected));
            CHECK_THAT(parsed.error().message, Catch::StartsWith("VHD dynamic header: "));
        } else {
            CHECK(parsed);
        }
        test::write_file(dir / "bad.vhd", file);
        CHECK_THAT(error_of(dir / "bad.vhd"), Catch::Contains(c.expected));
    }
}

TEST_CASE("VHD BAT entries are bounds-checked", "[vhd]") {
    test::TempDir dir;
    const Bytes good = sample_dynamic(dir.path());
    const std::uint64_t table = load_be64(good.data() + 512 + head_table_offset);
    REQUIRE(table == 1536);
    // Block 9 was written first, so it is the first block after the BAT.
    const std::uint32_t first = load_be32(good.data() + table + 4 * 9);
    const std::uint32_t last_sector = static_cast<std::uint32_t>(good.size() / 512);
    REQUIRE(first == 4); // 1536 + one sector of BAT
    struct Case {
        std::string name;
        std::size_t entry;
        std::uint32_t value;
        std::string expected;
    };
    for (const auto& c : std::vector<Case>{
             {"past the end of the file", 2, last_sector + 10, "BAT entry 2"},
             {"huge", 2, 0xFFFFFFFE, "BAT entry 2"},
             {"overlapping the trailing footer", 2, last_sector - 9, "BAT entry 2"},
             {"into the footer copy", 3, 0, "BAT entry 3"},
             {"into the header", 4, 1, "overlaps the dynamic header"},
             {"into the BAT", 4, 3, "overlaps the BAT"},
             {"same block twice", 5, first, "overlap"},
             {"half a block into another", 5, first + 4, "overlap"},
         }) {
        INFO("BAT entry " << c.name);
        Bytes file = good;
        store_be32(file.data() + table + 4 * c.entry, c.value);
        test::write_file(dir / "bad.vhd", file);
        CHECK_THAT(error_of(dir / "bad.vhd"), Catch::Contains(c.expected));
    }
    // An entry that points at the last possible block is fine.
    Bytes file = good;
    file.resize(file.size() - 512);
    Bytes spare = test::pseudo_random(512 + 4096, 99);
    file.insert(file.end(), spare.begin(), spare.end());
    file.insert(file.end(), good.end() - 512, good.end());
    store_be32(file.data() + table + 4 * 2, last_sector - 1);
    std::memcpy(file.data(), good.data() + good.size() - 512, 512);
    test::write_file(dir / "ok.vhd", file);
    auto image = vhd::Image::open(dir / "ok.vhd");
    REQUIRE(image);
    Bytes block(4096);
    REQUIRE(image->read(2 * 4096, block));
    CHECK(std::equal(block.begin(), block.end(), spare.begin() + 512));
}

TEST_CASE("VHD truncated at any length is refused", "[vhd]") {
    test::TempDir dir;
    const Bytes good = sample_dynamic(dir.path());
    std::vector<std::size_t> lengths;
    for (std::size_t n = 0; n < good.size(); n += 512)
        for (std::size_t d : {std::size_t{0}, std::size_t{1}, std::size_t{511}})
            if (n + d < good.size())
                lengths.push_back(n + d);
    for (std::size_t n = 0; n < good.size(); n += 37)
        lengths.push_back(n);
    lengths.push_back(good.size() - 1);
    for (std::size_t n : lengths) {
        INFO("truncated to " << n << " of " << good.size() << " bytes");
        test::write_file(dir / "cut.vhd", ByteView(good).first(n));
        auto image = vhd::Image::open(dir / "cut.vhd");
        REQUIRE(!image);
        CHECK(image.error().code == Errc::corrupt);
    }
    test::write_file(dir / "cut.vhd", ByteView(good).first(good.size() - 512));
    CHECK_THAT(error_of(dir / "cut.vhd"), Catch::Contains("missing at the end of the file"));

    // Fixed disks too: cutting data shifts the footer or removes it.
    Bytes content = test::pseudo_random(64 << 10, 4);
    write_fixed(dir / "fixed.vhd", content);
    Bytes fixed = slurp(dir / "fixed.vhd");
    for (std::size_t n : {std::size_t{0}, std::size_t{512}, std::size_t{4096}, fixed.size() - 512,
                          fixed.size() - 1}) {
        INFO("fixed truncated to " << n);
        test::write_file(dir / "cut.vhd", ByteView(fixed).first(n));
        CHECK(!vhd::Image::open(dir / "cut.vhd"));
    }
    // Dropping leading data leaves a footer whose size no longer matches.
    test::write_file(dir / "cut.vhd", ByteView(fixed).subspan(512));
    CHECK_THAT(error_of(dir / "cut.vhd"), Catch::Contains("current size"));
}

TEST_CASE("VHD reader refuses files that are not VHDs", "[vhd]") {
    test::TempDir dir;
    test::write_file(dir / "empty.vhd", Bytes{});
    auto empty = vhd::Image::open(dir / "empty.vhd");
    REQUIRE(!empty);
    CHECK(empty.error().code == Errc::corrupt);
    CHECK_THAT(empty.error().message, Catch::Contains("file is 0 bytes"));

    test::write_file(dir / "random.bin", test::pseudo_random(1 << 20, 1));
    CHECK_THAT(error_of(dir / "random.bin"), Catch::Contains("not a VHD"));
    test::write_file(dir / "zeros.bin", Bytes(4096, 0));
    CHECK_THAT(error_of(dir / "zeros.bin"), Catch::Contains("bad cookie"));
    test::write_file(dir / "text.txt", as_bytes(std::string(600, 'x')));
    CHECK_THAT(error_of(dir / "text.txt"), Catch::Contains("found \"xxxxxxxx\""));

    auto missing = vhd::Image::open(dir / "missing.vhd");
    REQUIRE(!missing);
    CHECK(missing.error().code == Errc::not_found);
    CHECK_THAT(missing.error().message, Catch::Contains("missing.vhd"));
}

TEST_CASE("VHD differencing disks are refused", "[vhd]") {
    test::TempDir dir;
    Bytes file = sample_dynamic(dir.path());
    for (std::uint8_t* footer : {file.data(), file.data() + file.size() - 512}) {
        store_be32(footer + foot_disk_type, 4);
        fix_checksum(footer, 512, foot_checksum);
    }
    // Give it a parent like a real differencing disk would have.
    file[512 + head_parent_id] = 1;
    fix_checksum(file.data() + 512, 1024, head_checksum);
    test::write_file(dir / "child.vhd", file);
    auto image = vhd::Image::open(dir / "child.vhd");
    REQUIRE(!image);
    CHECK(image.error().code == Errc::unsupported);
    CHECK_THAT(image.error().message,
               Catch::Contains("differencing VHDs (with a parent disk) are not supported"));
}

TEST_CASE("VHD of zero size from qemu-img opens and reads nothing", "[vhd]") {
    if (!test::have_program("qemu-img"))
        HL_SKIP("qemu-img is not installed (installer/install-deps.sh installs qemu-utils)");
    test::TempDir dir;
    REQUIRE(test::run({"qemu-img", "create", "-q", "-f", "vpc", "-o", "subformat=dynamic",
                       (dir / "zero.vhd").string(), "0"})
                .exit_code == 0);
    auto image = vhd::Image::open(dir / "zero.vhd");
    REQUIRE(image);
    CHECK(image->virtual_size() == 0);
    CHECK(!image->may_hold_data(0, 1 << 20));
    Bytes one(512);
    CHECK(!image->read(0, one));
}

TEST_CASE("qemu sees the full size of a written VHD whose size CHS cannot express", "[vhd]") {
    if (!heirloom::test::have_program("qemu-img"))
        HL_SKIP("qemu-img is not installed (installer/install-deps.sh installs qemu-utils)");
    heirloom::test::TempDir dir;
    const std::uint64_t size = (100ull << 20) + 4096; // not a whole number of cylinders
    auto writer = heirloom::trim::vhd::DynamicWriter::create(dir / "odd.vhd", size);
    REQUIRE(writer);
    heirloom::Bytes tail = heirloom::test::pseudo_random(4096, 1);
    REQUIRE(writer->write(size - 4096, tail));
    REQUIRE(writer->finish());
    auto info =
        heirloom::test::run({"qemu-img", "info", "--output=json", (dir / "odd.vhd").string()});
    REQUIRE(info.exit_code == 0);
    CHECK(info.out.find("\"virtual-size\": " + std::to_string(size)) != std::string::npos);
}
