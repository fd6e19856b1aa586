// The menu entries on disk: publish, rename and revoke apps; every file passes
// desktop-file-validate; files we did not write survive; icons are converted; the link handler
// is taken and given back.

#include "heirloom/shell/desktop_entry.hpp"
#include "heirloom/shell/mimeapps.hpp"
#include "shell-integration/shell_fixture.hpp"

#include <catch2/catch.hpp>
#include <unistd.h>

using namespace heirloom;
using test::effective_workspace;
using test::published_app;

namespace {

std::string read(const fs::path& path) {
    auto text = read_text_file(path, 1 << 20);
    return text ? *text : std::string("<missing>");
}

void require_valid(const std::vector<fs::path>& files) {
    for (const auto& f : files) {
        if (f.extension() != ".desktop" && f.extension() != ".directory")
            continue;
        INFO(read(f));
        REQUIRE(test::desktop_file_problems(f) == "");
    }
}

policy::EffectivePolicy payroll_policy() {
    policy::EffectivePolicy p;
    p.user = "alice";
    p.workspaces = {effective_workspace("payroll-ws", "Payroll"),
                    effective_workspace("office", "Office 2003")};
    p.apps = {published_app("pay", "payroll-ws", "Payroll 2004", {"application/x-pay", "text/csv"}),
              published_app("word", "office", "Word"), published_app("excel", "office", "Excel")};
    return p;
}

} // namespace

TEST_CASE("shell: publish, rename and revoke apps", "[shell]") {
    test::ShellHome home;
    auto policy = payroll_policy();
    auto report = shell::publish(home.paths, home.programs, policy);
    INFO((report ? "" : report.error().message));
    REQUIRE(report);
    CHECK(report->skipped.empty());

    fs::path pay = home.paths.applications / "heirloom-payroll-ws-pay.desktop";
    fs::path word = home.paths.applications / "heirloom-office-word.desktop";
    fs::path excel = home.paths.applications / "heirloom-office-excel.desktop";
    REQUIRE(fs::exists(pay));
    REQUIRE(fs::exists(word));
    REQUIRE(fs::exists(excel));
    std::string text = read(pay);
    CHECK(text.find("\nName=Payroll 2004 (Payroll)\n") != std::string::npos);
    CHECK(text.find("\nExec=/opt/heirloom/bin/heirloom launch pay --file %f\n") !=
          std::string::npos);
    CHECK(text.find("\nMimeType=application/x-pay;text/csv;\n") != std::string::npos);
    CHECK(text.find("\nCategories=X-Heirloom;\n") != std::string::npos);
    CHECK(text.find("\nX-Heirloom-Owner=heirloom-shell\n") != std::string::npos);
    CHECK(read(word).find("\nExec=/opt/heirloom/bin/heirloom launch word\n") != std::string::npos);
    CHECK(fs::exists(home.paths.menus / "heirloom.menu"));
    CHECK(read(home.paths.menus / "heirloom.menu").find("<Category>X-Heirloom</Category>") !=
          std::string::npos);
    CHECK(fs::exists(home.paths.directories / "heirloom.directory"));
    require_valid(test::files_under(home.dir.path()));
    // No link handler: no app has URL patterns.
    CHECK_FALSE(fs::exists(home.paths.applications / "heirloom-open.desktop"));
    CHECK_FALSE(fs::exists(home.paths.mimeapps));

    // Publishing the same policy again writes nothing.
    auto again = shell::publish(home.paths, home.programs, policy);
    REQUIRE(again);
    CHECK(again->written.empty());
    CHECK(again->removed.empty());

    // Rename: the entry follows, in place.
    policy.apps[1].display_name = "Word 2003";
    policy.workspaces[1].workspace.display_name = "Office";
    auto renamed = shell::publish(home.paths, home.programs, policy);
    REQUIRE(renamed);
    CHECK(read(word).find("\nName=Word 2003 (Office)\n") != std::string::npos);
    CHECK(read(excel).find("\nName=Excel (Office)\n") != std::string::npos);
    require_valid(test::files_under(home.dir.path()));

    // Revoke one app, then a whole workspace.
    policy.apps.erase(policy.apps.begin() + 2);
    auto revoked = shell::publish(home.paths, home.programs, policy);
    REQUIRE(revoked);
    CHECK_FALSE(fs::exists(excel));
    CHECK(fs::exists(word));
    REQUIRE(revoked->removed == std::vector<fs::path>{excel});

    policy.workspaces.pop_back(); // the office workspace is gone: its apps go with it
    REQUIRE(shell::publish(home.paths, home.programs, policy));
    CHECK_FALSE(fs::exists(word));
    CHECK(fs::exists(pay));

    // Logout: nothing of ours is left.
    REQUIRE(shell::unpublish(home.paths));
    CHECK(test::files_under(home.data).empty());
    CHECK(test::files_under(home.config).empty());
}

