#include "heirloom/server/app_report.hpp"

#include "heirloom/common/json.hpp"
#include "heirloom/common/utf8.hpp"

#include <algorithm>
#include <array>
#include <set>

namespace heirloom::server {
namespace {

std::unexpected<Error> invalid(std::string_view path, std::string_view message) {
    return fail(Errc::invalid_argument, std::string(path) + ": " + std::string(message));
}

std::string at(std::string_view path, std::size_t index) {
    return std::string(path) + "[" + std::to_string(index) + "]";
}

bool is_lower_or_digit(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool is_alnum(char c) {
    return is_lower_or_digit(c) || (c >= 'A' && c <= 'Z');
}

bool is_control(std::uint32_t cp) {
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

// Characters that reorder or hide the text around them, so that what an admin reads is not
// what the text holds ("Payroll\u202eexe.gpj").
bool is_deceptive(std::uint32_t cp) {
    return cp == 0x00ad || cp == 0x061c || (cp >= 0x200b && cp <= 0x200f) ||
           (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x2069) || cp == 0xfeff;
}

// Why text is not one printable line, or an empty string when it is.
std::string line_problem(std::string_view text) {
    bool control = false, deceptive = false;
    if (!for_each_code_point(text, [&](std::uint32_t cp) {
            control = control || is_control(cp);
            deceptive = deceptive || is_deceptive(cp);
        }))
        return "is not valid UTF-8";
    if (control)
        return "holds control characters";
    if (deceptive)
        return "holds bidirectional or invisible formatting characters";
    return {};
}

Result<std::string> string_field(const Json& app, std::string_view key, std::string_view path) {
    auto it = app.find(key);
    if (it == app.end())
        return invalid(path, std::string(key) + ": missing");
    if (!it->is_string())
        return invalid(path, std::string(key) + ": expected a string");
    return it->get<std::string>();
}

std::uint32_t be32(ByteView b, std::size_t at) {
    return (std::uint32_t(b[at]) << 24) | (std::uint32_t(b[at + 1]) << 16) |
           (std::uint32_t(b[at + 2]) << 8) | std::uint32_t(b[at + 3]);
}

bool valid_png_depth(std::uint8_t depth, std::uint8_t colour) {
    switch (colour) {
    case 0: // grey
        return depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
    case 3: // palette
        return depth == 1 || depth == 2 || depth == 4 || depth == 8;
    case 2: // RGB
    case 4: // grey and alpha
    case 6: // RGBA
        return depth == 8 || depth == 16;
    default:
        return false;
    }
}

int base64_value(char c) {
    constexpr std::string_view alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    auto pos = alphabet.find(c);
    return pos == std::string_view::npos ? -1 : static_cast<int>(pos);
}

Result<ReportedApp> parse_app(const Json& entry, const std::string& path) {
    if (!entry.is_object())
        return invalid(path, "expected an object");
    for (const auto& [key, value] : entry.items())
        if (key != "id" && key != "name" && key != "command" && key != "file_types" &&
            key != "icon_png_base64")
            return invalid(path, key.substr(0, 64) + ": unknown field");
    ReportedApp app;
    app.id = HL_TRY(string_field(entry, "id", path));
    HL_TRY(check_app_id(app.id, path + ".id"));
    app.name = HL_TRY(string_field(entry, "name", path));
    HL_TRY(check_app_name(app.name, path + ".name"));
    app.command = HL_TRY(string_field(entry, "command", path));
    HL_TRY(check_app_command(app.command, path + ".command"));
    auto types = entry.find("file_types");
    if (types == entry.end() || !types->is_array())
        return invalid(path, "file_types: expected a list of MIME types");
    if (types->size() > max_app_file_types)
        return invalid(path + ".file_types",
                       "more than " + std::to_string(max_app_file_types) + " MIME types");
    for (std::size_t i = 0; i < types->size(); ++i) {
        const auto& type = (*types)[i];
        if (!type.is_string())
            return invalid(at(path + ".file_types", i), "expected a string");
        HL_TRY(check_mime_type(type.get_ref<const std::string&>(), at(path + ".file_types", i)));
        app.file_types.push_back(type.get<std::string>());
    }
    if (auto icon = entry.find("icon_png_base64"); icon != entry.end()) {
        if (!icon->is_string())
            return invalid(path, "icon_png_base64: expected a string");
        const auto& text = icon->get_ref<const std::string&>();
        if (text.size() > (max_app_icon_bytes + 2) / 3 * 4)
            return invalid(path + ".icon_png_base64", "the icon is larger than " +
                                                          std::to_string(max_app_icon_bytes >> 10) +
                                                          " KiB");
        app.icon_png = HL_TRY_CTX(decode_base64(text), path + ".icon_png_base64");
        HL_TRY_CTX(check_icon_png(app.icon_png), path + ".icon_png_base64");
    }
    return app;
}

} // namespace

Status check_app_id(std::string_view id, std::string_view path) {
    if (id.empty() || id.size() > max_app_id_bytes)
        return invalid(path, "expected an id of 1 to 64 characters");
    if (!is_lower_or_digit(id.front()))
        return invalid(path, "an app id starts with a lowercase letter or a digit");
    for (char c : id)
        if (!is_lower_or_digit(c) && c != '.' && c != '_' && c != '-')
            return invalid(path, "an app id may hold only a-z, 0-9, '.', '_' and '-'");
    return {};
}

Status check_app_name(std::string_view name, std::string_view path) {
    if (name.empty() || name.size() > max_app_name_bytes)
        return invalid(path,
                       "expected a name of 1 to " + std::to_string(max_app_name_bytes) + " bytes");
    if (auto problem = line_problem(name); !problem.empty())
        return invalid(path, "the name " + problem);
    return {};
}

Status check_app_command(std::string_view command, std::string_view path) {
    if (command.size() > max_app_command_bytes)
        return invalid(path, "longer than " + std::to_string(max_app_command_bytes) + " bytes");
    if (auto problem = line_problem(command); !problem.empty())
        return invalid(path, "the command " + problem);
    return {};
}

Status check_mime_type(std::string_view type, std::string_view path) {
    auto slash = type.find('/');
    auto restricted = [](std::string_view name) {
        return !name.empty() && name.size() <= max_mime_type_bytes && is_alnum(name.front()) &&
               std::all_of(name.begin(), name.end(), [](char c) {
                   return is_alnum(c) ||
                          std::string_view("!#$&-^_.+").find(c) != std::string_view::npos;
               });
    };
    if (type.size() > max_mime_type_bytes || slash == std::string_view::npos ||
        !restricted(type.substr(0, slash)) || !restricted(type.substr(slash + 1)))
        return invalid(path, "expected a MIME type such as application/pdf");
    return {};
}

Status check_icon_png(ByteView png) {
    constexpr std::array<std::uint8_t, 8> signature = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (png.size() > max_app_icon_bytes)
        return fail(Errc::invalid_argument,
                    "the icon is larger than " + std::to_string(max_app_icon_bytes >> 10) + " KiB");
    // Signature, IHDR (length, type, 13 bytes, CRC) and IEND (length, type, CRC).
    if (png.size() < 8 + 25 + 12 || !std::equal(signature.begin(), signature.end(), png.begin()))
        return fail(Errc::invalid_argument, "the icon is not a PNG file");
    if (be32(png, 8) != 13 || !std::equal(png.begin() + 12, png.begin() + 16, "IHDR"))
        return fail(Errc::invalid_argument, "the icon's PNG does not start with its header");
    std::uint32_t width = be32(png, 16), height = be32(png, 20);
    if (width == 0 || height == 0 || width > max_app_icon_dimension ||
        height > max_app_icon_dimension)
        return fail(Errc::invalid_argument,
                    "the icon is " + std::to_string(width) + "×" + std::to_string(height) +
                        " pixels; icons are 1 to " + std::to_string(max_app_icon_dimension) +
                        " pixels on each side");
    if (!valid_png_depth(png[24], png[25]) || png[26] != 0 || png[27] != 0 || png[28] > 1)
        return fail(Errc::invalid_argument, "the icon's PNG header is not valid");
    constexpr std::array<std::uint8_t, 12> iend = {0,   0,   0,    0,    'I',  'E',
                                                   'N', 'D', 0xae, 0x42, 0x60, 0x82};
    if (!std::equal(iend.begin(), iend.end(), png.end() - 12))
        return fail(Errc::invalid_argument, "the icon's PNG is truncated (it has no end)");
    return {};
}

Result<Bytes> decode_base64(std::string_view text) {
    if (text.size() % 4 != 0)
        return fail(Errc::invalid_argument, "not valid base64 (its length is not a multiple of 4)");
    Bytes out;
    out.reserve(text.size() / 4 * 3);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        bool last = i + 4 == text.size();
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; ++k) {
            char c = text[i + k];
            if (c == '=' && last && k >= 2) {
                v[k] = 0;
                ++pad;
                continue;
            }
            v[k] = base64_value(c);
            if (v[k] < 0 || pad > 0)
                return fail(Errc::invalid_argument, "not valid base64");
        }
        std::uint32_t n = (std::uint32_t(v[0]) << 18) | (std::uint32_t(v[1]) << 12) |
                          (std::uint32_t(v[2]) << 6) | std::uint32_t(v[3]);
        // Canonical: the bits under the padding are zero.
        if ((pad == 1 && (n & 0xff) != 0) || (pad == 2 && (n & 0xffff) != 0))
            return fail(Errc::invalid_argument, "not valid base64 (not canonical)");
        out.push_back(std::uint8_t(n >> 16));
        if (pad < 2)
            out.push_back(std::uint8_t(n >> 8));
        if (pad < 1)
            out.push_back(std::uint8_t(n));
    }
    return out;
}

Result<std::vector<ReportedApp>> parse_app_report(std::string_view body) {
    if (body.size() > max_app_report_body)
        return fail(Errc::invalid_argument, "the report is larger than " +
                                                std::to_string(max_app_report_body >> 20) + " MiB");
    Json doc = HL_TRY_CTX(parse_json(body, max_app_report_body), "app report");
    if (!doc.is_object())
        return fail(Errc::invalid_argument, "app report: expected a JSON object");
    for (const auto& [key, value] : doc.items())
        if (key != "apps")
            return fail(Errc::invalid_argument,
                        "app report: " + key.substr(0, 64) + ": unknown field");
    auto apps = doc.find("apps");
    if (apps == doc.end() || !apps->is_array())
        return fail(Errc::invalid_argument, "app report: apps: expected a list");
    if (apps->size() > max_reported_apps)
        return fail(Errc::invalid_argument,
                    "app report: more than " + std::to_string(max_reported_apps) + " apps");
    std::vector<ReportedApp> out;
    std::set<std::string> seen;
    for (std::size_t i = 0; i < apps->size(); ++i) {
        auto app = HL_TRY_CTX(parse_app((*apps)[i], at("apps", i)), "app report");
        if (!seen.insert(app.id).second)
            return fail(Errc::invalid_argument,
                        "app report: " + at("apps", i) + ": the id " + app.id + " is repeated");
        out.push_back(std::move(app));
    }
    return out;
}

} // namespace heirloom::server
