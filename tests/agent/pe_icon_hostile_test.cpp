// The icon reader of Windows programs against hostile files: truncated programs, resource
// directories that lie (outside the file, loops, huge counts), icon groups and images that lie
// about their size, bitmaps whose palette or rows run past their data, icon bombs. Each must
// give an error naming what is wrong, never a crash (the suite also runs under ASan + UBSan).

#include "agent/pe_icon/pe_builder.hpp"
#include "guest/pe_icon.hpp"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>

using namespace heirloom;
using heirloom::guest::pe_icon_png;
namespace pe = heirloom::test::pe;
using pe::Bytes;

namespace {

Bytes read_program(const std::string& name) {
    std::ifstream in(std::filesystem::path(HEIRLOOM_PE_ICON_DATA) / name, std::ios::binary);
    REQUIRE(in);
    return Bytes(std::istreambuf_iterator<char>(in), {});
}

// Checks that reading pe's icon fails with an error whose message contains what.
void check_refused(const Bytes& file, const std::string& what, int max_pixels = 256) {
    auto png = pe_icon_png(file, max_pixels);
    INFO("expecting an error containing: " << what);
    REQUIRE_FALSE(png.has_value());
    CHECK_THAT(png.error().message, Catch::Contains(what));
}

// A program whose icon is one 16 px 4-bit bitmap: its resource section, to be made to lie.
pe::ResourceSection one_icon(const Bytes& image = pe::bitmap_image(16, 4), int bits = 4,
                             int size = 16) {
    return pe::build_resources(pe::icon_resources({image}, {{.width = size,
                                                             .height = size,
                                                             .bits = bits,
                                                             .bytes = std::uint32_t(image.size()),
                                                             .id = 1}}));
}

Bytes program(const pe::ResourceSection& section) {
    return pe::build_pe(section);
}

} // namespace

TEST_CASE("pe icon hostile: the builder's own program is read, so the lies below are what "
          "fails",
          "[guest][pe_icon]") {
    CHECK(pe_icon_png(program(one_icon())).has_value());
    CHECK(pe_icon_png(pe::build_pe(one_icon(), pe::Format::pe32_plus)).has_value());
}

TEST_CASE("pe icon hostile: files that are not Windows programs", "[guest][pe_icon]") {
    check_refused({}, "not a Windows program");
    check_refused(Bytes{'M', 'Z'}, "not a Windows program");
    Bytes elf(200, 0);
    elf[0] = 0x7f;
    elf[1] = 'E';
    check_refused(elf, "not a Windows program");
    Bytes dos(200, 0);
    dos[0] = 'M';
    dos[1] = 'Z';
    pe::put32(dos, 0x3c, 0x40);
    dos[0x40] = 'N';
    dos[0x41] = 'E'; // a 16-bit Windows program
    check_refused(dos, "no PE signature at offset 0x40");
    pe::put32(dos, 0x3c, 0xfffffff0);
    check_refused(dos, "PE header offset 0xfffffff0 points outside the file");
}

TEST_CASE("pe icon hostile: lying headers", "[guest][pe_icon]") {
    Bytes good = program(one_icon());
    auto lie = [&](std::size_t at, std::uint32_t value, int width = 16) {
        Bytes file = good;
        if (width == 16)
            pe::put16(file, at, value);
        else
            pe::put32(file, at, value);
        return file;
    };
    check_refused(lie(pe::coff_offset + 2, 0), "lists 0 sections");
    check_refused(lie(pe::coff_offset + 2, 97), "lists 97 sections");
    check_refused(lie(pe::coff_offset + 2, 90), "section table (90 sections) runs past");
    check_refused(lie(pe::coff_offset + 16, 0xffff), "optional header (65535 bytes) runs past");
    check_refused(lie(pe::coff_offset + 16, 50), "too short for its data directories");
    check_refused(lie(pe::optional_offset, 0x107), "neither PE32 (0x10b) nor PE32+ (0x20b)");
    check_refused(lie(pe::optional_offset + 92, 17, 32), "17 data directories");
    check_refused(lie(pe::optional_offset + 92, 2, 32), "no resource directory");
    check_refused(lie(pe::data_directory_offset(pe::Format::pe32, 2), 0, 32), "no resources");
    check_refused(lie(pe::data_directory_offset(pe::Format::pe32, 2) + 4, 0x10000, 32),
                  "the resource directory (RVA 0x1000, 65536 bytes) is not within");
    check_refused(lie(pe::data_directory_offset(pe::Format::pe32, 2), 0x800, 32),
                  "is not within the file data of any section");
    // A section whose data starts past the end of the file: the program was truncated.
    check_refused(lie(pe::section_table_offset(pe::Format::pe32) + 20, 0x10000, 32),
                  "points past the end of the file (truncated?)");
}

