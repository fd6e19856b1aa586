// The icon reader of Windows programs on real programs: mingw-w64 builds them from iconapp.c
// with the icons of make_icons.py (tests/agent/pe_icon/), which also writes the pixels each
// image must decode to. The PNGs returned are decoded with libpng and compared pixel by pixel,
// and must pass the host's own strict icon conversion.

#include "agent/pe_icon/pe_builder.hpp"
#include "guest/pe_icon.hpp"
#include "heirloom/shell/icon.hpp"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <png.h>

using namespace heirloom;
using heirloom::guest::pe_icon_png;
namespace pe = heirloom::test::pe;

namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

Bytes read_data(const std::string& name) {
    fs::path path = fs::path(HEIRLOOM_PE_ICON_DATA) / name;
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in);
    return Bytes(std::istreambuf_iterator<char>(in), {});
}

// A PNG file's size and pixels as 8-bit RGBA, decoded by libpng.
struct Decoded {
    std::uint32_t width = 0;
    std::uint32_t height = 0;
    Bytes rgba{};
};

Decoded decode_png(const Bytes& png) {
    png_image image{};
    image.version = PNG_IMAGE_VERSION;
    REQUIRE(png_image_begin_read_from_memory(&image, png.data(), png.size()) != 0);
    image.format = PNG_FORMAT_RGBA;
    Decoded decoded{image.width, image.height, Bytes(PNG_IMAGE_SIZE(image))};
    REQUIRE(png_image_finish_read(&image, nullptr, decoded.rgba.data(), 0, nullptr) != 0);
    return decoded;
}

// Checks that png is the image expected_rgba (size × size) and that the host would take it.
void check_icon(const Result<Bytes>& png, int size, const std::string& expected_rgba) {
    INFO("expecting " << expected_rgba);
    REQUIRE(png.has_value());
    CHECK(png->size() <= 256u << 10);
    Decoded decoded = decode_png(*png);
    CHECK(decoded.width == std::uint32_t(size));
    CHECK(decoded.height == std::uint32_t(size));
    CHECK(decoded.rgba == read_data(expected_rgba));
    CHECK(shell::convert_icon(*png).has_value());
}

} // namespace

TEST_CASE("pe icon: the largest image that fits, decoded exactly, from a mingw-w64 program",
          "[guest][pe_icon]") {
    Bytes exe = read_data("app.exe");
    // app.ico: 16 px 4-bit, 32 px 32-bit with alpha, 48 px 8-bit with 200 colours, 256 px PNG.
    auto largest = pe_icon_png(exe);
    REQUIRE(largest.has_value());
    CHECK(*largest == read_data("app-256.png")); // a PNG image passes through unchanged
    check_icon(largest, 256, "app-256.rgba");
    check_icon(pe_icon_png(exe, 255), 48, "app-48.rgba");
    check_icon(pe_icon_png(exe, 48), 48, "app-48.rgba");
    check_icon(pe_icon_png(exe, 47), 32, "app-32.rgba");
    check_icon(pe_icon_png(exe, 32), 32, "app-32.rgba");
    check_icon(pe_icon_png(exe, 31), 16, "app-16.rgba");
    check_icon(pe_icon_png(exe, 16), 16, "app-16.rgba");

    auto too_small = pe_icon_png(exe, 15);
    REQUIRE_FALSE(too_small.has_value());
    CHECK(too_small.error().code == Errc::not_found);
    CHECK_THAT(too_small.error().message, Catch::Contains("no image of at most 15×15"));
}

TEST_CASE("pe icon: a named group comes first, and 1, 24 and 32-bit bitmaps take the AND "
          "mask as alpha",
          "[guest][pe_icon]") {
    // named.rc: MAINICON (depths.ico) sorts before id 1 (app.ico). depths.ico: 16 px 1-bit,
    // 24 px 24-bit, 32 px 32-bit whose alpha bytes are all zero, so its mask decides.
    Bytes exe = read_data("named.exe");
    check_icon(pe_icon_png(exe), 32, "depths-32.rgba");
    check_icon(pe_icon_png(exe, 31), 24, "depths-24.rgba");
    check_icon(pe_icon_png(exe, 23), 16, "depths-16.rgba");
    // app.exe lists depths.ico second: never read.
    check_icon(pe_icon_png(read_data("app.exe"), 32), 32, "app-32.rgba");
}

