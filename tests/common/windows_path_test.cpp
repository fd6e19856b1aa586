// The Windows program path parser: the plain form is accepted and everything Windows (or
// Wine) would read differently is refused.

#include "heirloom/common/windows_path.hpp"

#include <catch2/catch.hpp>

using namespace heirloom;
using namespace std::string_literals;

TEST_CASE("a plain Windows program path parses into drive and components", "[windows_path]") {
    auto path = parse_windows_program_path("C:\\Apps\\Payroll\\PAY.EXE");
    REQUIRE(path);
    CHECK(path->drive == 'C');
    CHECK(path->components == std::vector<std::string>{"Apps", "Payroll", "PAY.EXE"});
    CHECK(path->text() == "C:\\Apps\\Payroll\\PAY.EXE");

    auto lower = parse_windows_program_path("c:\\windows\\notepad.exe");
    REQUIRE(lower);
    CHECK(lower->drive == 'C');
    CHECK(lower->text() == "C:\\windows\\notepad.exe");

    CHECK(parse_windows_program_path("C:\\PAY.Exe"));
    CHECK(parse_windows_program_path("D:\\Tools\\x.exe")->drive == 'D');
    // Names Windows allows: spaces inside, several dots, non-ASCII letters, punctuation.
    CHECK(parse_windows_program_path("C:\\Program Files\\AT&T (old)\\lön.v2.exe"));
    CHECK(parse_windows_program_path("C:\\PROGRA~1\\x;y$z'`!.exe"));
    CHECK(parse_windows_program_path("C:\\Apps\\日本語\\表.exe"));
    // COM10 and CONSOLE are not device names.
    CHECK(parse_windows_program_path("C:\\COM10\\CONSOLE.exe"));
    CHECK(parse_windows_program_path("C:\\LPT\\CONX.exe"));
}

TEST_CASE("Windows paths that Windows would read differently are refused", "[windows_path]") {
    struct Case {
        std::string path;
        std::string why;
    };
    const std::vector<Case> cases = {
        {"", "drive letter"},
        {"C", "drive letter"},
        {"C:", "relative to the drive"},
        {"C:PAY.EXE", "relative to the drive"},
        {"C:/Apps/PAY.EXE", "backslashes"},
        {"C:\\Apps/PAY.EXE", "'/'"},
        {"1:\\PAY.EXE", "drive letter"},
        {"\\Apps\\PAY.EXE", "no drive letter"},
        {"\\\\server\\share\\PAY.EXE", "UNC"},
        {"\\\\?\\C:\\PAY.EXE", "UNC"},
        {"\\\\.\\C:\\PAY.EXE", "UNC"},
        {"\\??\\C:\\PAY.EXE", "no drive letter"},
        {"C:\\", "empty component"},
        {"C:\\\\PAY.EXE", "empty component"},
        {"C:\\Apps\\\\PAY.EXE", "empty component"},
        {"C:\\Apps\\", "empty component"},
        {"C:\\Apps\\..\\PAY.EXE", "\"..\" component"},
        {"C:\\..\\PAY.EXE", "\"..\" component"},
        {"C:\\Apps\\.\\PAY.EXE", "\".\" component"},
        {"C:\\Apps\\PAY.EXE:stream", "':'"},
        {"C:\\Apps\\PAY.EXE:$DATA.exe", "':'"},
        {"C:\\Apps\\P*.EXE", "'*'"},
        {"C:\\Apps\\P?.EXE", "'?'"},
        {"C:\\Apps\\<x>.EXE", "'<'"},
        {"C:\\Apps\\a|b.EXE", "'|'"},
        {"C:\\Apps\\\"q\".EXE", "'\"'"},
        {"C:\\Apps\\a\tb.EXE", "control character"},
        {"C:\\Apps\\a\nb.EXE", "control character"},
        {"C:\\Apps\\a\0b.EXE"s, "control character"},
        {"C:\\Apps\\a\x7f.EXE", "control character"},
        {"C:\\Apps.\\PAY.EXE", "ends with a dot or a space"},
        {"C:\\Apps \\PAY.EXE", "ends with a dot or a space"},
        {"C:\\Apps\\PAY.EXE.", "ends with a dot or a space"},
        {"C:\\Apps\\PAY.EXE ", "ends with a dot or a space"},
        {"C:\\ Apps\\PAY.EXE", "starts with a space"},
        {"C:\\CON\\PAY.EXE", "reserved device name"},
        {"C:\\Apps\\nul.exe", "reserved device name"},
        {"C:\\Apps\\Com1.exe", "reserved device name"},
        {"C:\\Apps\\LPT9.exe", "reserved device name"},
        {"C:\\Apps\\aux .txt\\x.exe", "reserved device name"},
        {"C:\\Apps\\COM\u00b9.exe", "reserved device name"},
        {"C:\\Apps\\CONOUT$.exe", "reserved device name"},
        {"C:\\Apps\\PAY.BAT", ".exe"},
        {"C:\\Apps\\PAY.COM", ".exe"},
        {"C:\\Apps\\PAY", ".exe"},
        {"C:\\Apps\\.exe", ".exe"},
        {"C:\\Apps\\PAY.EXE\\x", ".exe"},
        {"C:\\Apps\\PAY.exe.lnk", ".exe"},
        {"C:\\Apps\\\xc3(.exe", "UTF-8"},
        {"C:\\Apps\\\xc0\xaf.exe", "UTF-8"},
        {"C:\\Apps\\\xed\xa0\x80.exe", "UTF-8"},
        {"C:\\Apps\\\xf4\x90\x80\x80.exe", "UTF-8"},
        {"C:\\" + std::string(256, 'a') + ".exe", "259"},
        {"C:\\" + std::string(252, 'a') + ".exe", "255"},
    };
    for (const auto& c : cases) {
        INFO(c.path);
        auto parsed = parse_windows_program_path(c.path);
        REQUIRE_FALSE(parsed);
        CHECK(parsed.error().code == Errc::invalid_argument);
        CHECK_THAT(parsed.error().message, Catch::Contains(c.why));
        CHECK_THAT(parsed.error().message, Catch::Contains("is not a Windows program path"));
    }
}

