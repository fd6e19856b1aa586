// Windows programs in the guest's Wine prefix: which ones heirloom-guest publishes (with a
// fake icon extractor), how a Windows path becomes a file under drive_c and a wine command
// line, and the hostile prefixes and names that are refused.

#include "guest/windows_app_scan.hpp"
#include "guest/windows_apps.hpp"
#include "support/fake_wine_prefix.hpp"
#include "support/guest_frames.hpp"
#include "support/support.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <sys/stat.h>

using namespace heirloom;
using namespace heirloom::guest;

namespace {

// Stands in for the PE icon reader: a PNG-looking icon as long as the program, for programs
// starting with "MZ"; others are refused.
struct FakeExtractor {
    std::shared_ptr<int> calls = std::make_shared<int>(0);
    IconExtractor get() const {
        return
            [calls = calls](std::span<const std::uint8_t> pe) -> Result<std::vector<std::uint8_t>> {
                ++*calls;
                if (pe.size() < 2 || pe[0] != 'M' || pe[1] != 'Z')
                    return fail(Errc::corrupt, "not a PE file");
                return test::fake_png(100 + pe.size());
            };
    }
};

struct Warnings {
    std::vector<std::string> lines;
    std::function<void(std::string_view)> sink() {
        return [this](std::string_view line) {
            lines.emplace_back(line);
        };
    }
    bool any(std::string_view text) const {
        return std::any_of(lines.begin(), lines.end(), [&](const std::string& line) {
            return line.find(text) != std::string::npos;
        });
    }
};

std::vector<std::string> ids(const std::vector<InstalledApp>& apps) {
    std::vector<std::string> out;
    for (const auto& app : apps)
        out.push_back(app.app.id);
    return out;
}

const InstalledApp* find(const std::vector<InstalledApp>& apps, std::string_view id) {
    for (const auto& app : apps)
        if (app.app.id == id)
            return &app;
    return nullptr;
}

} // namespace

TEST_CASE("guest windows apps: the folders under Apps and Notepad are published",
          "[guest][windows]") {
    test::FakeWinePrefix p;
    p.program("Apps/Payroll/PAY.EXE", "MZ payroll");
    p.program("Apps/Payroll/readme.txt", "not a program");
    p.program("Apps/Payroll/PAY.DLL", "MZ library");
    p.program("Apps/Tools/a.exe", "MZ a");
    p.program("Apps/Tools/B.Exe", "MZ bb");
    p.program("Apps/Docs/manual.pdf", "%PDF");
    p.program("Apps/loose.exe", "MZ not in a folder");
    p.program("Apps/Lön Büro/LÖN.exe", "MZ unicode");
    p.program("windows/notepad.exe", "MZ notepad");
    FakeExtractor extractor;
    Warnings warnings;

    auto apps = scan_windows_apps({p.prefix, extractor.get()}, warnings.sink());
    CHECK(ids(apps) ==
          std::vector<std::string>{"l--n-b--ro", "payroll", "tools-a", "tools-b", "wine-notepad"});
    const auto* payroll = find(apps, "payroll");
    REQUIRE(payroll);
    CHECK(payroll->app.name == "Payroll");
    CHECK(payroll->app.command == "C:\\Apps\\Payroll\\PAY.EXE");
    CHECK(payroll->argv == std::vector<std::string>{"C:\\Apps\\Payroll\\PAY.EXE"});
    CHECK(payroll->app.icon_png == test::fake_png(100 + std::string_view("MZ payroll").size()));
    CHECK(payroll->app.file_types.empty());
    CHECK(find(apps, "tools-b")->app.name == "Tools - B");
    CHECK(find(apps, "tools-b")->app.command == "C:\\Apps\\Tools\\B.Exe");
    CHECK(find(apps, "l--n-b--ro")->app.name == "Lön Büro");
    const auto* notepad = find(apps, "wine-notepad");
    REQUIRE(notepad);
    CHECK(notepad->app.name == "Notepad");
    CHECK(notepad->app.command == "C:\\windows\\notepad.exe");
    CHECK_FALSE(notepad->app.icon_png.empty());
    CHECK(*extractor.calls == 5);
    CHECK(warnings.lines.empty());
    // Every app is one the protocol carries.
    std::vector<App> list;
    for (const auto& app : apps)
        list.push_back(app.app);
    CHECK(encode(GuestMessage(AppList{list})));

    // Without an extractor there are no icons, and nothing to warn about.
    auto plain = scan_windows_apps({p.prefix, {}}, warnings.sink());
    CHECK(ids(plain) == ids(apps));
    CHECK(find(plain, "payroll")->app.icon_png.empty());
    CHECK(warnings.lines.empty());
}

