#include "heirloom/shell/open_url.hpp"

#include "heirloom/shell/mimeapps.hpp"
#include "heirloom/shell/url_route.hpp"

#include <cstdlib>
#include <cstring>
#include <fmt/core.h>
#include <unistd.h>

namespace heirloom::shell {

Result<std::vector<std::string>> open_command(const ShellPaths& paths, const Programs& programs,
                                              std::string_view url, std::string_view browser) {
    RoutesFile routes;
    if (auto text = read_text_file(paths.routes_file(), 1 << 20)) {
        auto doc = HL_TRY_CTX(parse_json(*text), paths.routes_file().string());
        routes = HL_TRY_CTX(routes_from_json(doc), paths.routes_file().string());
    }
    if (auto app = route_url(routes.routes, url))
        return std::vector<std::string>{programs.heirloom.string(), "launch", *app,
                                        std::string(url)};
    if (!routes.previous_handler.empty() && routes.previous_handler != "heirloom-open.desktop")
        if (auto file = find_desktop_file(routes.previous_handler))
            return std::vector<std::string>{"gio", "launch", file->string(), std::string(url)};
    if (!browser.empty())
        return std::vector<std::string>{std::string(browser), std::string(url)};
    return fail(Errc::not_found, "no browser of this computer is known to open it: set one with "
                                 "`xdg-settings set default-web-browser NAME.desktop` or $BROWSER");
}

int open_main(int argc, char** argv) {
    constexpr std::string_view usage =
        "usage: heirloom-open URL\n"
        "Opens URL in the workspace whose URL patterns match it, otherwise in this computer's "
        "browser (docs/shell-integration.md).\n";
    if (argc == 2 && (std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h")) {
        fmt::print("{}", usage);
        return 0;
    }
    if (argc != 2 || std::string_view(argv[1]).starts_with("-")) {
        fmt::print(stderr, "{}", usage);
        return 2;
    }
    if (std::getenv(open_guard_variable)) {
        fmt::print(stderr, "heirloom-open: the host's browser handed the link back to Heirloom; "
                           "choose another default browser\n");
        return 1;
    }
    auto paths = default_shell_paths();
    char self[4096] = {};
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    auto programs = n > 0 ? programs_in(fs::path(std::string(self, n)).parent_path())
                          : Result<Programs>(fail(Errc::io, "cannot find my own folder"));
    if (!paths || !programs) {
        fmt::print(stderr, "heirloom-open: {}\n",
                   (!paths ? paths.error() : programs.error()).message);
        return 1;
    }
    const char* browser = std::getenv("BROWSER");
    auto command = open_command(*paths, *programs, argv[1], browser ? browser : "");
    if (!command) {
        fmt::print(stderr, "heirloom-open: {}: {}\n", argv[1], command.error().message);
        return 1;
    }
    ::setenv(open_guard_variable, "1", 1);
    std::vector<char*> args;
    for (auto& a : *command)
        args.push_back(a.data());
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    fmt::print(stderr, "heirloom-open: cannot run {}: {}\n", (*command)[0], std::strerror(errno));
    return 1;
}

} // namespace heirloom::shell
