// Hostile names, ids, icon names and icon files from a policy or a guest: none reaches an Exec=
// line or a path outside the icon cache, and every entry still passes desktop-file-validate.

#include "heirloom/shell/desktop_entry.hpp"
#include "shell-integration/shell_fixture.hpp"

#include <catch2/catch.hpp>
#include <set>
#include <sstream>

using namespace heirloom;
using test::effective_workspace;
using test::published_app;

namespace {

const std::vector<std::string> hostile_names = {
    "Evil\nExec=/bin/sh -c 'rm -rf ~'",
    "Evil\r\nExec=evil",
    "[Desktop Entry]\nExec=evil\nName=x",
    "\n[Desktop Action pwn]\nExec=evil",
    "%f %u %F %U %k %c %i %%",
    "$(touch /tmp/pwned)",
    "`touch /tmp/pwned`",
    "a;b;c;Exec=x;",
    "\"quoted\" 'single' \\\"",
    "\\\\server\\share\\n\\t",
    "\\nExec=literal backslash n",
    "Firefox",
    "Firefox\u202e)llorayP(",
    "\u2066Firefox\u2069 \u200b\u200d",
    "Fire\u00adfox\ufeff",
    "Terminal\tTab\vVertical\fFeed",
    "\xff\xfe invalid UTF-8",
    "\xc0\xaf overlong slash",
    "\xed\xa0\x80 surrogate",
    std::string(5000, 'A'),
    "\x1b[31mred\x1b[0m",
    "\x7f DEL",
    "\xc2\x85 NEL \xc2\x9b CSI",
    "Name=Other",
    "   ",
    "../../etc/passwd",
    "/usr/bin/firefox",
    "Icon=/etc/shadow",
    "X-Heirloom-Owner=heirloom-shell",
    "&& rm -rf / || true > /dev/sda",
    "<script>alert(1)</script>",
    "line\u2028separator\u2029",
    "Payroll (Payroll)",
    std::string("nul\0byte", 8),
    "~/.bashrc * ? # |",
};

const std::vector<std::string> hostile_icon_names = {
    "../../../../etc/passwd",
    "/etc/shadow",
    "a/b",
    "..",
    ".hidden",
    "icon.png",
    "$(id)",
    "-rf",
    "x\ny",
    "ic on",
    "%f",
    std::string(300, 'i'),
    "C:\\icons\\a.ico",
    "file:///etc/passwd",
    "~/icon",
};

// Hostile PNGs: every one must be refused, leaving no cached icon.
std::vector<std::pair<std::string, Bytes>> hostile_pngs() {
    Bytes good = test::make_png(32, 32, 0xff0000);
    std::vector<std::pair<std::string, Bytes>> out;
    out.emplace_back("empty", Bytes{});
    std::string gif = "GIF89a....";
    out.emplace_back("not a PNG", Bytes(gif.begin(), gif.end()));
    out.emplace_back("signature only", Bytes(good.begin(), good.begin() + 8));
    out.emplace_back("truncated", Bytes(good.begin(), good.begin() + long(good.size() - 20)));
    Bytes crc = good;
    crc[29] ^= 0xff; // inside IHDR's CRC
    out.emplace_back("bad IHDR CRC", crc);
    Bytes data = good;
    data[good.size() - 20] ^= 0x55; // in the image data
    out.emplace_back("damaged image data", data);
    Bytes huge = good;
    huge[16] = 0x00, huge[17] = 0x01, huge[18] = 0x00, huge[19] = 0x00; // width 65536
    out.emplace_back("65536 wide (CRC wrong too)", huge);
    out.emplace_back("2048 × 16", test::make_png(2048, 16, 0x00ff00));
    Bytes big(300 << 10, 0);
    std::copy(good.begin(), good.end(), big.begin());
    out.emplace_back("over 256 KiB", big);
    Bytes trailing = good;
    trailing.insert(trailing.begin() + 33, 5, 0x42); // garbage right after IHDR
    out.emplace_back("garbage between chunks", trailing);
    return out;
}

// The lines of a .desktop file as key → values, failing on anything we would not write.
std::map<std::string, std::vector<std::string>> parse_entry(const std::string& text) {
    std::map<std::string, std::vector<std::string>> out;
    std::istringstream in(text);
    int groups = 0;
    for (std::string line; std::getline(in, line);) {
        if (line.starts_with("[")) {
            ++groups;
            continue;
        }
        auto eq = line.find('=');
        REQUIRE(eq != std::string::npos);
        out[line.substr(0, eq)].push_back(line.substr(eq + 1));
    }
    CHECK(groups == 1);
    return out;
}

} // namespace

