// The desktop's side under a real X server (Xvfb): the real xdg-open and gio dispatch a file and
// links through our entries, and a real XDG menu renderer (lxpanel) shows the Heirloom submenu
// with the guests' icons.
//
// In the dispatch test the entries run a small recording script in place of `heirloom`: what is
// tested is the desktop's dispatch (mimeapps.list, MimeType=, %f and %u, heirloom-open's choice),
// not the agent's launch, which tests/shell-integration/agent_menu_test.cpp covers.

#include "heirloom/shell/url_route.hpp"
#include "shell-integration/shell_fixture.hpp"
#include "support/skip.hpp"
#include "support/xvfb.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <csignal>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace heirloom;
using namespace std::chrono_literals;

namespace {

// A private desktop user: XDG folders, the environment its programs run with.
struct Desktop {
    test::TempDir dir;
    fs::path data = dir / "data";
    fs::path config = dir / "config";
    fs::path system = dir / "system";
    fs::path bin = dir / "bin";
    fs::path runtime = dir / "run";
    fs::path record = dir / "record.txt";
    shell::ShellPaths paths = shell::shell_paths(data, config);
    std::string display;

    Desktop() {
        fs::create_directories(runtime);
        fs::permissions(runtime, fs::perms::owner_all);
        fs::create_directories(system);
        // The system's icon themes and MIME database, but none of its applications.
        fs::create_directory_symlink("/usr/share/icons", system / "icons");
        fs::create_directory_symlink("/usr/share/mime", system / "mime");
    }

    std::vector<std::string> environment() const {
        return {"HOME=" + (dir / "home").string(),
                "XDG_DATA_HOME=" + data.string(),
                "XDG_CONFIG_HOME=" + config.string(),
                "XDG_DATA_DIRS=" + system.string(),
                "XDG_CONFIG_DIRS=/etc/xdg",
                "XDG_RUNTIME_DIR=" + runtime.string(),
                "XDG_CACHE_HOME=" + (dir / "cache").string(),
                "XDG_MENU_PREFIX=lxde-",
                "DISPLAY=" + display,
                "PATH=/usr/bin:/bin",
                "LANG=C.UTF-8",
                "RECORD=" + record.string()};
    }
    // argv run with exactly this environment.
    std::vector<std::string> with_env(std::vector<std::string> argv) const {
        std::vector<std::string> out{"env", "-i"};
        auto env = environment();
        out.insert(out.end(), env.begin(), env.end());
        out.insert(out.end(), argv.begin(), argv.end());
        return out;
    }
    test::RunResult run(std::vector<std::string> argv) const { return test::run(with_env(argv)); }

    // An executable script at bin/name.
    void script(const std::string& name, const std::string& body) const {
        test::write_file(bin / name, as_bytes("#!/bin/sh\n" + body));
        fs::permissions(bin / name, fs::perms::owner_all | fs::perms::group_read |
                                        fs::perms::group_exec | fs::perms::others_read |
                                        fs::perms::others_exec);
    }

    // Waits until the record file holds line.
    bool wait_for_record(const std::string& line, std::chrono::milliseconds timeout) const {
        auto end = std::chrono::steady_clock::now() + timeout;
        do {
            auto text = read_text_file(record);
            if (text && text->find(line + "\n") != std::string::npos)
                return true;
            std::this_thread::sleep_for(50ms);
        } while (std::chrono::steady_clock::now() < end);
        return false;
    }
    std::string recorded() const {
        auto text = read_text_file(record);
        return text ? *text : std::string();
    }
};

// Ends the processes whose command line mentions marker (helpers a program started for this
// test's private folder, such as lxpanel's menu-cached), each by its pid.
void end_helpers_of(const std::string& marker) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/proc", ec)) {
        std::string name = entry.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos)
            continue;
        auto cmdline = read_text_file(entry.path() / "cmdline", 1 << 16);
        if (cmdline && cmdline->find(marker) != std::string::npos)
            ::kill(std::stoi(name), SIGTERM);
    }
}

// The first of the desktop's programs that is not installed, or empty.
std::string missing_desktop_tool() {
    for (std::string p : {"xdg-open", "xdg-mime", "gio", "Xvfb", "desktop-file-validate"})
        if (!test::have_program(p))
            return p;
    return {};
}

} // namespace

