#pragma once

// Shared by the shell-integration tests: a private XDG home, policies built without the policy
// validator (the shell must stand on its own against hostile strings), PNGs made by libpng's
// own encoder, and desktop-file-validate.

#include "heirloom/shell/icon.hpp"
#include "heirloom/shell/menu.hpp"
#include "support/support.hpp"

#include <cstdlib>
#include <map>
#include <optional>

namespace heirloom::test {

// Sets environment variables for the life of the object, restoring them after.
class ScopedEnv {
  public:
    ScopedEnv(std::map<std::string, std::string> vars) {
        for (auto& [k, v] : vars) {
            const char* old = std::getenv(k.c_str());
            saved_[k] = old ? std::optional<std::string>(old) : std::nullopt;
            ::setenv(k.c_str(), v.c_str(), 1);
        }
    }
    ~ScopedEnv() {
        for (auto& [k, v] : saved_)
            v ? ::setenv(k.c_str(), v->c_str(), 1) : ::unsetenv(k.c_str());
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

  private:
    std::map<std::string, std::optional<std::string>> saved_;
};

// One user's desktop in a temporary folder.
struct ShellHome {
    TempDir dir;
    fs::path data = dir / "data";
    fs::path config = dir / "config";
    fs::path system = dir / "system"; // stands in for /usr/share
    ScopedEnv env{{{"HOME", (dir / "home").string()},
                   {"XDG_DATA_HOME", data.string()},
                   {"XDG_CONFIG_HOME", config.string()},
                   {"XDG_DATA_DIRS", system.string()},
                   {"XDG_CONFIG_DIRS", (dir / "etc-xdg").string()}}};
    shell::ShellPaths paths = shell::shell_paths(data, config);
    shell::Programs programs{"/opt/heirloom/bin/heirloom", "/opt/heirloom/bin/heirloom-open"};
};

inline policy::EffectiveWorkspace effective_workspace(std::string id, std::string name) {
    policy::EffectiveWorkspace w;
    w.workspace.id = std::move(id);
    w.workspace.display_name = std::move(name);
    return w;
}

inline policy::PublishedApp published_app(std::string id, std::string workspace_id,
                                          std::string name,
                                          std::vector<std::string> file_types = {},
                                          std::vector<std::string> url_patterns = {}) {
    policy::PublishedApp a;
    a.id = std::move(id);
    a.workspace_id = std::move(workspace_id);
    a.display_name = std::move(name);
    a.command = {"/usr/bin/true"};
    a.icon = "generic";
    a.file_types = std::move(file_types);
    a.url_patterns = std::move(url_patterns);
    return a;
}

// A w × h PNG of one colour (0xRRGGBB) with a black border, encoded by libpng.
inline Bytes make_png(std::uint32_t w, std::uint32_t h, std::uint32_t rgb) {
    Bytes pixels(std::size_t(w) * h * 4);
    for (std::uint32_t y = 0; y < h; ++y)
        for (std::uint32_t x = 0; x < w; ++x) {
            bool edge = x < w / 8 || y < h / 8 || x >= w - w / 8 || y >= h - h / 8;
            std::uint8_t* p = &pixels[(std::size_t(y) * w + x) * 4];
            p[0] = edge ? 0 : std::uint8_t(rgb >> 16);
            p[1] = edge ? 0 : std::uint8_t(rgb >> 8);
            p[2] = edge ? 0 : std::uint8_t(rgb);
            p[3] = 255;
        }
    auto png = shell::encode_png(w, h, pixels);
    return png ? *png : Bytes{};
}

// desktop-file-validate's output for path: empty when it has no error or warning. Every file
// we write must pass it, so a missing program is a failure, not a skip. Hints are left out on
// purpose: the one it gives ("X-Heirloom; is not a registered main category") is the point of
// our entries — a main category would show each app a second time outside the Heirloom submenu.
inline std::string desktop_file_problems(const fs::path& path) {
    if (!have_program("desktop-file-validate"))
        return "desktop-file-validate is not installed (apt-get install desktop-file-utils)";
    auto r = run({"desktop-file-validate", "--no-hints", path.string()});
    if (r.exit_code != 0 || !r.out.empty() || !r.err.empty())
        return path.string() + ": exit " + std::to_string(r.exit_code) + ": " + r.out + r.err;
    return {};
}

// Every regular file under dir.
inline std::vector<fs::path> files_under(const fs::path& dir) {
    std::vector<fs::path> out;
    std::error_code ec;
    for (const auto& e : fs::recursive_directory_iterator(dir, ec))
        if (e.is_regular_file() || e.is_symlink())
            out.push_back(e.path());
    return out;
}

} // namespace heirloom::test
