#include "heirloom/shell/desktop_entry.hpp"

#include <cstdint>

namespace heirloom::shell {
namespace {

// Decodes one UTF-8 character at text[i]; returns its length (0 when invalid) and sets cp.
std::size_t decode_utf8(std::string_view text, std::size_t i, char32_t& cp) {
    auto byte = [&](std::size_t k) {
        return static_cast<unsigned char>(text[k]);
    };
    unsigned char c = byte(i);
    std::size_t len = c < 0x80         ? 1
                      : (c >> 5) == 6  ? 2
                      : (c >> 4) == 14 ? 3
                      : (c >> 3) == 30 ? 4
                                       : 0;
    if (len == 0 || i + len > text.size())
        return 0;
    if (len == 1) {
        cp = c;
        return 1;
    }
    cp = c & (0x7f >> len);
    for (std::size_t k = 1; k < len; ++k) {
        if ((byte(i + k) & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (byte(i + k) & 0x3f);
    }
    static constexpr char32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < smallest[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0; // overlong, out of range or a surrogate
    return len;
}

// Characters that change how text around them reads, or hide: controls, bidirectional
// embeddings, overrides and isolates, zero-width characters, line and paragraph separators.
bool is_hiding(char32_t cp) {
    return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) || cp == 0xad ||
           (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) ||
           (cp >= 0x2060 && cp <= 0x206f) || cp == 0xfeff || (cp >= 0xfff9 && cp <= 0xfffb);
}

bool id_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

} // namespace

std::string clean_name(std::string_view name, std::size_t max_bytes) {
    std::string out;
    bool space = true; // drops leading spaces and collapses runs
    for (std::size_t i = 0; i < name.size();) {
        char32_t cp = 0;
        std::size_t len = decode_utf8(name, i, cp);
        std::string_view piece = len ? name.substr(i, len) : std::string_view("\xEF\xBF\xBD");
        i += len ? len : 1;
        if (len && (is_hiding(cp) || cp == ' ' || cp == 0xa0 || cp == 0x3000)) {
            if (!space)
                out += ' ';
            space = true;
            continue;
        }
        if (out.size() + piece.size() > max_bytes)
            break;
        out += piece;
        space = false;
    }
    while (!out.empty() && out.back() == ' ')
        out.pop_back();
    return out;
}

std::string entry_name(std::string_view app_name, std::string_view app_id,
                       std::string_view workspace_name, std::string_view workspace_id) {
    std::string app = clean_name(app_name);
    if (app.empty())
        app = app_id;
    std::string workspace = clean_name(workspace_name, 64);
    if (workspace.empty())
        workspace = workspace_id;
    return app + " (" + workspace + ")";
}

std::string escape_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        switch (c) {
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\t':
            out += "\\t";
            break;
        case '\r':
            out += "\\r";
            break;
        default:
            out += c;
        }
    }
    return out;
}

std::optional<std::string> theme_icon_name(std::string_view icon) {
    if (icon.empty() || icon.size() > 64 || icon.front() == '-')
        return std::nullopt;
    for (char c : icon)
        if (!id_char(c) || c == '.')
            return std::nullopt;
    return std::string(icon);
}

bool is_mime_type(std::string_view type) {
    auto slash = type.find('/');
    if (type.empty() || type.size() > 127 || slash == 0 || slash == std::string_view::npos ||
        slash + 1 == type.size() || type.find('/', slash + 1) != std::string_view::npos)
        return false;
    for (std::size_t i = 0; i < type.size(); ++i) {
        char c = type[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        // RFC 6838 restricted names: the first character of each part is alphanumeric.
        if (i == 0 || i == slash + 1) {
            if (!alnum)
                return false;
            continue;
        }
        if (!alnum && c != '/' && std::string_view("!#$&-^_.+").find(c) == std::string_view::npos)
            return false;
    }
    return true;
}

bool is_safe_id(std::string_view id) {
    if (id.empty() || id.size() > 64 || id.front() == '.')
        return false;
    for (char c : id)
        if (!id_char(c))
            return false;
    return true;
}

} // namespace heirloom::shell