TEST_CASE("pe icon: the fuzzer's seed program gives its PNG image", "[guest][pe_icon]") {
    Bytes exe = read_data("seed.exe");
    check_icon(pe_icon_png(exe), 24, "seed-24.rgba");
    check_icon(pe_icon_png(exe, 23), 16, "seed-16.rgba");
}

TEST_CASE("pe icon: PE32+ programs", "[guest][pe_icon]") {
    // The 32-bit program's resource section in a 64-bit (PE32+) file: the same icons.
    Bytes exe = read_data("app.exe");
    pe::ResourceSection resources = pe::resource_section_of(exe);
    REQUIRE_FALSE(resources.bytes.empty());
    Bytes plus = pe::build_pe(resources, pe::Format::pe32_plus);
    CHECK(pe_icon_png(plus).value() == pe_icon_png(exe).value());
    check_icon(pe_icon_png(plus, 100), 48, "app-48.rgba");
    // The same file as PE32 reads the same, so the two headers are what differs.
    check_icon(pe_icon_png(pe::build_pe(resources, pe::Format::pe32), 47), 32, "app-32.rgba");
#ifdef HEIRLOOM_PE_ICON_HAVE_APP64
    Bytes app64 = read_data("app64.exe");
    CHECK(pe::get16(app64, pe::get32(app64, 0x3c) + 24) == 0x20b);
    check_icon(pe_icon_png(app64), 256, "app-256.rgba");
    check_icon(pe_icon_png(app64, 47), 32, "app-32.rgba");
#else
    WARN("x86_64-w64-mingw32-gcc is not installed: no 64-bit program built by mingw-w64 read");
#endif
}

TEST_CASE("pe icon: an icon size outside 1 to 256 is the caller's error", "[guest][pe_icon]") {
    Bytes exe = read_data("seed.exe");
    for (int size : {0, -1, 257, 100000}) {
        auto png = pe_icon_png(exe, size);
        REQUIRE_FALSE(png.has_value());
        CHECK(png.error().code == Errc::invalid_argument);
    }
}

TEST_CASE("pe icon: a bitmap of 256 × 256 pixels is encoded within the 256 KiB limit",
          "[guest][pe_icon]") {
    // Raw 256 × 256 RGBA is 256 KiB before PNG's row bytes; deflate brings it under the limit.
    Bytes image = pe::bitmap_image(256, 32);
    for (std::size_t i = 40; i + 3 < 40 + 256 * 256 * 4; i += 4) {
        std::size_t pixel = (i - 40) / 4;
        image[i] = static_cast<std::uint8_t>(pixel % 256);
        image[i + 1] = static_cast<std::uint8_t>(pixel / 256);
        image[i + 2] = 0x80;
        image[i + 3] = 0xff;
    }
    auto resources = pe::icon_resources(
        {image},
        {{.width = 0, .height = 0, .bits = 32, .bytes = std::uint32_t(image.size()), .id = 1}});
    auto png = pe_icon_png(pe::build_pe(pe::build_resources(resources)));
    REQUIRE(png.has_value());
    CHECK(png->size() <= 256u << 10);
    Decoded decoded = decode_png(*png);
    REQUIRE(decoded.width == 256);
    // The bottom row of the bitmap is the top row of the image.
    CHECK(decoded.rgba[0] == 0x80);
    CHECK(decoded.rgba[1] == 255);
    CHECK(decoded.rgba[2] == 0);
    CHECK(decoded.rgba[3] == 0xff);
    CHECK(shell::convert_icon(*png).has_value());
}
