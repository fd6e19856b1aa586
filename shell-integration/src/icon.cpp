#include "heirloom/shell/icon.hpp"

#include <algorithm>
#include <cstring>
#include <png.h>
#include <vector>

namespace heirloom::shell {
namespace {

// Frees a png_image however decoding ended.
struct ImageGuard {
    png_image* image;
    ~ImageGuard() { png_image_free(image); }
};

std::string png_message(const png_image& image) {
    std::string text(image.message, strnlen(image.message, sizeof image.message));
    return text.empty() ? "unknown libpng error" : text;
}

// Scales an RGBA image (premultiplied while averaging, so transparent pixels do not darken the
// edges) into a size × size square, aspect kept and centred on transparency.
Bytes scale_into_square(const std::vector<std::uint8_t>& rgba, std::uint32_t w, std::uint32_t h,
                        std::uint32_t size) {
    Bytes out(std::size_t(size) * size * 4, 0);
    double scale = std::min(double(size) / w, double(size) / h);
    auto out_w = std::max<std::uint32_t>(1, std::uint32_t(w * scale + 0.5));
    auto out_h = std::max<std::uint32_t>(1, std::uint32_t(h * scale + 0.5));
    std::uint32_t x0 = (size - out_w) / 2, y0 = (size - out_h) / 2;
    for (std::uint32_t oy = 0; oy < out_h; ++oy) {
        std::uint32_t sy0 = std::uint32_t(std::uint64_t(oy) * h / out_h);
        std::uint32_t sy1 = std::max(sy0 + 1, std::uint32_t(std::uint64_t(oy + 1) * h / out_h));
        for (std::uint32_t ox = 0; ox < out_w; ++ox) {
            std::uint32_t sx0 = std::uint32_t(std::uint64_t(ox) * w / out_w);
            std::uint32_t sx1 = std::max(sx0 + 1, std::uint32_t(std::uint64_t(ox + 1) * w / out_w));
            double r = 0, g = 0, b = 0, a = 0;
            double n = double(sy1 - sy0) * (sx1 - sx0);
            for (std::uint32_t sy = sy0; sy < sy1; ++sy)
                for (std::uint32_t sx = sx0; sx < sx1; ++sx) {
                    const std::uint8_t* p = &rgba[(std::size_t(sy) * w + sx) * 4];
                    double alpha = p[3] / 255.0;
                    r += p[0] * alpha;
                    g += p[1] * alpha;
                    b += p[2] * alpha;
                    a += p[3];
                }
            std::uint8_t* q = &out[(std::size_t(y0 + oy) * size + x0 + ox) * 4];
            double alpha = a / n / 255.0;
            auto channel = [&](double sum) {
                return std::uint8_t(alpha > 0 ? std::clamp(sum / n / alpha + 0.5, 0.0, 255.0) : 0);
            };
            q[0] = channel(r);
            q[1] = channel(g);
            q[2] = channel(b);
            q[3] = std::uint8_t(std::clamp(a / n + 0.5, 0.0, 255.0));
        }
    }
    return out;
}

} // namespace

Result<Bytes> convert_icon(std::span<const std::uint8_t> png) {
    if (png.empty())
        return fail(Errc::corrupt, "icon: empty");
    if (png.size() > max_icon_file_bytes)
        return fail(Errc::corrupt, "icon: larger than 256 KiB");
    if (png.size() < 8 || png_sig_cmp(png.data(), 0, 8) != 0)
        return fail(Errc::corrupt, "icon: not a PNG file");

    png_image image{};
    image.version = PNG_IMAGE_VERSION;
    ImageGuard guard{&image};
    if (!png_image_begin_read_from_memory(&image, png.data(), png.size()))
        return fail(Errc::corrupt, "icon: " + png_message(image));
    if (image.warning_or_error != 0)
        return fail(Errc::corrupt, "icon: " + png_message(image));
    if (image.width == 0 || image.height == 0 || image.width > max_icon_dimension ||
        image.height > max_icon_dimension)
        return fail(Errc::corrupt, "icon: " + std::to_string(image.width) + "×" +
                                       std::to_string(image.height) +
                                       " pixels (at most 1024×1024 are accepted)");
    image.format = PNG_FORMAT_RGBA;
    std::vector<std::uint8_t> pixels(PNG_IMAGE_SIZE(image));
    if (!png_image_finish_read(&image, nullptr, pixels.data(), 0, nullptr))
        return fail(Errc::corrupt, "icon: " + png_message(image));
    if (image.warning_or_error != 0)
        return fail(Errc::corrupt, "icon: " + png_message(image));
    std::uint32_t width = image.width, height = image.height;

    return encode_png(icon_size, icon_size, scale_into_square(pixels, width, height, icon_size));
}

Result<Bytes> encode_png(std::uint32_t width, std::uint32_t height,
                         std::span<const std::uint8_t> rgba) {
    if (width == 0 || height == 0 || rgba.size() != std::size_t(width) * height * 4)
        return fail(Errc::invalid_argument, "icon: pixels do not match the size");
    png_image out{};
    out.version = PNG_IMAGE_VERSION;
    out.width = width;
    out.height = height;
    out.format = PNG_FORMAT_RGBA;
    ImageGuard out_guard{&out};
    png_alloc_size_t size = 0;
    if (!png_image_write_to_memory(&out, nullptr, &size, 0, rgba.data(), 0, nullptr))
        return fail(Errc::io, "icon: encoding failed: " + png_message(out));
    Bytes encoded(size);
    if (!png_image_write_to_memory(&out, encoded.data(), &size, 0, rgba.data(), 0, nullptr))
        return fail(Errc::io, "icon: encoding failed: " + png_message(out));
    encoded.resize(size);
    return encoded;
}

} // namespace heirloom::shell
