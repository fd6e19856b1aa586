// The guest's published apps: .desktop parsing, Exec splitting (no shell), ids, names and
// icons, and the Xpra flags the device controls give.

#include "guest/desktop_entry.hpp"
#include "guest/display.hpp"
#include "support/guest_frames.hpp"
#include "support/support.hpp"

#include <catch2/catch.hpp>

using namespace heirloom;
using namespace heirloom::guest;
using namespace heirloom::test;

TEST_CASE("guest apps: Exec lines split like the Desktop Entry spec says, with no shell",
          "[guest]") {
    using Argv = std::vector<std::string>;
    CHECK(split_exec("gedit %U").value() == Argv{"gedit"});
    CHECK(split_exec("\"/opt/my app/run\" --flag %f").value() == Argv{"/opt/my app/run", "--flag"});
    CHECK(split_exec(R"(sh -c "echo \"hi\" \$HOME \\ \`x\`")").value() ==
          Argv{"sh", "-c", "echo \"hi\" $HOME \\ `x`"});
    CHECK(split_exec("app --name=%c --icon %i %k %F").value() == Argv{"app", "--name=", "--icon"});
    CHECK(split_exec("app 100%% \"\"").value() == Argv{"app", "100%", ""});
    CHECK(split_exec("sh -c 'exit 3'").value() == Argv{"sh", "-c", "exit 3"});
    CHECK(split_exec("  app   a  ").value() == Argv{"app", "a"});
    // No shell: what would be shell syntax stays literal text in the arguments.
    CHECK(split_exec("app $(rm -rf /); rm ~ | x > y").value() ==
          Argv{"app", "$(rm", "-rf", "/);", "rm", "~", "|", "x", ">", "y"});
    for (std::string bad :
         {"app %z", "app \"unterminated", "app \"bad\\q\"", "app a\"b\"", "app \"a\"b", "\"\"",
          "   ", "", "app %", "app\tx", "app\nrm", "app \\"})
        CHECK_FALSE(split_exec(bad));
    CHECK(split_exec("app %z").error().message.find("%z") != std::string::npos);
}

TEST_CASE("guest apps: desktop files are parsed strictly", "[guest]") {
    auto entry = parse_desktop_entry(
        "# comment\n[Desktop Entry]\r\nType=Application\nName=Text Editor\nName[de]=Editor\n"
        "Exec=app \"a\\\\\\\\b\"\\sx\nIcon=editor\nMimeType=text/plain;text/x-c\\;x;\n"
        "NoDisplay=false\n\n[Desktop Action new]\nExec=other\nName=Other\n");
    REQUIRE(entry);
    CHECK(entry->type == "Application");
    CHECK(entry->name == "Text Editor");
    CHECK(entry->exec == "app \"a\\\\b\" x");
    CHECK(split_exec(entry->exec).value() == std::vector<std::string>{"app", "a\\b", "x"});
    CHECK(entry->icon == "editor");
    CHECK(entry->mime_types == std::vector<std::string>{"text/plain", "text/x-c;x"});
    CHECK_FALSE(entry->no_display);

    for (std::string bad :
         {std::string("[Desktop Entry]\nName=a\nName=b\n"), std::string("[Other]\nName=a\n"),
          std::string("Name=a\n[Desktop Entry]\n"), std::string("[Desktop Entry]\nName\n"),
          std::string("[Desktop Entry]\nNoDisplay=yes\n"), std::string("[Desktop Entry\n"),
          std::string("[Desktop Entry]\nName=a") + '\0' + "b\n",
          std::string("[Desktop Entry]\nName=\xff\n"), std::string("[Desktop Entry]\nN@me=x\n"),
          std::string(""), std::string("[Desktop Entry]\n[Desktop Entry]\n")})
        CHECK_FALSE(parse_desktop_entry(bad));
}

TEST_CASE("guest apps: ids, names and icons from the files", "[guest]") {
    CHECK(app_id_from_file_name("org.gnome.Calculator.desktop") == "org.gnome.calculator");
    CHECK(app_id_from_file_name("My App!.desktop") == "my-app-");
    CHECK(app_id_from_file_name("../../etc.desktop") == "etc");
    CHECK(app_id_from_file_name("kde-konsole.desktop") == "kde-konsole");
    CHECK_FALSE(app_id_from_file_name("....desktop"));
    CHECK(app_id_from_file_name(std::string(100, 'a') + ".desktop")->size() == max_id_bytes);
    CHECK(clean_app_name("Evil\xe2\x80\xae"
                         "exe.txt") == "Evil exe.txt");
    CHECK(clean_app_name("  tab\there ") == "tab here");
    auto long_name = clean_app_name(std::string(100, 'x') + std::string(30, '\0') +
                                    "\xc3\xa9\xc3\xa9" + std::string(100, 'y'));
    CHECK(long_name.size() <= max_name_bytes);
    CHECK(is_clean_name(long_name));

    test::TempDir dir;
    auto png = fake_png(1000);
    test::write_file(dir / "icons/editor.png", png);
    test::write_file(dir / "icons/fake.png", as_bytes("not a png at all"));
    auto huge = fake_png(max_icon_bytes + 1);
    test::write_file(dir / "icons/huge.png", huge);
    std::vector<fs::path> icon_dirs = {dir / "nowhere", dir / "icons"};
    CHECK(find_icon("editor", icon_dirs) == png);
    CHECK(find_icon("editor.png", icon_dirs) == png);
    CHECK(find_icon((dir / "icons/editor.png").string(), {}) == png);
    CHECK_FALSE(find_icon("fake", icon_dirs));
    CHECK_FALSE(find_icon("huge", icon_dirs));
    CHECK_FALSE(find_icon("../icons/editor", {dir / "nowhere"}));
    CHECK_FALSE(find_icon((dir / "icons/editor").string(), {}));
    CHECK_FALSE(find_icon("missing", icon_dirs));
}

