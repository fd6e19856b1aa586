// Launching Windows programs in the guest: a Windows path becomes a file under drive_c (never
// outside it) and a wine command line; host files become Z: paths. The last test runs the real
// heirloom-guest with a stand-in wine script that records what it was started with.

#include "guest/pe_icon.hpp"
#include "guest/windows_apps.hpp"
#include "support/fake_wine_prefix.hpp"
#include "support/guest_host.hpp"
#include "support/support.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <map>
#include <sys/stat.h>

using namespace heirloom;
using namespace heirloom::guest;
using namespace heirloom::test;

namespace {

// An executable file standing in for wine, running script.
fs::path fake_wine(const fs::path& path, const std::string& script) {
    write_file(path, as_bytes("#!/bin/sh\n" + script));
    fs::permissions(path, fs::perms::owner_all);
    return path;
}

} // namespace

TEST_CASE("guest wine: a Windows path resolves inside drive_c, regardless of case",
          "[guest][windows]") {
    FakeWinePrefix p;
    p.program("Apps/Payroll/pay.exe");
    auto real = fs::canonical(p.drive_c / "Apps/Payroll/pay.exe");
    CHECK(resolve_windows_program(p.prefix, "C:\\Apps\\Payroll\\pay.exe") == real);
    CHECK(resolve_windows_program(p.prefix, "c:\\APPS\\payroll\\PAY.EXE") == real);

    auto error = [&](std::string_view path) {
        auto resolved = resolve_windows_program(p.prefix, path);
        REQUIRE_FALSE(resolved);
        return resolved.error();
    };
    CHECK(error("D:\\Apps\\Payroll\\pay.exe").message ==
          "a Windows program must be on drive C: (the guest's Wine prefix), not D:");
    CHECK(error("C:\\Apps\\..\\..\\x.exe").code == Errc::invalid_argument);
    CHECK(error("\\\\server\\share\\x.exe").code == Errc::invalid_argument);
    CHECK(error("C:\\Apps\\Payroll\\gone.exe").code == Errc::not_found);
    CHECK_THAT(error("C:\\Apps\\Nope\\x.exe").message,
               Catch::StartsWith("C:\\Apps\\Nope is not in the guest"));

    // Links out of drive_c, however they are reached, are refused.
    write_file(p.dir / "outside/EVIL.EXE", as_bytes(std::string_view("MZ")));
    fs::create_directory_symlink(p.dir / "outside", p.drive_c / "Apps/Evil");
    fs::create_symlink("/bin/sh", p.drive_c / "Apps/Payroll/SH.EXE");
    fs::create_directory_symlink("../..", p.drive_c / "Apps/Up");
    CHECK(error("C:\\Apps\\Evil\\EVIL.EXE").code == Errc::denied);
    CHECK_THAT(error("C:\\Apps\\Evil\\EVIL.EXE").message,
               Catch::Contains("C:\\Apps\\Evil leads out of drive C:"));
    CHECK(error("C:\\Apps\\Payroll\\SH.EXE").code == Errc::denied);
    CHECK(error("C:\\Apps\\Up\\drive_c\\Apps\\Payroll\\pay.exe").code == Errc::denied);
    // Not a program file.
    fs::create_directories(p.drive_c / "Apps/Odd/DIR.EXE");
    REQUIRE(::mkfifo((p.drive_c / "Apps/Odd/FIFO.EXE").c_str(), 0600) == 0);
    CHECK_THAT(error("C:\\Apps\\Odd\\DIR.EXE").message, Catch::Contains("is not a program file"));
    CHECK_THAT(error("C:\\Apps\\Odd\\FIFO.EXE").message, Catch::Contains("is not a program file"));
    // Two names Windows cannot tell apart.
    p.program("Apps/Dup/x.exe");
    p.program("Apps/Dup/X.EXE");
    CHECK(resolve_windows_program(p.prefix, "C:\\Apps\\Dup\\x.exe"));
    CHECK(error("C:\\Apps\\Dup\\X.exe").code == Errc::conflict);
    // A prefix whose C: is not its drive_c, or no prefix at all.
    fs::remove(p.prefix / "dosdevices/c:");
    fs::create_symlink(p.dir / "outside", p.prefix / "dosdevices/c:");
    CHECK_THAT(error("C:\\Apps\\Payroll\\pay.exe").message, Catch::Contains("is not its drive_c"));
    CHECK_THAT(resolve_windows_program(p.dir / "none", "C:\\x.exe").error().message,
               Catch::Contains("rebuild this workspace's image with --windows-apps"));
    CHECK_FALSE(resolve_windows_program("relative/prefix", "C:\\x.exe"));
}