TEST_CASE("shell: hostile names, ids and icons never reach Exec= or leave the icon cache",
          "[shell]") {
    test::ShellHome home;
    policy::EffectivePolicy policy;
    policy.user = "mallory";
    policy.workspaces = {effective_workspace("ws", "Payroll\nExec=evil"),
                         effective_workspace("ws2", "%f$(x)\u202e")};
    for (std::size_t i = 0; i < hostile_names.size(); ++i) {
        auto a = published_app("app" + std::to_string(i), i % 2 ? "ws" : "ws2", hostile_names[i],
                               {"text/plain", "evil\ntype/x", "application/x-$(id)", "a/b;c",
                                "../etc/passwd", "x-scheme-handler/http", "image/png"});
        a.icon = hostile_icon_names[i % hostile_icon_names.size()];
        policy.apps.push_back(a);
    }
    // Hostile ids (which policy validation would refuse anyway): never written.
    for (std::string id : {"../escape", "a/b", ".hidden", "x y", "x;y", "$(id)", "", "a\nb"}) {
        policy.apps.push_back(published_app(id, "ws", "Bad id"));
        policy.apps.push_back(
            published_app("ok-" + std::to_string(policy.apps.size()), id, "Bad ws"));
    }

    // Guest icons: good ones for half the apps, then hostile files for some of those.
    auto bad = hostile_pngs();
    REQUIRE(bad.size() >= 10);
    for (std::size_t i = 0; i < hostile_names.size(); i += 2)
        REQUIRE(shell::store_guest_icon(home.paths, i % 2 ? "ws" : "ws2", "app" + std::to_string(i),
                                        test::make_png(16 + i, 48, 0x00aa00 + i)));
    for (std::size_t i = 0; i < bad.size(); ++i) {
        std::string id = "app" + std::to_string(2 * i);
        INFO(bad[i].first);
        auto stored = shell::store_guest_icon(home.paths, "ws2", id, bad[i].second);
        CHECK(stored.has_value() == bad[i].second.empty()); // empty: the guest has no icon
        CHECK_FALSE(fs::exists(home.paths.icon_file("ws2", id)));
    }
    for (std::string id : {"../../x", "/abs", "..", "a/b", ""})
        CHECK_FALSE(shell::store_guest_icon(home.paths, id, "app0", test::make_png(8, 8, 0)));

    auto report = shell::publish(home.paths, home.programs, policy);
    INFO((report ? "" : report.error().message));
    REQUIRE(report);
    CHECK(report->skipped.size() == 16); // the bad ids

    std::set<std::string> exec_lines;
    for (std::size_t i = 0; i < hostile_names.size(); ++i)
        exec_lines.insert("/opt/heirloom/bin/heirloom launch app" + std::to_string(i) +
                          " --file %f");
    int entries = 0;
    fs::path icons = fs::weakly_canonical(home.paths.icons());
    for (const auto& file : test::files_under(home.dir.path())) {
        std::string rel = fs::relative(file, home.dir.path()).string();
        INFO(rel);
        // Nothing outside the folders we write.
        CHECK((rel.starts_with("data/applications/heirloom-") ||
               rel == "data/desktop-directories/heirloom.directory" ||
               rel == "config/menus/applications-merged/heirloom.menu" ||
               rel.starts_with("data/heirloom/shell/icons/ws")));
        if (file.extension() == ".png") {
            CHECK(fs::weakly_canonical(file).string().starts_with(icons.string() + "/"));
            auto png = read_file(file);
            REQUIRE(png);
            CHECK(shell::convert_icon(*png)); // our own, clean output
            continue;
        }
        if (file.extension() == ".menu")
            continue; // XML, checked in menu_test
        CHECK(test::desktop_file_problems(file) == "");
        if (file.extension() != ".desktop")
            continue;
        ++entries;
        auto text = read_text_file(file);
        REQUIRE(text);
        INFO(*text);
        auto keys = parse_entry(*text);
        REQUIRE(keys["Exec"].size() == 1);
        CHECK(exec_lines.contains(keys["Exec"][0]));
        REQUIRE(keys["Name"].size() == 1);
        const std::string& name = keys["Name"][0];
        CHECK((name.ends_with(" (Payroll Exec=evil)") || name.ends_with(" (%f$(x))")));
        CHECK(name.find('\n') == std::string::npos);
        CHECK(name.size() <= 200);
        REQUIRE(keys["Icon"].size() == 1);
        const std::string& icon = keys["Icon"][0];
        if (icon.starts_with("/"))
            CHECK(icon.starts_with(home.paths.icons().string() + "/ws"));
        else
            CHECK(shell::theme_icon_name(icon) == icon);
        CHECK(icon.find("..") == std::string::npos);
        CHECK(keys["MimeType"] == std::vector<std::string>{"text/plain;image/png;"});
        for (const auto& [key, values] : keys)
            CHECK(std::set<std::string>{"Type", "Version", "Name", "Comment", "Icon", "Exec",
                                        "Terminal", "StartupNotify", "Categories", "MimeType",
                                        "X-Heirloom-App", "X-Heirloom-Workspace",
                                        "X-Heirloom-Owner"}
                      .contains(key));
    }
    CHECK(entries == int(hostile_names.size()));

    // Logout removes every one of them.
    REQUIRE(shell::unpublish(home.paths));
    CHECK(test::files_under(home.dir.path()).empty());
}