TEST_CASE("pe icon hostile: real programs truncated anywhere", "[guest][pe_icon]") {
    for (const char* name : {"seed.exe", "named.exe"}) {
        Bytes exe = read_program(name);
        auto whole = pe_icon_png(exe);
        REQUIRE(whole.has_value());
        pe::ResourceSection resources = pe::resource_section_of(exe);
        // The resource section is the file's last; all of it is needed.
        std::size_t needed = resources.file_offset + resources.bytes.size();
        for (std::size_t size = 0; size < exe.size(); ++size) {
            Bytes cut(exe.begin(), exe.begin() + std::ptrdiff_t(size));
            auto png = pe_icon_png(cut);
            INFO(name << " cut to " << size << " bytes");
            if (size < needed)
                REQUIRE_FALSE(png.has_value());
            else
                REQUIRE((png.has_value() && *png == *whole));
        }
    }
}

TEST_CASE("pe icon hostile: a lying resource directory", "[guest][pe_icon]") {
    pe::ResourceSection good = one_icon();
    auto lie = [&](std::uint32_t at, std::uint32_t value) {
        pe::ResourceSection section = good;
        pe::put32(section.bytes, at, value);
        return program(section);
    };
    auto lie16 = [&](std::uint32_t at, std::uint32_t value) {
        pe::ResourceSection section = good;
        pe::put16(section.bytes, at, value);
        return program(section);
    };
    std::uint32_t groups = good.type_directory.at(pe::rt_group_icon);
    std::uint32_t icons = good.type_directory.at(pe::rt_icon);
    std::uint32_t group_entry = good.name_entry[0];
    std::uint32_t image_entry = good.name_entry[1];

    SECTION("huge entry counts") {
        check_refused(lie16(14, 0xffff), "the resource directory lists 65535 entries");
        check_refused(lie16(12, 0x0fff), "the resource directory lists 4097 entries");
        check_refused(lie16(14, 3000), "the resource directory's 3000 entries run past");
        check_refused(lie16(groups + 14, 3000), "the icon group directory's 3000 entries run past");
        check_refused(lie16(icons + 12, 0xffff), "the icon image directory lists 65536 entries");
    }
    SECTION("entries that point outside the resource section") {
        check_refused(lie(16 + 4, pe::subdirectory | 0x7ffffff0),
                      "the resource directory entry 1 points outside the resource section");
        check_refused(lie(group_entry + 4, pe::subdirectory | std::uint32_t(good.bytes.size())),
                      "the icon group directory entry 1 points outside");
        check_refused(lie(good.language_directory[0] + 20, std::uint32_t(good.bytes.size()) - 8),
                      "the first icon group's directory entry 1 points outside");
    }
    SECTION("loops: directories pointing back at themselves or their parents") {
        check_refused(lie(group_entry + 4, pe::subdirectory | 0), "a loop");
        check_refused(lie(group_entry + 4, pe::subdirectory | groups), "a loop");
        check_refused(lie(image_entry + 4, pe::subdirectory | icons), "a loop");
        check_refused(lie(image_entry + 4, pe::subdirectory | 0), "a loop");
        // The language level pointing at a directory instead of data.
        check_refused(lie(good.language_directory[0] + 20, pe::subdirectory | 0),
                      "is a directory where data belongs");
        check_refused(lie(16 + 4, icons), "RT_ICON resource entry is data where a directory");
    }
    SECTION("names and ids that lie") {
        check_refused(lie16(12, 1), "the resource directory entry 1 is numbered among the named");
        pe::ResourceSection named = good;
        pe::put16(named.bytes, 12, 1);
        pe::put16(named.bytes, 14, 1);
        pe::put32(named.bytes, 16, pe::subdirectory | 0x7fff0000);
        check_refused(program(named), "the resource directory entry 1's name points outside");
        pe::put32(named.bytes, 16, pe::subdirectory | (std::uint32_t(named.bytes.size()) - 4));
        pe::put16(named.bytes, named.bytes.size() - 4, 100);
        check_refused(program(named), "entry 1's name runs past the end");
        check_refused(lie(group_entry, 0x10001), "has id 0x10001, more than 16 bits");
    }
    SECTION("data entries that lie") {
        std::uint32_t group_data = good.data_entry[0];
        std::uint32_t image_data = good.data_entry[1];
        check_refused(lie(group_data + 4, 0), "the first icon group is empty");
        check_refused(lie(group_data + 4, 0xffffffff), "the first icon group is 4294967295 bytes");
        check_refused(lie(group_data, 0xfffffff0), "RVA 0xfffffff0");
        check_refused(lie(image_data + 4, 0x7fffffff), "icon image 1 is 2147483647 bytes");
        check_refused(lie(image_data + 4, 0x20000), "icon image 1 (RVA");
        check_refused(lie(image_data, 0x10), "is not within the file data of any section");
    }
}