TEST_CASE("shell: xdg-open and gio dispatch a file and links through our entries", "[shell]") {
    if (std::string tool = missing_desktop_tool(); !tool.empty())
        HL_SKIP(tool + " is not installed (installer/install-deps.sh)");
    test::Xvfb x(800, 600);
    REQUIRE(x.running());
    Desktop d;
    d.display = x.display();
    // The recording stand-in for heirloom, the real heirloom-open beside it (it runs the
    // heirloom of its own folder), and a host browser that was the default before us.
    d.script("heirloom", "printf 'heirloom' >> \"$RECORD\"\n"
                         "for a in \"$@\"; do printf ' [%s]' \"$a\" >> \"$RECORD\"; done\n"
                         "echo >> \"$RECORD\"\n");
    fs::copy_file(test::bin_dir() / "heirloom-open", d.bin / "heirloom-open");
    d.script("host-browser", "echo \"host-browser [$1]\" >> \"$RECORD\"\n");
    test::write_file(d.data / "applications" / "host-browser.desktop",
                     as_bytes("[Desktop Entry]\nType=Application\nName=Host browser\nExec=" +
                              (d.bin / "host-browser").string() +
                              " %u\nMimeType=x-scheme-handler/http;x-scheme-handler/https;\n"));
    test::write_file(d.paths.mimeapps,
                     as_bytes(std::string("[Default Applications]\n"
                                          "x-scheme-handler/http=host-browser.desktop;\n"
                                          "x-scheme-handler/https=host-browser.desktop;\n")));

    policy::EffectivePolicy policy;
    policy.workspaces = {test::effective_workspace("office", "Office 2003")};
    policy.apps = {test::published_app("notepad", "office", "Notepad", {"text/plain"}),
                   test::published_app("ie", "office", "Internet Explorer", {},
                                       {"https://intranet.example/*"})};
    {
        test::ScopedEnv env({{"XDG_DATA_HOME", d.data.string()},
                             {"XDG_CONFIG_HOME", d.config.string()},
                             {"XDG_DATA_DIRS", d.system.string()},
                             {"XDG_CONFIG_DIRS", "/etc/xdg"}});
        auto published =
            shell::publish(d.paths, {d.bin / "heirloom", d.bin / "heirloom-open"}, policy);
        REQUIRE(published);
    }
    CHECK(d.run({"xdg-mime", "query", "default", "x-scheme-handler/https"}).out ==
          "heirloom-open.desktop\n");
    auto set = d.run({"xdg-mime", "default", "heirloom-office-notepad.desktop", "text/plain"});
    REQUIRE(set.exit_code == 0);

    SECTION("a text file opened with xdg-open reaches heirloom launch --file") {
        fs::path file = d.dir / "docs" / "report 2004.txt";
        test::write_file(file, as_bytes(std::string("hello\n")));
        auto r = d.run({"xdg-open", file.string()});
        INFO(r.out << r.err << d.recorded());
        CHECK(r.exit_code == 0);
        CHECK(
            d.wait_for_record("heirloom [launch] [notepad] [--file] [" + file.string() + "]", 10s));
    }
    SECTION("links: the workspace's patterns go to its browser, others to the host's") {
        auto inside = d.run({"gio", "open", "https://intranet.example/pay?id=7"});
        INFO(inside.out << inside.err << d.recorded());
        CHECK(inside.exit_code == 0);
        CHECK(d.wait_for_record("heirloom [launch] [ie] [https://intranet.example/pay?id=7]", 10s));
        auto outside = d.run({"gio", "open", "https://intranet.example.evil.com/"});
        CHECK(outside.exit_code == 0);
        CHECK(d.wait_for_record("host-browser [https://intranet.example.evil.com/]", 10s));
        // xdg-open takes the same way.
        auto xdg = d.run({"xdg-open", "https://intranet.example/x"});
        CHECK(xdg.exit_code == 0);
        CHECK(d.wait_for_record("heirloom [launch] [ie] [https://intranet.example/x]", 10s));
        CHECK(d.recorded().find("host-browser [https://intranet.example/") == std::string::npos);
    }
}

