// The agent's report of the apps a guest holds: icons re-encoded (never the guest's bytes),
// refused icons and apps beyond the limit named, and a ledger so an unchanged report is not
// sent again, across restarts.

#include "heirloom/agent/app_report.hpp"
#include "heirloom/shell/icon.hpp"
#include "support/support.hpp"

#include <catch2/catch.hpp>

using namespace heirloom;
using namespace heirloom::agent;

namespace {

std::vector<std::uint8_t> guest_png(std::uint32_t size) {
    Bytes rgba(std::size_t(size) * size * 4, 0xc0);
    auto png = shell::encode_png(size, size, rgba);
    REQUIRE(png);
    return *png;
}

guest::App app(std::string id, std::vector<std::uint8_t> icon = {}) {
    return {id, "App " + id, "C:\\Apps\\" + id + "\\" + id + ".exe", icon, {"text/plain"}};
}

} // namespace

TEST_CASE("app report: icons are re-encoded, refused ones left out and named", "[agent][apps]") {
    auto original = guest_png(200);
    std::vector<std::uint8_t> broken(original.begin(), original.begin() + 60);
    auto report = make_app_report("legacy-ws", "legacy", 3,
                                  {app("payroll", original), app("notes", broken), app("plain")});
    CHECK(app_report_path(report) == "/v1/agent/images/legacy/versions/3/apps");
    const Json& apps = report.body["apps"];
    REQUIRE(apps.size() == 3);
    CHECK(apps[0]["id"] == "payroll");
    CHECK(apps[0]["command"] == "C:\\Apps\\payroll\\payroll.exe");
    CHECK(apps[0]["file_types"] == Json({"text/plain"}));
    auto sent = guest::base64_decode(apps[0]["icon_png_base64"].get<std::string>());
    REQUIRE(sent);
    CHECK(*sent != original); // a fresh PNG of the host's icon size, not the guest's file
    auto expected = shell::convert_icon(original);
    REQUIRE(expected);
    CHECK(*sent == *expected);
    CHECK_FALSE(apps[1].contains("icon_png_base64"));
    CHECK_FALSE(apps[2].contains("icon_png_base64"));
    REQUIRE(report.problems.size() == 1);
    CHECK_THAT(report.problems[0], Catch::Contains("'notes'"));
}

TEST_CASE("app report: at most 256 apps go, and the rest is named", "[agent][apps]") {
    std::vector<guest::App> many;
    for (int i = 0; i < 300; ++i)
        many.push_back(app("app" + std::to_string(i)));
    auto report = make_app_report("ws", "img", 1, many);
    CHECK(report.body["apps"].size() == max_reported_apps);
    REQUIRE(report.problems.size() == 1);
    CHECK_THAT(report.problems[0], Catch::Contains("300 apps"));
}

TEST_CASE("app report: the ledger sends a report once per content and version", "[agent][apps]") {
    test::TempDir dir;
    fs::path file = dir / "app-reports.json";
    auto v1 = make_app_report("ws", "legacy", 1, {app("payroll")});
    auto same = make_app_report("other-ws", "legacy", 1, {app("payroll")});
    auto changed = make_app_report("ws", "legacy", 1, {app("payroll"), app("notes")});
    auto v2 = make_app_report("ws", "legacy", 2, {app("payroll")});
    CHECK(v1.digest == same.digest);
    CHECK(v1.digest != changed.digest);
    {
        auto ledger = AppReportLedger::load(file);
        CHECK_FALSE(ledger.sent("https://a", v1));
        REQUIRE(ledger.record("https://a", v1));
        CHECK(ledger.sent("https://a", same));
        CHECK_FALSE(ledger.sent("https://a", changed));
        CHECK_FALSE(ledger.sent("https://a", v2));
        CHECK_FALSE(ledger.sent("https://b", v1)); // another server has not seen it
    }
    auto reloaded = AppReportLedger::load(file);
    CHECK(reloaded.sent("https://a", v1));
    CHECK((fs::status(file).permissions() & fs::perms::others_read) == fs::perms::none);

    // A damaged ledger only means the reports go again.
    REQUIRE(write_file_atomic(file, as_bytes("{not json"), Durability::none, FileMode::owner_only));
    CHECK_FALSE(AppReportLedger::load(file).sent("https://a", v1));
}