TEST_CASE("pe icon hostile: icon groups that lie", "[guest][pe_icon]") {
    Bytes image = pe::bitmap_image(16, 4);
    auto size = std::uint32_t(image.size());
    auto with_group = [&](const Bytes& group, std::vector<Bytes> images = {}) {
        if (images.empty())
            images = {image};
        auto resources = pe::icon_resources(images, {});
        resources[0].data = group;
        return program(pe::build_resources(resources));
    };
    Bytes group = pe::icon_group({{.width = 16, .height = 16, .bits = 4, .bytes = size, .id = 1}});
    CHECK(pe_icon_png(with_group(group)).has_value());

    Bytes cursor = group;
    pe::put16(cursor, 2, 2);
    check_refused(with_group(cursor), "does not start with an icon header");
    check_refused(with_group(Bytes(group.begin(), group.begin() + 5)), "icon header");
    Bytes none = group;
    pe::put16(none, 4, 0);
    check_refused(with_group(none), "lists 0 images");
    Bytes many = group;
    pe::put16(many, 4, 300);
    check_refused(with_group(many), "lists 300 images");
    Bytes short_count = group;
    pe::put16(short_count, 4, 5);
    check_refused(with_group(short_count), "5 images need 76 bytes but it has 20");
    check_refused(with_group(pe::icon_group(
                      {{.width = 16, .height = 16, .bits = 4, .bytes = size, .id = 7}})),
                  "lists icon image 7 but the program has no such RT_ICON resource");
    check_refused(with_group(pe::icon_group(
                      {{.width = 16, .height = 16, .bits = 4, .bytes = size + 1, .id = 1}})),
                  "icon image 1 is 296 bytes but the icon group says 297");
    check_refused(with_group(pe::icon_group(
                      {{.width = 32, .height = 32, .bits = 4, .bytes = size, .id = 1}})),
                  "the bitmap image is 16×32 (image and mask) but its icon group says 32×32");

    // No RT_ICON at all, and no RT_GROUP_ICON at all.
    auto group_only = pe::icon_resources({}, {});
    group_only[0].data = group;
    check_refused(program(pe::build_resources(group_only)), "the program has no RT_ICON");
    auto icons_only = pe::icon_resources({image}, {});
    icons_only.erase(icons_only.begin());
    auto no_group = pe_icon_png(program(pe::build_resources(icons_only)));
    REQUIRE_FALSE(no_group.has_value());
    CHECK(no_group.error().code == Errc::not_found);
}