TEST_CASE("shell: files we did not write survive publish, revoke and logout", "[shell]") {
    test::ShellHome home;
    auto policy = payroll_policy();
    fs::create_directories(home.paths.applications);
    // Our prefix and even the name of an entry we would write, but not our marker.
    fs::path users_own = home.paths.applications / "heirloom-payroll-ws-pay.desktop";
    std::string users_text = "[Desktop Entry]\nType=Application\nName=Mine\nExec=true\n";
    test::write_file(users_own, as_bytes(users_text));
    fs::path unmarked = home.paths.applications / "heirloom-old-app.desktop";
    test::write_file(unmarked, as_bytes(users_text));
    // Our marker, but another user's file (a shared folder, a copy from elsewhere).
    fs::path others = home.paths.applications / "heirloom-office-gone.desktop";
    std::string marked = users_text + "X-Heirloom-Owner=heirloom-shell\n";
    test::write_file(others, as_bytes(marked));
    REQUIRE(::chown(others.c_str(), 4242, 4242) == 0); // the tests run as root
    // A link with our name and marker: pointing at a file of the user's.
    fs::path target = home.dir / "home" / "notes.desktop";
    test::write_file(target, as_bytes(marked));
    fs::path link = home.paths.applications / "heirloom-office-link.desktop";
    fs::create_symlink(target, link);
    // Someone else's menu file where ours goes.
    fs::path menu = home.paths.menus / "heirloom.menu";
    test::write_file(menu, as_bytes(std::string("<Menu><Name>Applications</Name></Menu>\n")));

    auto report = shell::publish(home.paths, home.programs, policy);
    REQUIRE(report);
    CHECK(report->skipped.size() == 2); // the user's pay entry and menu were left alone
    CHECK(read(users_own) == users_text);
    CHECK(read(menu) == "<Menu><Name>Applications</Name></Menu>\n");
    CHECK(fs::exists(home.paths.applications / "heirloom-office-word.desktop"));

    policy.apps.clear();
    REQUIRE(shell::publish(home.paths, home.programs, policy));
    REQUIRE(shell::unpublish(home.paths));
    CHECK(read(users_own) == users_text);
    CHECK(read(unmarked) == users_text);
    CHECK(read(others) == marked);
    CHECK(fs::is_symlink(link));
    CHECK(read(target) == marked);
    CHECK(read(menu) == "<Menu><Name>Applications</Name></Menu>\n");
    CHECK_FALSE(fs::exists(home.paths.applications / "heirloom-office-word.desktop"));
}

TEST_CASE("shell: a guest's icon is converted, cached by ids and used", "[shell]") {
    test::ShellHome home;
    auto policy = payroll_policy();
    Bytes png = test::make_png(300, 200, 0x3366cc);
    REQUIRE(shell::store_guest_icon(home.paths, "payroll-ws", "pay", png));
    fs::path icon = home.paths.icon_file("payroll-ws", "pay");
    REQUIRE(fs::exists(icon));
    auto cached = read_file(icon);
    REQUIRE(cached);
    CHECK(*cached != png); // a fresh file, not the guest's
    auto again = shell::convert_icon(*cached);
    REQUIRE(again); // our own output decodes cleanly

    REQUIRE(shell::publish(home.paths, home.programs, policy));
    std::string pay = read(home.paths.applications / "heirloom-payroll-ws-pay.desktop");
    CHECK(pay.find("\nIcon=" + icon.string() + "\n") != std::string::npos);
    // Before a VM ever ran there is no cached icon: the policy's theme name.
    std::string word = read(home.paths.applications / "heirloom-office-word.desktop");
    CHECK(word.find("\nIcon=generic\n") != std::string::npos);

    // A malformed icon later removes the cached one: the entry falls back.
    Bytes broken(png.begin(), png.begin() + static_cast<long>(png.size() / 2));
    CHECK_FALSE(shell::store_guest_icon(home.paths, "payroll-ws", "pay", broken));
    CHECK_FALSE(fs::exists(icon));
    REQUIRE(shell::publish(home.paths, home.programs, policy));
    pay = read(home.paths.applications / "heirloom-payroll-ws-pay.desktop");
    CHECK(pay.find("\nIcon=generic\n") != std::string::npos);

    // Revoking the app removes its cached icon too.
    REQUIRE(shell::store_guest_icon(home.paths, "payroll-ws", "pay", png));
    policy.apps.erase(policy.apps.begin());
    REQUIRE(shell::publish(home.paths, home.programs, policy));
    CHECK_FALSE(fs::exists(icon));
}