TEST_CASE("guest wine: host files are given to Windows programs as Z: paths", "[guest][windows]") {
    CHECK(wine_path_of_unix_file("/tmp/heirloom-files-AbC123/report.txt") ==
          "Z:\\tmp\\heirloom-files-AbC123\\report.txt");
    CHECK(wine_path_of_unix_file("/tmp/heirloom-files-x/My File (2).txt") ==
          "Z:\\tmp\\heirloom-files-x\\My File (2).txt");
    CHECK(wine_path_of_unix_file("/tmp/h/Lön 日本.txt") == "Z:\\tmp\\h\\Lön 日本.txt");
    for (std::string_view bad :
         {"", "relative.txt", "/", "/tmp//x.txt", "/tmp/./x.txt", "/tmp/../x.txt", "/tmp/x/",
          "/tmp/a\\b.txt", "/tmp/a:b.txt", "/tmp/a*b.txt", "/tmp/a?.txt", "/tmp/a|b", "/tmp/a<b>",
          "/tmp/\"q\"", "/tmp/x.", "/tmp/x ", "/tmp/a\nb", "/tmp/\xc3("}) {
        INFO(bad);
        auto mapped = wine_path_of_unix_file(bad);
        REQUIRE_FALSE(mapped);
        CHECK_THAT(mapped.error().message, Catch::Contains("to a Windows program"));
        CHECK(mapped.error().message.find('\n') == std::string::npos);
    }
    CHECK_THAT(wine_path_of_unix_file("/tmp/a\\b.txt").error().message,
               Catch::Contains("backslash"));
}

TEST_CASE("guest wine: the wine command line, environment and folder", "[guest][windows]") {
    FakeWinePrefix p;
    p.program("Apps/Payroll/PAY.EXE");
    WineSettings settings{p.prefix, fake_wine(p.dir / "bin/wine", "exit 0\n").string()};
    std::string files = "/tmp/heirloom-files-Q1w2E3";

    auto request = wine_spawn_request(
        settings, {"c:\\apps\\payroll\\pay.exe", "/s", files + "/a b.txt", "/etc/passwd"}, files,
        "C");
    REQUIRE(request);
    CHECK(request->argv == std::vector<std::string>{settings.wine, "C:\\apps\\payroll\\pay.exe",
                                                    "/s", "Z:\\tmp\\heirloom-files-Q1w2E3\\a b.txt",
                                                    "/etc/passwd"});
    CHECK(request->environment ==
          std::vector<std::string>{"WINEPREFIX=" + p.prefix.string(), "WINEDEBUG=-all",
                                   "WINEDLLOVERRIDES=mscoree,mshtml=", "LANG=C.UTF-8"});
    CHECK(request->working_dir == fs::canonical(p.drive_c / "Apps/Payroll").string());
    CHECK(request->output == Output::discard);
    CHECK(wine_environment(p.prefix, "de_DE.UTF-8").back() == "LANG=de_DE.UTF-8");
    CHECK(wine_environment(p.prefix, "en_GB.utf8").back() == "LANG=en_GB.utf8");
    CHECK(wine_environment(p.prefix, "de_DE.ISO-8859-1").back() == "LANG=C.UTF-8");

    // Without files from the host, nothing is mapped.
    auto plain = wine_spawn_request(settings, {"C:\\Apps\\Payroll\\PAY.EXE", files + "/x"}, "", "");
    REQUIRE(plain);
    CHECK(plain->argv.back() == files + "/x");

    // Refusals, each with what to do.
    auto refused = [&](const WineSettings& s, std::vector<std::string> argv) {
        auto r = wine_spawn_request(s, argv, files, "C");
        REQUIRE_FALSE(r);
        return r.error().message;
    };
    CHECK_THAT(refused(settings, {"C:\\Apps\\Payroll\\PAY.EXE", files + "/a\\b.txt"}),
               Catch::Contains("backslash"));
    CHECK_THAT(refused(settings, {"D:\\PAY.EXE"}), Catch::Contains("drive C:"));
    CHECK_THAT(refused(settings, {"C:\\Apps\\Payroll\\NOPE.EXE"}),
               Catch::Contains("is not in the guest"));
    WineSettings no_wine{p.prefix, (p.dir / "bin/no-wine").string()};
    CHECK_THAT(
        refused(no_wine, {"C:\\Apps\\Payroll\\PAY.EXE"}),
        Catch::Contains("this workspace's image has no Wine: rebuild it with --windows-apps"));
    fs::remove(p.prefix / "dosdevices/z:");
    CHECK_THAT(refused(settings, {"C:\\Apps\\Payroll\\PAY.EXE", files + "/a.txt"}),
               Catch::Contains("no Z: drive"));
    CHECK(wine_spawn_request(settings, {"C:\\Apps\\Payroll\\PAY.EXE"}, files, "C"));
}