TEST_CASE("shell: lxpanel's application menu shows the Heirloom submenu with the guests' icons",
          "[shell]") {
    if (std::string tool = missing_desktop_tool(); !tool.empty())
        HL_SKIP(tool + " is not installed (installer/install-deps.sh)");
    if (!test::have_program("lxpanel") || !test::have_program("xdotool") ||
        !test::have_program("import"))
        HL_SKIP("lxpanel, xdotool or ImageMagick is not installed (installer/install-deps.sh)");
    test::Xvfb x(640, 400);
    REQUIRE(x.running());
    Desktop d;
    d.display = x.display();

    policy::EffectivePolicy policy;
    policy.workspaces = {test::effective_workspace("payroll", "Payroll"),
                         test::effective_workspace("office", "Office 2003")};
    policy.apps = {test::published_app("pay", "payroll", "Payroll 2004"),
                   test::published_app("ledger", "payroll", "General Ledger"),
                   test::published_app("word", "office", "Word"),
                   test::published_app("firefox", "office", "Firefox\n[Desktop Entry]")};
    // The guests' icons, as they would arrive over the guest channel: any size, converted.
    REQUIRE(shell::store_guest_icon(d.paths, "payroll", "pay", test::make_png(200, 200, 0x3366cc)));
    REQUIRE(
        shell::store_guest_icon(d.paths, "payroll", "ledger", test::make_png(48, 32, 0x22aa44)));
    REQUIRE(shell::store_guest_icon(d.paths, "office", "word", test::make_png(256, 256, 0xdd7711)));
    REQUIRE(shell::store_guest_icon(d.paths, "office", "firefox",
                                    test::make_png(1024, 1024, 0xcc2255)));
    REQUIRE(shell::publish(d.paths, {"/usr/bin/heirloom", "/usr/bin/heirloom-open"}, policy));

    test::write_file(
        d.config / "lxpanel/default/panels/panel",
        as_bytes(std::string("Global {\n  edge=bottom\n  align=left\n  widthtype=percent\n"
                             "  width=100\n  height=28\n  iconsize=24\n}\n"
                             "Plugin {\n  type=menu\n  Config {\n"
                             "    image=/usr/share/lxpanel/images/my-computer.png\n"
                             "    system {\n    }\n  }\n}\n")));
    fs::path log = d.dir / "lxpanel.log";
    pid_t panel = test::spawn_background(d.with_env({"lxpanel", "--profile", "default"}), log);
    REQUIRE(panel > 0);
    struct Stop {
        pid_t pid;
        std::string marker;
        ~Stop() {
            ::kill(pid, SIGTERM);
            ::waitpid(pid, nullptr, 0);
            end_helpers_of(marker);
        }
    } stop{panel, d.runtime.string()};

    bool shown = false;
    for (int i = 0; i < 100 && !shown; ++i) {
        shown = !x.run({"xdotool", "search", "--onlyvisible", "--class", "lxpanel"}).out.empty();
        std::this_thread::sleep_for(100ms);
    }
    INFO(read_text_file(log).value_or(""));
    REQUIRE(shown);
    // Open the menu, go to its first (only) item, Heirloom, and into the submenu; a loaded
    // machine may need longer, so up to three tries, each slower.
    fs::path shot = test::screenshot_dir() / "shell-menu.png";
    const std::vector<std::string> colours = {"#3366CC", "#22AA44", "#DD7711", "#CC2255"};
    std::string histogram;
    for (int attempt = 1; attempt <= 3; ++attempt) {
        auto pause = std::chrono::milliseconds(600 * attempt);
        std::this_thread::sleep_for(pause); // the menu cache is read in the background
        x.run({"xdotool", "mousemove", "12", "388", "click", "1"});
        std::this_thread::sleep_for(pause);
        x.run({"xdotool", "key", "Down"});
        std::this_thread::sleep_for(pause / 2);
        x.run({"xdotool", "key", "Right"});
        std::this_thread::sleep_for(pause);
        REQUIRE(x.screenshot(shot));
        auto r = test::run({"convert", shot.string(), "-format", "%c", "histogram:info:-"});
        REQUIRE(r.exit_code == 0);
        histogram = r.out;
        bool all = std::all_of(colours.begin(), colours.end(), [&](const std::string& c) {
            return histogram.find(c) != std::string::npos;
        });
        if (all)
            break;
        x.run({"xdotool", "key", "Escape", "Escape"});
    }
    // The four converted icons are on screen, in their colours.
    for (const auto& colour : colours) {
        INFO(colour << " in " << shot);
        CHECK(histogram.find(colour) != std::string::npos);
    }
}
