#include "multipart.hpp"

#include <algorithm>
#include <limits>

namespace heirloom::trim::multipart {

namespace {

constexpr std::string_view crlf = "\r\n";

bool is_space(char c) {
    return c == ' ' || c == '\t';
}

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front()))
        s.remove_prefix(1);
    while (!s.empty() && is_space(s.back()))
        s.remove_suffix(1);
    return s;
}

char lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [](char x, char y) { return lower(x) == lower(y); });
}

// RFC 9110 token characters, used for header and parameter names.
bool is_token_char(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c))
        return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), is_token_char);
}

// RFC 2046 boundary characters ("bchars").
bool is_boundary_char(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c))
        return true;
    return std::string_view("'()+_,-./:=? ").find(c) != std::string_view::npos;
}

// Shows untrusted text in a message without control characters or unbounded length.
std::string quoted(std::string_view s) {
    constexpr std::size_t limit = 60;
    std::string out = "\"";
    for (char c : s.substr(0, limit))
        out += (c >= 0x20 && c < 0x7f) ? c : '?';
    if (s.size() > limit)
        out += "…";
    return out + "\"";
}

// Parses a decimal number without sign or spaces; nullopt on anything else or on overflow.
std::optional<std::uint64_t> parse_number(std::string_view s) {
    if (s.empty() || s.size() > 20)
        return std::nullopt;
    std::uint64_t v = 0;
    for (char c : s) {
        if (!is_digit(c))
            return std::nullopt;
        auto digit = static_cast<std::uint64_t>(c - '0');
        if (v > (std::numeric_limits<std::uint64_t>::max() - digit) / 10)
            return std::nullopt;
        v = v * 10 + digit;
    }
    return v;
}

} // namespace

Result<ContentRange> parse_content_range(std::string_view value) {
    std::string_view s = trim(value);
    auto bad = [&](std::string_view why) {
        return fail(Errc::corrupt,
                    "malformed Content-Range " + quoted(value) + ": " + std::string(why));
    };
    if (s.size() < 5 || !iequals(s.substr(0, 5), "bytes"))
        return bad("expected the unit \"bytes\"");
    s.remove_prefix(5);
    if (s.empty() || !is_space(s.front()))
        return bad("expected a space after \"bytes\"");
    s = trim(s);
    if (s.starts_with("*"))
        return bad("the server says the range is not satisfiable");
    std::size_t dash = s.find('-');
    std::size_t slash = s.find('/');
    if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash)
        return bad("expected FIRST-LAST/TOTAL");
    auto first = parse_number(s.substr(0, dash));
    auto last = parse_number(s.substr(dash + 1, slash - dash - 1));
    if (!first || !last)
        return bad("byte positions are not decimal numbers");
    ContentRange range;
    range.first = *first;
    range.last = *last;
    std::string_view total = s.substr(slash + 1);
    if (total != "*") {
        auto n = parse_number(total);
        if (!n)
            return bad("the object size is not a decimal number");
        range.total = *n;
    }
    if (range.first > range.last)
        return bad("the first byte comes after the last");
    // Keeps length() from overflowing; no real object is that large.
    if (range.last == std::numeric_limits<std::uint64_t>::max())
        return bad("the range is impossibly large");
    if (range.total && range.last >= *range.total)
        return bad("the range ends past the object size");
    return range;
}

Result<std::optional<std::string>> byteranges_boundary(std::string_view content_type) {
    std::string_view rest = content_type;
    std::size_t semi = rest.find(';');
    std::string_view media = trim(rest.substr(0, semi));
    if (!iequals(media, "multipart/byteranges"))
        return std::optional<std::string>();
    rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);

    std::optional<std::string> boundary;
    auto bad = [&](std::string_view why) {
        return fail(Errc::corrupt,
                    "malformed Content-Type " + quoted(content_type) + ": " + std::string(why));
    };
    // Parameters are "; name=value" with value a token or a quoted string, which may itself
    // contain ';'.
    while (!trim(rest).empty()) {
        rest = trim(rest);
        std::size_t eq = rest.find('=');
        if (eq == std::string_view::npos)
            return bad("parameter without '='");
        std::string_view name = trim(rest.substr(0, eq));
        if (!is_token(name))
            return bad("bad parameter name");
        rest.remove_prefix(eq + 1);
        rest = trim(rest);
        std::string value;
        if (rest.starts_with('"')) {
            std::size_t close = rest.find('"', 1);
            if (close == std::string_view::npos)
                return bad("unterminated quoted parameter");
            std::string_view inner = rest.substr(1, close - 1);
            if (inner.find('\\') != std::string_view::npos)
                return bad("escaped characters in a parameter");
            value = inner;
            rest.remove_prefix(close + 1);
        } else {
            std::size_t end = rest.find(';');
            value = trim(rest.substr(0, end));
            rest = end == std::string_view::npos ? std::string_view() : rest.substr(end);
        }
        rest = trim(rest);
        if (!rest.empty()) {
            if (rest.front() != ';')
                return bad("expected ';' between parameters");
            rest.remove_prefix(1);
        }
        if (!iequals(name, "boundary"))
            continue;
        if (boundary)
            return bad("more than one boundary parameter");
        if (value.empty() || value.size() > 200 || value.back() == ' ' ||
            !std::all_of(value.begin(), value.end(), is_boundary_char))
            return bad("the boundary is empty, too long or has characters RFC 2046 forbids");
        boundary = std::move(value);
    }
    if (!boundary)
        return bad("multipart/byteranges without a boundary parameter");
    return boundary;
}