TEST_CASE("heirloom-guest: Windows programs are published and run under wine", "[guest][windows]") {
    FakeWinePrefix p;
    p.program("Apps/Payroll/PAY.EXE");
    p.program("windows/notepad.exe");
    // A real Windows program with an icon (built with mingw-w64 for the PE icon tests).
    auto icon_app = read_file(fs::path(HEIRLOOM_PE_ICON_DATA) / "app.exe");
    REQUIRE(icon_app);
    write_file(p.drive_c / "Apps/Icon App/APP.EXE", *icon_app);
    write_file(p.dir / "outside/EVIL.EXE", as_bytes(std::string_view("MZ")));
    fs::create_directory_symlink(p.dir / "outside", p.drive_c / "Apps/Evil");
    fs::path out = p.dir / "out";
    fs::create_directories(out);
    // Records its arguments (one a line), its environment and folder, and chatters on stderr.
    auto wine = fake_wine(
        p.dir / "bin/wine",
        "for a in \"$@\"; do printf '%s\\n' \"$a\"; done > '" + (out / "args.txt").string() +
            "'\nprintf '%s|%s|%s|%s|%s|%s\\n' \"$WINEPREFIX\" \"$WINEDEBUG\" "
            "\"$WINEDLLOVERRIDES\" \"$LANG\" \"$DISPLAY\" \"$(pwd)\" > '" +
            (out / "env.txt").string() + "'\necho 'fixme:heirloom-test wine chatter' >&2\n");

    FakeHost host(p.dir / "control.sock");
    auto guest_bin = (bin_dir() / "heirloom-guest").string();
    pid_t guest = start_guest({guest_bin, "--control", (p.dir / "control.sock").string(),
                               "--no-display", "--no-clock", "--display-number", ":43", "--wine",
                               wine.string(), "--wine-prefix", p.prefix.string()},
                              p.dir / "guest.log");
    REQUIRE(guest > 0);
    GuestReaper reaper{guest};
    auto log = [&] {
        return slurp(p.dir / "guest.log");
    };
    REQUIRE(host.accept());
    host.expect<GuestHello>();
    host.send(HostHello{});

    // Published beside the X11 apps, with the Windows path as the command.
    host.send(ListApps{});
    std::map<std::string, App> apps;
    for (const auto& app : host.expect<AppList>().apps)
        apps[app.id] = app;
    REQUIRE(apps.contains("payroll"));
    CHECK(apps["payroll"].name == "Payroll");
    CHECK(apps["payroll"].command == "C:\\Apps\\Payroll\\PAY.EXE");
    CHECK(apps["wine-notepad"].command == "C:\\windows\\notepad.exe");
    // Icons come from the programs' own resources, through the PE icon reader.
    REQUIRE(apps.contains("icon-app"));
    CHECK(apps["icon-app"].name == "Icon App");
    CHECK(apps["icon-app"].icon_png == pe_icon_png(*icon_app).value());
    CHECK_FALSE(apps["icon-app"].icon_png.empty());
    CHECK(apps["payroll"].icon_png.empty()); // "MZ program" is no PE file: no icon, a log line
    CHECK(log().find("C:\\Apps\\Payroll\\PAY.EXE: published without an icon") != std::string::npos);
    CHECK_FALSE(apps.contains("evil"));

    auto lines = [&](const std::string& name) {
        return slurp(out / name);
    };
    std::string folder = fs::canonical(p.drive_c / "Apps/Payroll").string();
    const char* lang = std::getenv("LANG");
    std::string lang_text = lang ? lang : "";
    bool utf8 = lang_text.find(".UTF-8") != std::string::npos ||
                lang_text.find(".utf8") != std::string::npos;
    std::string env_line = p.prefix.string() + "|-all|mscoree,mshtml=|" +
                           (utf8 ? lang_text : "C.UTF-8") + "|:43|" + folder + "\n";

    // By the guest's own id, and by the policy's command line.
    host.send(Launch{1, "payroll", {}, {}});
    auto launched = host.expect<Launched>();
    CHECK(host.expect<Exited>() == Exited{launched.pid, 0});
    CHECK(lines("args.txt") == "C:\\Apps\\Payroll\\PAY.EXE\n");
    CHECK(lines("env.txt") == env_line);
    host.send(Launch{2, "pay", {"x y"}, {"C:\\APPS\\Payroll\\PAY.EXE", "/s"}});
    launched = host.expect<Launched>();
    CHECK(host.expect<Exited>() == Exited{launched.pid, 0});
    CHECK(lines("args.txt") == "C:\\APPS\\Payroll\\PAY.EXE\n/s\nx y\n");

    // A file from the host reaches the program as a Z: path.
    host.send(Controls{{Direction::off, Direction::host_to_guest, false, false}});
    host.expect<ControlsApplied>();
    host.send(FilePart{3, "my report.txt", 2, 0, {'h', 'i'}});
    auto stored = host.expect<FileStored>();
    struct Cleanup {
        fs::path dir;
        ~Cleanup() {
            std::error_code ec;
            if (dir.filename().string().starts_with("heirloom-files-"))
                fs::remove_all(dir, ec);
        }
    } cleanup{fs::path(stored.path).parent_path()};
    host.send(Launch{4, "pay", {stored.path}, {"C:\\Apps\\Payroll\\PAY.EXE"}});
    launched = host.expect<Launched>();
    CHECK(host.expect<Exited>() == Exited{launched.pid, 0});
    std::string z_path = stored.path;
    std::replace(z_path.begin(), z_path.end(), '/', '\\');
    CHECK(lines("args.txt") == "C:\\Apps\\Payroll\\PAY.EXE\nZ:" + z_path + "\n");

    // Refused: another drive, a link out of drive_c; the guest says why.
    host.send(Launch{5, "pay", {}, {"D:\\PAY.EXE"}});
    CHECK_THAT(host.expect<LaunchFailed>().message, Catch::Contains("must be on drive C:"));
    host.send(Launch{6, "pay", {}, {"C:\\Apps\\Evil\\EVIL.EXE"}});
    CHECK_THAT(host.expect<LaunchFailed>().message, Catch::Contains("leads out of drive C:"));
    CHECK(log().find("wine chatter") == std::string::npos);

    // Without wine: a clear failure, and nothing published that could not run.
    fs::remove(wine);
    host.send(Launch{7, "payroll", {}, {}});
    CHECK_THAT(
        host.expect<LaunchFailed>().message,
        Catch::Contains("this workspace's image has no Wine: rebuild it with --windows-apps"));
    host.send(ListApps{});
    for (const auto& app : host.expect<AppList>().apps)
        CHECK_FALSE(app.command.starts_with("C:\\"));

    REQUIRE(::kill(guest, SIGTERM) == 0);
    INFO(log());
    CHECK(wait_for_exit(guest, 5000) == 0);
}