TEST_CASE("guest windows apps: no prefix means no apps, a broken one is reported",
          "[guest][windows]") {
    test::TempDir dir;
    Warnings warnings;
    CHECK(scan_windows_apps({dir / "no-such-prefix", {}}, warnings.sink()).empty());
    CHECK(scan_windows_apps({"", {}}, warnings.sink()).empty());
    CHECK(warnings.lines.empty());

    test::FakeWinePrefix p;
    p.program("Apps/Payroll/PAY.EXE");
    fs::create_directories(p.dir / "elsewhere/Apps/Evil");
    fs::remove(p.prefix / "dosdevices" / "c:");
    fs::create_symlink(p.dir / "elsewhere", p.prefix / "dosdevices" / "c:");
    CHECK(scan_windows_apps({p.prefix, {}}, warnings.sink()).empty());
    CHECK(warnings.any("is not its drive_c"));
}

TEST_CASE("guest windows apps: hostile prefixes publish nothing outside drive_c",
          "[guest][windows]") {
    test::FakeWinePrefix p;
    p.program("Apps/Good/GOOD.EXE");
    // A folder and a program that are links out of drive_c.
    test::write_file(p.dir / "outside/EVIL.EXE", as_bytes(std::string_view("MZ evil")));
    fs::create_directory_symlink(p.dir / "outside", p.drive_c / "Apps" / "Evil");
    fs::create_directories(p.drive_c / "Apps/Link");
    fs::create_symlink(p.dir / "outside/EVIL.EXE", p.drive_c / "Apps/Link/LINK.EXE");
    fs::create_symlink("/etc/passwd", p.drive_c / "Apps/Link/PASSWD.EXE");
    // A link that stays inside drive_c is fine.
    p.program("Apps/Inside/real/IN.EXE");
    fs::create_symlink("real/IN.EXE", p.drive_c / "Apps/Inside/IN.EXE");
    // A link up and out through "..".
    fs::create_directory_symlink("../../..", p.drive_c / "Apps/Up");
    // Names a Windows path cannot hold, or holds differently.
    p.program("Apps/.../DOTS.EXE");
    p.program("Apps/a\\b/SPLIT.EXE");
    p.program("Apps/Bad:Name/X.EXE");
    p.program("Apps/CON/X.EXE");
    p.program("Apps/Esc\x1b[31m/X.EXE");
    p.program("Apps/Trail /X.EXE");
    p.program("Apps/Names/a\\b.exe");
    p.program("Apps/Names/ok.exe");
    // .exe entries that are not programs.
    fs::create_directories(p.drive_c / "Apps/Odd/DIR.EXE");
    REQUIRE(::mkfifo((p.drive_c / "Apps/Odd/FIFO.EXE").c_str(), 0600) == 0);
    fs::create_symlink("nowhere.exe", p.drive_c / "Apps/Odd/DANGLING.EXE");
    Warnings warnings;
    FakeExtractor extractor;

    auto started = std::chrono::steady_clock::now();
    auto apps = scan_windows_apps({p.prefix, extractor.get()}, warnings.sink());
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5)); // no FIFO wait
    CHECK(ids(apps) == std::vector<std::string>{"good", "inside", "names"});
    CHECK(find(apps, "names")->app.command == "C:\\Apps\\Names\\ok.exe");
    CHECK(find(apps, "inside")->app.command == "C:\\Apps\\Inside\\IN.EXE");
    for (const auto& app : apps)
        CHECK(app.app.command.starts_with("C:\\Apps\\"));
    CHECK(warnings.any("C:\\Apps\\Evil: skipped: it leads out of drive C:"));
    CHECK(warnings.any("C:\\Apps\\Up: skipped: it leads out of drive C:"));
    CHECK(warnings.any("C:\\Apps\\Link\\LINK.EXE: skipped"));
    CHECK(warnings.any("C:\\Apps\\Link\\PASSWD.EXE: skipped"));
    CHECK(warnings.any("C:\\Apps\\a\\b: skipped: a backslash"));
    CHECK(warnings.any("C:\\Apps\\Names\\a\\b.exe: skipped: a backslash"));
    CHECK(warnings.any("ends with a dot or a space"));
    CHECK(warnings.any("reserved device name"));
    CHECK(warnings.any("control character"));
    CHECK(warnings.any("':'"));
    CHECK(warnings.any("C:\\Apps\\Odd\\DIR.EXE: skipped: not a program file"));
    CHECK(warnings.any("C:\\Apps\\Odd\\FIFO.EXE: skipped: not a program file"));
    CHECK(warnings.any("C:\\Apps\\Odd\\DANGLING.EXE: skipped"));
    // Warnings never carry the escape byte of a hostile name.
    for (const auto& line : warnings.lines)
        CHECK(line.find('\x1b') == std::string::npos);
}