TEST_CASE("pe icon hostile: bitmaps that lie", "[guest][pe_icon]") {
    auto with_image = [](const Bytes& image, int size = 16, int bits = 4) {
        return program(one_icon(image, bits, size));
    };
    auto changed = [](Bytes image, std::size_t at, std::uint32_t value) {
        pe::put32(image, at, value);
        return image;
    };
    Bytes image = pe::bitmap_image(16, 4);
    CHECK(pe_icon_png(with_image(image)).has_value());

    check_refused(with_image(changed(image, 0, 12)), "a 12-byte header; only BITMAPINFOHEADER");
    check_refused(with_image(changed(image, 4, 0)), "says it is 0×32");
    check_refused(with_image(changed(image, 4, 0x7fffffff)), "not within 1×2 to 256×512");
    check_refused(with_image(changed(image, 8, 0x80000000)), "not within 1×2 to 256×512");
    check_refused(with_image(changed(image, 8, 16)), "is 16×16 (image and mask) but its icon");
    check_refused(with_image(changed(image, 12, 0x00040002)), "has 2 planes");
    check_refused(with_image(changed(image, 12, 0x00100001)), "16 bits per pixel");
    check_refused(with_image(changed(image, 16, 1)), "is compressed (method 1)");
    check_refused(with_image(changed(image, 32, 17)), "uses 17 palette colours, more than 16");
    // Pixel value 5 with a palette of 4 colours (the first pixel of the top row).
    Bytes indexed = changed(image, 32, 4);
    indexed.resize(40 + 4 * 4 + (8 + 4) * 16);
    indexed[40 + 4 * 4 + 8 * 15] = 0x50;
    check_refused(with_image(indexed), "pixel (0, 0) of the bitmap image uses colour 5 of a "
                                       "palette of 4");

    // Parts that run past the data.
    check_refused(with_image(Bytes(image.begin(), image.begin() + 39)), "too short for its 40");
    check_refused(with_image(Bytes(image.begin(), image.begin() + 60)),
                  "palette (16 colours) runs past the end of its 60 bytes");
    check_refused(with_image(Bytes(image.begin(), image.end() - 1)),
                  "rows and mask need 296 bytes but it has 295");
    Bytes bits1 = pe::bitmap_image(16, 1);
    check_refused(with_image(Bytes(bits1.begin(), bits1.begin() + 44), 16, 1),
                  "palette (2 colours) runs past");

    // Icon bombs: the group and the bitmap agree on sizes larger than an icon may be.
    Bytes big = pe::bitmap_image(16, 32);
    pe::put32(big, 4, 4096);
    pe::put32(big, 8, 8192);
    check_refused(with_image(big, 16, 32), "says it is 4096×8192");
    Bytes bomb(big.begin(), big.begin() + 40);
    pe::put32(bomb, 4, 256);
    pe::put32(bomb, 8, 512);
    check_refused(with_image(bomb, 256, 32), "rows and mask need 270376 bytes but it has 40");
}

TEST_CASE("pe icon hostile: PNG images that lie", "[guest][pe_icon]") {
    // A minimal PNG frame: signature, IHDR (with a correct CRC), IEND.
    auto png = [](std::uint32_t width, std::uint32_t height, std::size_t padding = 0,
                  std::uint8_t depth = 8) {
        Bytes bytes = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
                       0,    0,   0,   13,  'I',  'H',  'D',  'R'};
        for (std::uint32_t value : {width, height})
            for (int shift = 24; shift >= 0; shift -= 8)
                bytes.push_back(static_cast<std::uint8_t>(value >> shift));
        bytes.insert(bytes.end(), {depth, 6, 0, 0, 0});
        std::uint32_t crc = 0xffffffff; // CRC-32 of type and data, bit by bit
        for (std::size_t i = 12; i < 29; ++i) {
            crc ^= bytes[i];
            for (int bit = 0; bit < 8; ++bit)
                crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
        }
        crc ^= 0xffffffff;
        for (int shift = 24; shift >= 0; shift -= 8)
            bytes.push_back(static_cast<std::uint8_t>(crc >> shift));
        bytes.insert(bytes.end(), padding, 0);
        bytes.insert(bytes.end(), {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82});
        return bytes;
    };
    auto with_png = [](const Bytes& image, int size) {
        return program(one_icon(image, 32, size));
    };
    REQUIRE(pe_icon_png(with_png(png(24, 24), 24)).value() == png(24, 24)); // as it is

    check_refused(with_png(png(300, 300), 256), "the PNG image is 300×300, not within 1×1");
    check_refused(with_png(png(0, 24), 24), "the PNG image is 0×24");
    check_refused(with_png(png(48, 48), 24), "the PNG image is 48×48 but its icon group says");
    check_refused(with_png(png(24, 24, (256u << 10)), 24), "more than the 256 KiB");
    Bytes bad_crc = png(24, 24);
    bad_crc[20] ^= 1;
    check_refused(with_png(bad_crc, 24), "fails its CRC");
    Bytes no_end = png(24, 24, 16);
    no_end.resize(no_end.size() - 1);
    check_refused(with_png(no_end, 24), "does not end with an IEND chunk");
    check_refused(with_png(Bytes(no_end.begin(), no_end.begin() + 20), 24), "is truncated");
    check_refused(with_png(png(24, 24, 0, 7), 24), "invalid colour type, depth or method");
}