TEST_CASE("guest apps: a folder of desktop files becomes the published list", "[guest]") {
    test::TempDir dir;
    auto png = fake_png(500);
    test::write_file(dir / "icons/calc.png", png);
    auto write = [&](const std::string& name, const std::string& text) {
        test::write_file(dir / "apps" / name, as_bytes(text));
    };
    write("Calc.desktop", "[Desktop Entry]\nType=Application\nName=Calculator\nExec=calc %F\n"
                          "Icon=calc\nMimeType=text/plain;not a type;application/x-calc;\n");
    write("hidden.desktop", "[Desktop Entry]\nType=Application\nName=H\nExec=h\nNoDisplay=true\n");
    write("gone.desktop", "[Desktop Entry]\nType=Application\nName=G\nExec=g\nHidden=true\n");
    write("link.desktop", "[Desktop Entry]\nType=Link\nName=L\nURL=http://x\n");
    write("broken.desktop", "[Desktop Entry]\nType=Application\nName=B\nExec=b \"oops\n");
    write("noexec.desktop", "[Desktop Entry]\nType=Application\nName=N\n");
    write("tryexec.desktop", "[Desktop Entry]\nType=Application\nName=T\nExec=t\n"
                             "TryExec=/nonexistent/heirloom-test\n");
    write("sub/nested.desktop", "[Desktop Entry]\nType=Application\nName=Nested\nExec=n\n");
    write("spoof.desktop", "[Desktop Entry]\nType=Application\nName=\xe2\x80\xae"
                           "Firefox\n"
                           "Exec=spoof\n");
    write("notes.txt", "[Desktop Entry]\nType=Application\nName=No\nExec=no\n");
    std::vector<std::string> warnings;
    auto apps = scan_apps({{dir / "apps", dir / "missing"}, {dir / "icons"}},
                          [&](std::string_view w) { warnings.emplace_back(w); });
    std::vector<std::string> ids;
    for (const auto& app : apps)
        ids.push_back(app.app.id);
    CHECK(ids == std::vector<std::string>{"calc", "spoof", "sub-nested"});
    REQUIRE(apps.size() == 3);
    CHECK(apps[0].app.name == "Calculator");
    CHECK(apps[0].app.command == "calc %F");
    CHECK(apps[0].argv == std::vector<std::string>{"calc"});
    CHECK(apps[0].app.icon_png == png);
    CHECK(apps[0].app.file_types == std::vector<std::string>{"text/plain", "application/x-calc"});
    CHECK(apps[1].app.name == "Firefox");
    CHECK(apps[2].app.icon_png.empty());
    // Broken files are reported; those that just are not apps are not.
    CHECK(warnings.size() == 3);
    std::string all;
    for (const auto& w : warnings)
        all += w + "\n";
    INFO(all);
    CHECK(all.find("broken.desktop") != std::string::npos);
    CHECK(all.find("noexec.desktop") != std::string::npos);
    CHECK(all.find("tryexec.desktop") != std::string::npos);
    CHECK(encode(GuestMessage(AppList{{apps[0].app, apps[1].app, apps[2].app}})));
}

TEST_CASE("guest display: Xpra flags follow the device controls", "[guest]") {
    XpraSettings settings;
    auto has = [](const std::vector<std::string>& argv, const std::string& arg) {
        return std::find(argv.begin(), argv.end(), arg) != argv.end();
    };
    auto closed = xpra_command(settings, DeviceControls{});
    CHECK(closed[0] == "xpra");
    CHECK(closed[1] == "start");
    CHECK(closed[2] == ":10");
    for (const char* arg : {"--daemon=no", "--bind=/run/heirloom/xpra.sock", "--clipboard=no",
                            "--file-transfer=no", "--printing=no", "--mdns=no", "--html=off",
                            "--start-via-proxy=no", "--systemd-run=no", "--dbus-proxy=no"})
        CHECK(has(closed, arg));
    auto open = xpra_command(settings, {Direction::host_to_guest, Direction::both, true, true});
    CHECK(has(open, "--clipboard=yes"));
    CHECK(has(open, "--clipboard-direction=to-server"));
    CHECK(has(open, "--file-transfer=yes"));
    CHECK(has(open, "--printing=yes"));
    CHECK(has(xpra_command(settings, {Direction::guest_to_host, {}, false, false}),
              "--clipboard-direction=to-client"));
    CHECK(has(xpra_command(settings, {Direction::both, {}, false, false}),
              "--clipboard-direction=both"));
}
