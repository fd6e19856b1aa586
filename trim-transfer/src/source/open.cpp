#include "backends.hpp"
#include "heirloom/common/url.hpp"
#include "heirloom/trim/source.hpp"

#include <algorithm>

namespace heirloom::trim {

namespace {

bool is_path_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-' || c == '/';
}

} // namespace

bool valid_object_path(std::string_view path) {
    // Long enough for any real object name, short enough to stay far below PATH_MAX and
    // request-line limits.
    if (path.empty() || path.size() > 1024)
        return false;
    if (!std::all_of(path.begin(), path.end(), is_path_char))
        return false;
    // Splitting on '/' also catches a leading or trailing '/' and "//" as empty components.
    // "." is refused along with "..": HTTP servers normalise it away, folders do not, and no
    // object needs it.
    std::size_t start = 0;
    for (;;) {
        std::size_t end = path.find('/', start);
        std::string_view part =
            path.substr(start, end == std::string_view::npos ? end : end - start);
        if (part.empty() || part == "." || part == "..")
            return false;
        if (end == std::string_view::npos)
            return true;
        start = end + 1;
    }
}

Result<std::unique_ptr<ObjectSource>> open_source(std::string_view spec,
                                                  const SourceOptions& options) {
    if (spec.empty())
        return fail(Errc::invalid_argument,
                    "no image source given; pass a folder path or an http(s):// URL");
    if (options.timeout_seconds < 1)
        return fail(Errc::invalid_argument, "the source timeout must be at least 1 second, not " +
                                                std::to_string(options.timeout_seconds));
    if (options.max_connections < 1)
        return fail(Errc::invalid_argument, "the source needs at least 1 connection, not " +
                                                std::to_string(options.max_connections));

    if (starts_with_nocase(spec, "http://") || starts_with_nocase(spec, "https://"))
        return detail::make_http_source(spec, options);
    std::size_t scheme_end = spec.find("://");
    if (scheme_end != std::string_view::npos && scheme_end > 0 &&
        spec.substr(0, scheme_end).find('/') == std::string_view::npos)
        return fail(Errc::unsupported, "cannot read images from \"" + std::string(spec) +
                                           "\": only http:// and https:// URLs and folder "
                                           "paths are supported");

    fs::path root{std::string(spec)};
    std::error_code ec;
    fs::file_status st = fs::status(root, ec);
    if (st.type() == fs::file_type::not_found)
        return fail(Errc::not_found, "image source folder " + root.string() +
                                         " does not exist; check the path (is the removable "
                                         "media mounted?)");
    if (ec)
        return fail(Errc::io, "image source folder " + root.string() + ": " + ec.message());
    if (st.type() != fs::file_type::directory)
        return fail(Errc::invalid_argument, "image source " + root.string() +
                                                " is not a folder; pass the repository folder "
                                                "or an http(s):// URL");
    return detail::make_folder_source(root);
}

} // namespace heirloom::trim
