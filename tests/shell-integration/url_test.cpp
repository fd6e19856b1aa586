// URL patterns and heirloom-open's choice between a workspace's browser and the host's.

#include "heirloom/shell/open_url.hpp"
#include "heirloom/shell/url_route.hpp"
#include "shell-integration/shell_fixture.hpp"

#include <catch2/catch.hpp>

using namespace heirloom;

namespace {

bool match(std::string_view pattern, std::string_view url) {
    auto p = shell::parse_url_pattern(pattern);
    auto u = shell::parse_url(url);
    REQUIRE(p);
    return u && shell::matches(*p, *u);
}

} // namespace

TEST_CASE("shell: URL patterns", "[shell]") {
    CHECK(match("https://intranet.example/*", "https://intranet.example/"));
    CHECK(match("https://intranet.example/*", "https://INTRANET.example/a/b?c=d#frag"));
    CHECK(match("https://intranet.example", "https://intranet.example/anything"));
    CHECK_FALSE(match("https://intranet.example/*", "http://intranet.example/"));
    CHECK(match("*://intranet.example/*", "http://intranet.example/x"));
    CHECK_FALSE(match("https://intranet.example/*", "https://intranet.example.evil.com/"));
    CHECK_FALSE(match("https://intranet.example/*", "https://evil.com/intranet.example/"));
    CHECK_FALSE(match("https://intranet.example/*", "https://intranet.example@evil.com/"));
    CHECK_FALSE(match("https://intranet.example/*", "https://evil.com@intranet.example/"));
    CHECK(match("https://*.corp.example/*", "https://a.b.corp.example/x"));
    CHECK_FALSE(match("https://*.corp.example/*", "https://corp.example/x"));
    CHECK_FALSE(match("https://*.corp.example/*", "https://evilcorp.example/x"));
    CHECK(match("https://pay.example/app/*.aspx", "https://pay.example/app/a/b.aspx"));
    CHECK_FALSE(match("https://pay.example/app/*.aspx", "https://pay.example/app/a.aspx?x=1"));
    CHECK(match("https://pay.example/app/*", "https://pay.example/app/a.aspx?x=1"));
    CHECK_FALSE(match("https://pay.example/app/*", "https://pay.example/apps"));
    CHECK(match("http://legacy.example:8080/*", "http://legacy.example:8080/x"));
    CHECK_FALSE(match("http://legacy.example:8080/*", "http://legacy.example/x"));
    CHECK(match("https://pay.example/*", "https://pay.example:443/x"));
    CHECK_FALSE(match("https://pay.example/*", "https://pay.example:8443/x"));
    CHECK_FALSE(match("https://pay.example/*", "https://pay.example/a b"));
    CHECK_FALSE(match("https://pay.example/*", "https://pay.example/\n"));
    CHECK_FALSE(match("https://pay.example/*", "javascript://pay.example/"));
    CHECK_FALSE(match("https://pay.example/*", "file:///etc/passwd"));

    for (std::string bad : {"intranet.example/*", "ftp://x/", "https://*/", "https://a*.b/",
                            "https://x@y/", "https:///path", "https://*./", "https://x:99999/"}) {
        INFO(bad);
        CHECK_FALSE(shell::parse_url_pattern(bad));
    }
}

TEST_CASE("shell: heirloom-open sends matching URLs to the workspace, others to the host",
          "[shell]") {
    test::ShellHome home;
    test::write_file(home.system / "applications" / "firefox-esr.desktop",
                     as_bytes(std::string("[Desktop Entry]\nType=Application\nName=Firefox\n"
                                          "Exec=firefox %u\n")));
    test::write_file(home.paths.mimeapps,
                     as_bytes(std::string("[Default Applications]\n"
                                          "x-scheme-handler/http=firefox-esr.desktop;\n")));
    policy::EffectivePolicy policy;
    policy.workspaces = {test::effective_workspace("office", "Office")};
    policy.apps = {
        test::published_app("word", "office", "Word"),
        test::published_app("ie", "office", "IE", {}, {"https://intranet.example/*", "bad"}),
        test::published_app("ie2", "office", "IE too", {}, {"*://*.intranet.example/*"})};
    REQUIRE(shell::publish(home.paths, home.programs, policy));

    auto command = [&](std::string_view url, std::string_view browser = "") {
        auto c = shell::open_command(home.paths, home.programs, url, browser);
        return c ? *c : std::vector<std::string>{"error: " + c.error().message};
    };
    using V = std::vector<std::string>;
    CHECK(command("https://intranet.example/a") ==
          V{"/opt/heirloom/bin/heirloom", "launch", "ie", "https://intranet.example/a"});
    CHECK(command("http://x.intranet.example/") ==
          V{"/opt/heirloom/bin/heirloom", "launch", "ie2", "http://x.intranet.example/"});
    fs::path firefox = home.system / "applications" / "firefox-esr.desktop";
    CHECK(command("https://example.org/") ==
          V{"gio", "launch", firefox.string(), "https://example.org/"});
    CHECK(command("https://intranet.example@evil.example/") ==
          V{"gio", "launch", firefox.string(), "https://intranet.example@evil.example/"});

    // No browser recorded (it was never set): $BROWSER, or a clear refusal.
    REQUIRE(shell::unpublish(home.paths));
    fs::remove(home.paths.mimeapps);
    REQUIRE(shell::publish(home.paths, home.programs, policy));
    CHECK(command("https://example.org/", "/usr/bin/w3m") ==
          V{"/usr/bin/w3m", "https://example.org/"});
    CHECK(command("https://example.org/").front().starts_with("error: no browser"));
}