TEST_CASE("guest windows apps: huge trees are bounded", "[guest][windows]") {
    test::FakeWinePrefix p;
    for (int i = 0; i < 300; ++i)
        p.program("Apps/App" + std::to_string(1000 + i) + "/RUN.EXE");
    // One folder with more entries than are ever read.
    fs::create_directories(p.drive_c / "Apps/Zfull");
    for (std::size_t i = 0; i < max_folder_entries + 10; ++i)
        test::write_file(p.drive_c / "Apps/Zfull" / ("f" + std::to_string(i) + ".txt"), {});
    Warnings warnings;
    WindowsAppSources sources{p.prefix, {}};
    sources.max_apps = 50;

    auto apps = scan_windows_apps(sources, warnings.sink());
    REQUIRE(apps.size() == 50);
    CHECK(apps.front().app.id == "app1000");
    CHECK(apps.back().app.id == "app1049");
    CHECK(std::is_sorted(apps.begin(), apps.end(),
                         [](const auto& a, const auto& b) { return a.app.id < b.app.id; }));
    CHECK(warnings.any("more than 50 Windows programs"));

    sources.max_apps = 1000;
    warnings.lines.clear();
    auto all = scan_windows_apps(sources, warnings.sink());
    CHECK(all.size() == 300);
    CHECK(warnings.any("C:\\Apps\\Zfull: holds more than 4096 entries"));
}

TEST_CASE("guest windows apps: ids that clash keep the first program", "[guest][windows]") {
    test::FakeWinePrefix p;
    p.program("Apps/Pay Roll/A.EXE");
    p.program("Apps/pay-roll/B.EXE");
    p.program("Apps/wine-notepad/C.EXE");
    p.program("Apps/---/D.EXE");
    p.program("windows/notepad.exe");
    Warnings warnings;
    auto apps = scan_windows_apps({p.prefix, {}}, warnings.sink());
    CHECK(ids(apps) == std::vector<std::string>{"pay-roll", "wine-notepad"});
    CHECK(find(apps, "pay-roll")->app.command == "C:\\Apps\\Pay Roll\\A.EXE");
    CHECK(find(apps, "wine-notepad")->app.command == "C:\\Apps\\wine-notepad\\C.EXE");
    CHECK(warnings.any("C:\\Apps\\pay-roll\\B.EXE: skipped: another program already has the id "
                       "pay-roll"));
    CHECK(warnings.any("C:\\windows\\notepad.exe: skipped"));
    CHECK(warnings.any("C:\\Apps\\---\\D.EXE: skipped: no usable app id"));
}

