#include "guest/icon_image.hpp"

#include "heirloom/agent/guest_protocol.hpp"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <string>
#include <zlib.h>

namespace heirloom::guest {

namespace {

using Bytes = std::vector<std::uint8_t>;

constexpr std::array<std::uint8_t, 8> png_signature = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
constexpr std::size_t bitmap_header_bytes = 40; // BITMAPINFOHEADER

std::uint32_t be32(std::span<const std::uint8_t> b, std::size_t at) {
    return std::uint32_t(b[at]) << 24 | std::uint32_t(b[at + 1]) << 16 |
           std::uint32_t(b[at + 2]) << 8 | b[at + 3];
}
std::uint16_t le16(std::span<const std::uint8_t> b, std::size_t at) {
    return static_cast<std::uint16_t>(b[at] | b[at + 1] << 8);
}
std::uint32_t le32(std::span<const std::uint8_t> b, std::size_t at) {
    return std::uint32_t(b[at]) | std::uint32_t(b[at + 1]) << 8 | std::uint32_t(b[at + 2]) << 16 |
           std::uint32_t(b[at + 3]) << 24;
}

void put_be32(Bytes& out, std::uint32_t value) {
    for (int shift = 24; shift >= 0; shift -= 8)
        out.push_back(static_cast<std::uint8_t>(value >> shift));
}

std::uint32_t crc_of(std::span<const std::uint8_t> bytes) {
    return static_cast<std::uint32_t>(
        crc32(crc32(0, nullptr, 0), bytes.data(), static_cast<uInt>(bytes.size())));
}

std::string size_text(std::int64_t width, std::int64_t height) {
    return std::to_string(width) + "×" + std::to_string(height);
}

std::unexpected<Error> corrupt(std::string message) {
    return fail(Errc::corrupt, std::move(message));
}

bool valid_png_depth(std::uint8_t colour_type, std::uint8_t depth) {
    switch (colour_type) {
    case 0:
        return depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
    case 3:
        return depth == 1 || depth == 2 || depth == 4 || depth == 8;
    case 2:
    case 4:
    case 6:
        return depth == 8 || depth == 16;
    default:
        return false;
    }
}

// A PNG image passes through as it is, once its frame is sound: the host decodes it again with
// libpng under its own limits, so only what decides whether to take it is checked here.
Result<Bytes> check_png(std::span<const std::uint8_t> png, int width, int height) {
    constexpr std::size_t ihdr_end = 8 + 8 + 13 + 4;
    constexpr std::array<std::uint8_t, 12> iend = {0,   0,   0,    0,    'I',  'E',
                                                   'N', 'D', 0xae, 0x42, 0x60, 0x82};
    if (png.size() > max_icon_bytes)
        return corrupt("the PNG image is " + std::to_string(png.size()) +
                       " bytes, more than the 256 KiB an icon may be");
    if (png.size() < ihdr_end + iend.size())
        return corrupt("the PNG image is truncated (" + std::to_string(png.size()) + " bytes)");
    if (be32(png, 8) != 13 || !std::equal(png.begin() + 12, png.begin() + 16, "IHDR"))
        return corrupt("the PNG image does not start with its IHDR chunk");
    if (crc_of(png.subspan(12, 17)) != be32(png, 29))
        return corrupt("the PNG image's IHDR chunk fails its CRC");
    std::uint32_t png_width = be32(png, 16);
    std::uint32_t png_height = be32(png, 20);
    if (png_width == 0 || png_height == 0 || png_width > max_icon_pixels ||
        png_height > max_icon_pixels)
        return corrupt("the PNG image is " + size_text(png_width, png_height) +
                       ", not within 1×1 to 256×256");
    if (png_width != std::uint32_t(width) || png_height != std::uint32_t(height))
        return corrupt("the PNG image is " + size_text(png_width, png_height) +
                       " but its icon group says " + size_text(width, height));
    if (!valid_png_depth(png[25], png[24]) || png[26] != 0 || png[27] != 0 || png[28] > 1)
        return corrupt("the PNG image's IHDR has an invalid colour type, depth or method");
    if (!std::equal(iend.begin(), iend.end(), png.end() - iend.size()))
        return corrupt("the PNG image does not end with an IEND chunk (truncated?)");
    return Bytes(png.begin(), png.end());
}

// The fields of a BITMAPINFOHEADER that matter for an icon, and where its parts lie.
struct Bitmap {
    int width = 0;
    int height = 0; // of the image: the header's height counts the AND mask too
    int bits = 0;
    std::size_t colours = 0; // palette entries
    std::size_t palette = 0; // offsets into the image
    std::size_t pixels = 0;
    std::size_t mask = 0;
    std::size_t pixel_stride = 0;
    std::size_t mask_stride = 0;
};

Result<Bitmap> read_bitmap_header(std::span<const std::uint8_t> image, int width, int height) {
    if (image.size() < bitmap_header_bytes)
        return corrupt("the bitmap image is " + std::to_string(image.size()) +
                       " bytes, too short for its 40-byte header");
    std::uint32_t header_size = le32(image, 0);
    if (header_size != bitmap_header_bytes)
        return fail(Errc::unsupported,
                    "the bitmap image has a " + std::to_string(header_size) +
                        "-byte header; only BITMAPINFOHEADER (40 bytes) is read");
    auto header_width = static_cast<std::int32_t>(le32(image, 4));
    auto header_height = static_cast<std::int32_t>(le32(image, 8));
    if (header_width <= 0 || header_height <= 0 || header_width > max_icon_pixels ||
        header_height > 2 * max_icon_pixels)
        return corrupt("the bitmap image says it is " + size_text(header_width, header_height) +
                       " (image and mask), not within 1×2 to 256×512");
    if (header_width != width || header_height != 2 * height)
        return corrupt("the bitmap image is " + size_text(header_width, header_height) +
                       " (image and mask) but its icon group says " + size_text(width, height));
    if (le16(image, 12) != 1)
        return corrupt("the bitmap image has " + std::to_string(le16(image, 12)) +
                       " planes, not 1");
    Bitmap bitmap{.width = width, .height = height, .bits = le16(image, 14)};
    if (bitmap.bits != 1 && bitmap.bits != 4 && bitmap.bits != 8 && bitmap.bits != 24 &&
        bitmap.bits != 32)
        return fail(Errc::unsupported, "the bitmap image has " + std::to_string(bitmap.bits) +
                                           " bits per pixel; icons have 1, 4, 8, 24 or 32");
    if (std::uint32_t compression = le32(image, 16); compression != 0)
        return fail(Errc::unsupported, "the bitmap image is compressed (method " +
                                           std::to_string(compression) + "); icons are not");
    std::uint32_t used = le32(image, 32);
    std::uint32_t most = bitmap.bits <= 8 ? 1u << bitmap.bits : 256;
    if (used > most)
        return corrupt("the bitmap image says it uses " + std::to_string(used) +
                       " palette colours, more than " + std::to_string(most));
    bitmap.colours = used != 0 || bitmap.bits > 8 ? used : most;
    bitmap.pixel_stride = (std::size_t(width) * std::size_t(bitmap.bits) + 31) / 32 * 4;
    bitmap.mask_stride = (std::size_t(width) + 31) / 32 * 4;
    bitmap.palette = bitmap_header_bytes;
    bitmap.pixels = bitmap.palette + bitmap.colours * 4;
    bitmap.mask = bitmap.pixels + bitmap.pixel_stride * std::size_t(height);
    std::size_t end = bitmap.mask + bitmap.mask_stride * std::size_t(height);
    if (bitmap.pixels > image.size())
        return corrupt("the bitmap image's palette (" + std::to_string(bitmap.colours) +
                       " colours) runs past the end of its " + std::to_string(image.size()) +
                       " bytes");
    if (end > image.size())
        return corrupt("the bitmap image's rows and mask need " + std::to_string(end) +
                       " bytes but it has " + std::to_string(image.size()));
    return bitmap;
}

bool masked(std::span<const std::uint8_t> mask_row, int x) {
    return (mask_row[std::size_t(x) >> 3] >> (7 - (x & 7)) & 1) != 0;
}

std::size_t palette_index(std::span<const std::uint8_t> row, int bits, int x) {
    auto at = std::size_t(x);
    switch (bits) {
    case 1:
        return row[at >> 3] >> (7 - (at & 7)) & 1;
    case 4:
        return (at & 1) != 0 ? row[at >> 1] & 0x0f : row[at >> 1] >> 4;
    default:
        return row[at];
    }
}

// A 32-bit image whose alpha bytes are all zero is an old one that relies on its AND mask.
bool has_alpha(std::span<const std::uint8_t> image, const Bitmap& bitmap) {
    if (bitmap.bits != 32)
        return false;
    for (std::size_t i = 3; i < bitmap.pixel_stride * std::size_t(bitmap.height); i += 4)
        if (image[bitmap.pixels + i] != 0)
            return true;
    return false;
}

// Decodes the bitmap's bottom-up rows to top-down RGBA. Pixels the AND mask makes transparent
// become (0, 0, 0, 0) unless the image has its own alpha channel.
Result<Bytes> decode_bitmap(std::span<const std::uint8_t> image, const Bitmap& bitmap) {
    bool alpha = has_alpha(image, bitmap);
    Bytes rgba(std::size_t(bitmap.width) * std::size_t(bitmap.height) * 4);
    for (int y = 0; y < bitmap.height; ++y) {
        auto source_row = std::size_t(bitmap.height - 1 - y);
        auto row =
            image.subspan(bitmap.pixels + source_row * bitmap.pixel_stride, bitmap.pixel_stride);
        auto mask_row =
            image.subspan(bitmap.mask + source_row * bitmap.mask_stride, bitmap.mask_stride);
        for (int x = 0; x < bitmap.width; ++x) {
            auto* out = &rgba[(std::size_t(y) * std::size_t(bitmap.width) + std::size_t(x)) * 4];
            std::size_t bgr = 0; // offset of the pixel's blue, green, red bytes in image
            if (bitmap.bits <= 8) {
                std::size_t index = palette_index(row, bitmap.bits, x);
                if (index >= bitmap.colours)
                    return corrupt("pixel (" + std::to_string(x) + ", " + std::to_string(y) +
                                   ") of the bitmap image uses colour " + std::to_string(index) +
                                   " of a palette of " + std::to_string(bitmap.colours));
                bgr = bitmap.palette + index * 4;
            } else {
                bgr = bitmap.pixels + source_row * bitmap.pixel_stride +
                      std::size_t(x) * std::size_t(bitmap.bits / 8);
            }
            if (alpha) {
                out[3] = image[bgr + 3];
            } else if (masked(mask_row, x)) {
                continue; // stays (0, 0, 0, 0)
            } else {
                out[3] = 255;
            }
            out[0] = image[bgr + 2];
            out[1] = image[bgr + 1];
            out[2] = image[bgr];
        }
    }
    return rgba;
}

// The PNG row filter (0 none, 1 sub, 2 up) whose output has the smallest sum of magnitudes,
// the usual heuristic for what deflate compresses best.
void filter_row(std::span<const std::uint8_t> row, std::span<const std::uint8_t> above,
                Bytes& out) {
    auto filtered = [&](int type, std::size_t i) -> std::uint8_t {
        if (type == 1)
            return static_cast<std::uint8_t>(row[i] - (i >= 4 ? row[i - 4] : 0));
        if (type == 2)
            return static_cast<std::uint8_t>(row[i] - (above.empty() ? 0 : above[i]));
        return row[i];
    };
    int best = 0;
    std::uint64_t best_cost = UINT64_MAX;
    for (int type = 0; type <= 2; ++type) {
        std::uint64_t cost = 0;
        for (std::size_t i = 0; i < row.size(); ++i)
            cost += std::uint64_t(std::abs(static_cast<std::int8_t>(filtered(type, i))));
        if (cost < best_cost) {
            best = type;
            best_cost = cost;
        }
    }
    out.push_back(static_cast<std::uint8_t>(best));
    for (std::size_t i = 0; i < row.size(); ++i)
        out.push_back(filtered(best, i));
}

void put_chunk(Bytes& png, const char (&type)[5], std::span<const std::uint8_t> data) {
    put_be32(png, static_cast<std::uint32_t>(data.size()));
    std::size_t start = png.size();
    png.insert(png.end(), type, type + 4);
    png.insert(png.end(), data.begin(), data.end());
    put_be32(png, crc_of(std::span(png).subspan(start)));
}

} // namespace

Result<Bytes> encode_rgba_png(int width, int height, std::span<const std::uint8_t> rgba) {
    if (width <= 0 || height <= 0 || width > max_icon_pixels || height > max_icon_pixels ||
        rgba.size() != std::size_t(width) * std::size_t(height) * 4)
        return fail(Errc::invalid_argument, "cannot encode " + size_text(width, height) +
                                                " pixels from " + std::to_string(rgba.size()) +
                                                " bytes of RGBA");
    std::size_t stride = std::size_t(width) * 4;
    Bytes filtered;
    filtered.reserve((stride + 1) * std::size_t(height));
    for (std::size_t y = 0; y < std::size_t(height); ++y)
        filter_row(rgba.subspan(y * stride, stride),
                   y == 0 ? std::span<const std::uint8_t>()
                          : rgba.subspan((y - 1) * stride, stride),
                   filtered);
    Bytes deflated(compressBound(static_cast<uLong>(filtered.size())));
    auto deflated_size = static_cast<uLongf>(deflated.size());
    if (compress2(deflated.data(), &deflated_size, filtered.data(),
                  static_cast<uLong>(filtered.size()), Z_BEST_COMPRESSION) != Z_OK)
        return fail(Errc::io, "zlib could not compress the icon's pixels");
    deflated.resize(deflated_size);

    Bytes header;
    put_be32(header, static_cast<std::uint32_t>(width));
    put_be32(header, static_cast<std::uint32_t>(height));
    header.insert(header.end(), {8, 6, 0, 0, 0}); // 8-bit RGBA, deflate, no interlace
    Bytes png(png_signature.begin(), png_signature.end());
    put_chunk(png, "IHDR", header);
    put_chunk(png, "IDAT", deflated);
    put_chunk(png, "IEND", {});
    if (png.size() > max_icon_bytes)
        return corrupt("the icon's pixels make a PNG of " + std::to_string(png.size()) +
                       " bytes, more than the 256 KiB an icon may be");
    return png;
}

Result<Bytes> icon_image_png(std::span<const std::uint8_t> image, int width, int height) {
    if (image.size() >= png_signature.size() &&
        std::equal(png_signature.begin(), png_signature.end(), image.begin()))
        return check_png(image, width, height);
    auto bitmap = HL_TRY(read_bitmap_header(image, width, height));
    auto rgba = HL_TRY(decode_bitmap(image, bitmap));
    return encode_rgba_png(width, height, rgba);
}

} // namespace heirloom::guest