Result<std::vector<Part>> parse_byteranges(std::string_view body, std::string_view boundary) {
    if (boundary.empty())
        return fail(Errc::corrupt, "multipart body: empty boundary");
    const std::string delimiter = "--" + std::string(boundary);

    // The first delimiter starts the body or a line; whatever comes before it is a preamble,
    // which RFC 2046 says to ignore.
    std::size_t pos = 0;
    if (!body.starts_with(delimiter)) {
        std::size_t found = body.find(std::string(crlf) + delimiter);
        if (found == std::string_view::npos)
            return fail(Errc::corrupt, "multipart body: the boundary " + quoted(boundary) +
                                           " from Content-Type never appears");
        pos = found + crlf.size();
    }
    pos += delimiter.size();

    std::vector<Part> parts;
    for (;;) {
        const std::string where = "multipart body: part " + std::to_string(parts.size() + 1);
        std::string_view rest = body.substr(pos);
        if (rest.starts_with("--"))
            break;
        // Transport padding may follow a delimiter before its line break.
        while (pos < body.size() && is_space(body[pos]))
            ++pos;
        if (body.substr(pos).empty())
            return fail(Errc::corrupt, where + ": the body ends after a boundary (truncated)");
        if (!body.substr(pos).starts_with(crlf))
            return fail(Errc::corrupt, where + ": boundary line has extra characters");
        pos += crlf.size();

        std::optional<ContentRange> range;
        for (;;) {
            std::size_t eol = body.find(crlf, pos);
            if (eol == std::string_view::npos)
                return fail(Errc::corrupt, where + ": headers are truncated");
            std::string_view line = body.substr(pos, eol - pos);
            pos = eol + crlf.size();
            if (line.empty())
                break;
            if (is_space(line.front()))
                return fail(Errc::corrupt, where + ": folded header line " + quoted(line));
            std::size_t colon = line.find(':');
            if (colon == std::string_view::npos || !is_token(line.substr(0, colon)))
                return fail(Errc::corrupt, where + ": malformed header line " + quoted(line));
            if (!iequals(line.substr(0, colon), "Content-Range"))
                continue;
            if (range)
                return fail(Errc::corrupt, where + ": more than one Content-Range header");
            auto parsed = parse_content_range(line.substr(colon + 1));
            if (!parsed)
                return std::unexpected(std::move(parsed).error().context(where));
            range = *parsed;
        }
        if (!range)
            return fail(Errc::corrupt, where + ": no Content-Range header");

        std::size_t left = body.size() - pos;
        if (range->length() > left)
            return fail(Errc::corrupt, where + ": data is truncated (Content-Range announces " +
                                           std::to_string(range->length()) +
                                           " bytes, the body has " + std::to_string(left) +
                                           " left)");
        Part part;
        part.range = *range;
        part.data_offset = pos;
        part.data_length = static_cast<std::size_t>(range->length());
        parts.push_back(part);
        pos += part.data_length;

        if (!body.substr(pos).starts_with(std::string(crlf) + delimiter))
            return fail(Errc::corrupt,
                        where + ": data is not followed by the boundary (wrong length or "
                                "truncated body)");
        pos += crlf.size() + delimiter.size();
    }
    pos += 2;

    // Only line breaks and padding may follow the closing delimiter; anything else means the
    // body is not what the server meant to send.
    std::string_view epilogue = body.substr(pos);
    if (!std::all_of(epilogue.begin(), epilogue.end(),
                     [](char c) { return is_space(c) || c == '\r' || c == '\n'; }))
        return fail(Errc::corrupt, "multipart body: unexpected data after the closing boundary");
    if (parts.empty())
        return fail(Errc::corrupt, "multipart body: no parts");
    return parts;
}

} // namespace heirloom::trim::multipart