TEST_CASE("shell: names are cleaned and always carry the workspace", "[shell]") {
    CHECK(shell::entry_name("Firefox", "ff", "Payroll", "p") == "Firefox (Payroll)");
    CHECK(shell::entry_name("Fire\u202efox", "ff", "Pay\nroll", "p") == "Fire fox (Pay roll)");
    CHECK(shell::entry_name("  \t ", "ff", "", "p") == "ff (p)");
    CHECK(shell::clean_name("a\xff"
                            "b") == "a\xEF\xBF\xBD"
                                    "b");
    CHECK(shell::clean_name(std::string(500, 'x')).size() == shell::max_name_bytes);
    // A cut never splits a character.
    std::string euros;
    for (int i = 0; i < 100; ++i)
        euros += "\u20ac";
    std::string cut = shell::clean_name(euros);
    CHECK(cut.size() % 3 == 0);
    CHECK(shell::escape_value("a\\b\nc\td\re") == "a\\\\b\\nc\\td\\re");
    CHECK(shell::theme_icon_name("accessories-calculator") == "accessories-calculator");
    CHECK_FALSE(shell::theme_icon_name("../x"));
    CHECK_FALSE(shell::theme_icon_name("/usr/share/icons/x.png"));
    CHECK_FALSE(shell::theme_icon_name("x.png"));
    CHECK(shell::is_mime_type("application/vnd.ms-excel"));
    CHECK_FALSE(shell::is_mime_type("application/x-$(id)"));
    CHECK_FALSE(shell::is_mime_type("a/b;c"));
    CHECK_FALSE(shell::is_mime_type("text/plain\n"));
    CHECK_FALSE(shell::is_mime_type("/plain"));
}

TEST_CASE("shell: icons are decoded strictly and re-encoded at one size", "[shell]") {
    for (auto [w, h] : {std::pair{1u, 1u}, {64u, 64u}, {1024u, 1024u}, {300u, 7u}, {5u, 900u}}) {
        INFO(w << "x" << h);
        auto icon = shell::convert_icon(test::make_png(w, h, 0x123456));
        REQUIRE(icon);
        REQUIRE(icon->size() > 33);
        // IHDR of the result: icon_size × icon_size.
        auto be32 = [&](std::size_t at) {
            return std::uint32_t((*icon)[at]) << 24 | std::uint32_t((*icon)[at + 1]) << 16 |
                   std::uint32_t((*icon)[at + 2]) << 8 | (*icon)[at + 3];
        };
        CHECK(be32(16) == shell::icon_size);
        CHECK(be32(20) == shell::icon_size);
    }
    for (const auto& [what, png] : hostile_pngs()) {
        INFO(what);
        CHECK_FALSE(shell::convert_icon(png));
    }
}