TEST_CASE("Windows path limits count UTF-16 units", "[windows_path]") {
    // 3 + 200 + 1 + 52 = 256 units: fits; a four-byte character counts twice.
    std::string folder = "C:\\" + std::string(200, 'a') + "\\" + std::string(48, 'b');
    CHECK(parse_windows_program_path(folder + ".exe"));
    CHECK(parse_windows_program_path(folder + "\xf0\x9f\x98\x80.exe"));
    auto over = parse_windows_program_path(folder + "\xf0\x9f\x98\x80\xf0\x9f\x98\x80.exe");
    REQUIRE_FALSE(over);
    CHECK_THAT(over.error().message, Catch::Contains("259"));
    // Many short folders: the whole path is held to MAX_PATH too.
    std::string deep = "C:";
    for (int i = 0; i < 100; ++i)
        deep += "\\ab";
    CHECK_FALSE(parse_windows_program_path(deep + "\\x.exe"));
}

TEST_CASE("error messages quote hostile paths without control characters", "[windows_path]") {
    auto parsed = parse_windows_program_path("C:\\a\x1b[31m\\" + std::string(200, 'b') + ".exe");
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().message.find('\x1b') == std::string::npos);
    CHECK_THAT(parsed.error().message, Catch::Contains("..."));
}

TEST_CASE("what looks like a Windows path is told apart from Unix programs", "[windows_path]") {
    for (std::string_view windows : {"C:\\x.exe", "c:x", "Z:", "D:/x.exe", "\\x.exe",
                                     "\\\\server\\x", "\\\\?\\C:\\x.exe", "q:\\"})
        CHECK(looks_like_windows_path(windows));
    for (std::string_view unix_like : {"/usr/bin/xterm", "xclock", "", ":", "1:\\x.exe",
                                       "CC:\\x.exe", "./C:\\x.exe", "/C:\\x.exe", "C"})
        CHECK_FALSE(looks_like_windows_path(unix_like));
}

TEST_CASE("the parser survives arbitrary bytes", "[windows_path]") {
    // A small deterministic fuzz: every accepted path re-parses from its text to itself.
    std::uint32_t state = 12345;
    auto next = [&] {
        state = state * 1103515245u + 12345u;
        return static_cast<unsigned char>(state >> 16);
    };
    const std::string alphabet = "C:\\ab.exe.EXE /?*<>|\"\x01\xc3\xa9\x80";
    int accepted = 0;
    for (int round = 0; round < 20000; ++round) {
        std::string text = "C:\\";
        std::size_t length = next() % 24;
        for (std::size_t i = 0; i < length; ++i)
            text += alphabet[next() % alphabet.size()];
        if (next() % 2)
            text += ".exe";
        auto parsed = parse_windows_program_path(text);
        if (!parsed)
            continue;
        ++accepted;
        auto again = parse_windows_program_path(parsed->text());
        REQUIRE(again);
        CHECK(*again == *parsed);
    }
    CHECK(accepted > 0);
}