TEST_CASE("shell: the link handler is taken with the first URL app and given back", "[shell]") {
    test::ShellHome home;
    // The user's browser, their default before Heirloom, and an unrelated default.
    test::write_file(home.system / "applications" / "firefox-esr.desktop",
                     as_bytes(std::string("[Desktop Entry]\nType=Application\nName=Firefox\n"
                                          "Exec=firefox %u\n")));
    std::string list = "[Added Associations]\ntext/plain=gedit.desktop;\n\n"
                       "[Default Applications]\nx-scheme-handler/http=firefox-esr.desktop;\n"
                       "image/png=eog.desktop;\n";
    test::write_file(home.paths.mimeapps, as_bytes(list));
    auto policy = payroll_policy();
    policy.apps.push_back(
        published_app("ie", "office", "Internet Explorer", {}, {"https://intranet.example/*"}));
    REQUIRE(shell::publish(home.paths, home.programs, policy));

    fs::path handler = home.paths.applications / "heirloom-open.desktop";
    REQUIRE(fs::exists(handler));
    CHECK(test::desktop_file_problems(handler) == "");
    CHECK(read(handler).find("\nExec=/opt/heirloom/bin/heirloom-open %u\n") != std::string::npos);
    std::string now = read(home.paths.mimeapps);
    CHECK(shell::default_in(now, "x-scheme-handler/http") == "heirloom-open.desktop");
    CHECK(shell::default_in(now, "x-scheme-handler/https") == "heirloom-open.desktop");
    CHECK(shell::default_in(now, "image/png") == "eog.desktop");
    CHECK(now.find("[Added Associations]\ntext/plain=gedit.desktop;\n") != std::string::npos);
    CHECK(read(home.paths.routes_file()).find("\"previous_handler\": \"firefox-esr.desktop\"") !=
          std::string::npos);

    // A later publish keeps the record (it does not record itself as the previous handler).
    REQUIRE(shell::publish(home.paths, home.programs, policy));
    CHECK(read(home.paths.routes_file()).find("firefox-esr.desktop") != std::string::npos);

    // The last URL app revoked: the defaults go back.
    policy.apps.pop_back();
    REQUIRE(shell::publish(home.paths, home.programs, policy));
    CHECK_FALSE(fs::exists(handler));
    CHECK_FALSE(fs::exists(home.paths.routes_file()));
    now = read(home.paths.mimeapps);
    CHECK(shell::default_in(now, "x-scheme-handler/http") == "firefox-esr.desktop");
    // https had no default of the user's: it goes to the browser that had http.
    CHECK(shell::default_in(now, "x-scheme-handler/https") == "firefox-esr.desktop");
    CHECK(shell::default_in(now, "image/png") == "eog.desktop");
}

TEST_CASE("shell: mimeapps.list edits keep the rest of the file", "[shell]") {
    std::string text = "# mine\n[Default Applications]\na/b=x.desktop;y.desktop;\n\n[Other]\n"
                       "a/b=z.desktop\n";
    CHECK(shell::default_in(text, "a/b") == "x.desktop");
    std::string set = shell::with_default(text, "a/b", "ours.desktop");
    CHECK(set == "# mine\n[Default Applications]\na/b=ours.desktop;\n\n[Other]\na/b=z.desktop\n");
    std::string added = shell::with_default(text, "c/d", "ours.desktop");
    CHECK(added == "# mine\n[Default Applications]\na/b=x.desktop;y.desktop;\n\nc/d=ours.desktop;"
                   "\n[Other]\na/b=z.desktop\n");
    CHECK(shell::with_default("", "c/d", "o.desktop") ==
          "[Default Applications]\nc/d=o.desktop;\n");
    CHECK(shell::with_default(set, "a/b", "") == "# mine\n[Default Applications]\n\n[Other]\n"
                                                 "a/b=z.desktop\n");
}

TEST_CASE("shell: desktop shortcuts when the policy asks for them, removed with the app",
          "[shell]") {
    test::ShellHome home;
    home.paths.desktop = home.dir / "home" / "Desktop";
    auto policy = payroll_policy();
    policy.apps[0].desktop_shortcut = true;
    // The user's own launcher with our prefix: never touched.
    fs::path users = home.paths.desktop / "heirloom-office-mine.desktop";
    std::string users_text = "[Desktop Entry]\nType=Application\nName=Mine\nExec=true\n";
    test::write_file(users, as_bytes(users_text));
    REQUIRE(shell::publish(home.paths, home.programs, policy));
    fs::path shortcut = home.paths.desktop / "heirloom-payroll-ws-pay.desktop";
    REQUIRE(fs::exists(shortcut));
    CHECK(read(shortcut) == read(home.paths.applications / "heirloom-payroll-ws-pay.desktop"));
    CHECK((fs::status(shortcut).permissions() & fs::perms::owner_exec) != fs::perms::none);
    CHECK(test::desktop_file_problems(shortcut) == "");
    CHECK_FALSE(fs::exists(home.paths.desktop / "heirloom-office-word.desktop"));

    policy.apps[0].desktop_shortcut = false;
    REQUIRE(shell::publish(home.paths, home.programs, policy));
    CHECK_FALSE(fs::exists(shortcut));
    CHECK(fs::exists(home.paths.applications / "heirloom-payroll-ws-pay.desktop"));

    policy.apps[1].desktop_shortcut = true;
    REQUIRE(shell::publish(home.paths, home.programs, policy));
    CHECK(fs::exists(home.paths.desktop / "heirloom-office-word.desktop"));
    REQUIRE(shell::unpublish(home.paths));
    CHECK_FALSE(fs::exists(home.paths.desktop / "heirloom-office-word.desktop"));
    CHECK(read(users) == users_text);
}