TEST_CASE("guest windows apps: refused icons leave the program published without one",
          "[guest][windows]") {
    test::FakeWinePrefix p;
    p.program("Apps/Bad/BAD.EXE", "not a PE at all");
    p.program("Apps/Big/BIG.EXE", "MZ" + std::string(5000, 'x'));
    p.program("Apps/Good/GOOD.EXE", "MZ good");
    p.program("Apps/Huge/HUGE.EXE", "MZ huge");
    p.program("Apps/NotPng/NP.EXE", "MZ not png");
    Warnings warnings;
    auto calls = std::make_shared<int>(0);
    WindowsAppSources sources{
        p.prefix, [calls](std::span<const std::uint8_t> pe) -> Result<std::vector<std::uint8_t>> {
            ++*calls;
            std::string text(pe.begin(), pe.end());
            if (!text.starts_with("MZ"))
                return fail(Errc::corrupt, "not a PE file");
            if (text == "MZ huge")
                return test::fake_png(max_icon_bytes + 1);
            if (text == "MZ not png")
                return std::vector<std::uint8_t>{'G', 'I', 'F'};
            return test::fake_png(64);
        }};
    sources.max_exe_bytes = 1000;

    auto apps = scan_windows_apps(sources, warnings.sink());
    REQUIRE(ids(apps) == std::vector<std::string>{"bad", "big", "good", "huge", "notpng"});
    CHECK(find(apps, "good")->app.icon_png == test::fake_png(64));
    for (std::string_view id : {"bad", "big", "huge", "notpng"})
        CHECK(find(apps, id)->app.icon_png.empty());
    CHECK(*calls == 4); // the program over max_exe_bytes is not read
    CHECK(warnings.any("C:\\Apps\\Bad\\BAD.EXE: published without an icon: not a PE file"));
    CHECK(warnings.any("C:\\Apps\\Big\\BIG.EXE: published without an icon: larger than"));
    CHECK(warnings.any("C:\\Apps\\Huge\\HUGE.EXE: published without an icon: its icon is not"));
    CHECK(warnings.any("C:\\Apps\\NotPng\\NP.EXE: published without an icon: its icon is not"));

    // All programs together are read up to a budget: later ones go without icons.
    sources.max_exe_bytes = 64ull << 20;
    sources.max_read_bytes = 5020;
    warnings.lines.clear();
    *calls = 0;
    auto budgeted = scan_windows_apps(sources, warnings.sink());
    CHECK(*calls == 2); // BAD.EXE (15 bytes) and BIG.EXE (5002 bytes) fit; the rest do not
    CHECK(find(budgeted, "good")->app.icon_png.empty());
    CHECK(warnings.any("C:\\Apps\\Good\\GOOD.EXE: published without an icon: the programs read"));
}

TEST_CASE("guest windows apps: .desktop apps win id clashes when the lists merge",
          "[guest][windows]") {
    auto app = [](std::string id, std::string command) {
        InstalledApp installed;
        installed.app = {id, id, command, {}, {}};
        installed.argv = {command};
        return installed;
    };
    Warnings warnings;
    auto merged = merge_apps({app("xterm", "/usr/bin/xterm"), app("payroll", "/opt/pay")},
                             {app("payroll", "C:\\Apps\\Payroll\\PAY.EXE"),
                              app("abacus", "C:\\Apps\\Abacus\\ABACUS.EXE")},
                             warnings.sink());
    CHECK(ids(merged) == std::vector<std::string>{"abacus", "payroll", "xterm"});
    CHECK(find(merged, "payroll")->app.command == "/opt/pay");
    CHECK(warnings.any("C:\\Apps\\Payroll\\PAY.EXE: not published: the .desktop app payroll"));

    std::vector<InstalledApp> many;
    for (std::size_t i = 0; i < max_apps + 5; ++i)
        many.push_back(app("w" + std::to_string(1000 + i), "C:\\x.exe"));
    CHECK(merge_apps({}, many, warnings.sink()).size() == max_apps);
    CHECK(warnings.any("more than 512 apps"));
}
