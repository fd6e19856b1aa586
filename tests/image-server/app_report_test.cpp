// What agents report about the apps a guest holds: the parser holds every field to its rules
// (ids, printable names, commands, MIME types, PNG icons, counts, sizes), and the metadata
// keeps one report per image version.

#include "heirloom/agent/guest_protocol.hpp"
#include "heirloom/common/json.hpp"
#include "heirloom/server/app_report.hpp"
#include "heirloom/server/metadata.hpp"
#include "heirloom/shell/icon.hpp"
#include "support/support.hpp"

#include <catch2/catch.hpp>
#include <functional>

using namespace heirloom;
using namespace heirloom::server;

namespace {

Bytes small_png(std::uint32_t width, std::uint32_t height) {
    Bytes rgba(std::size_t(width) * height * 4, 0x80);
    auto png = shell::encode_png(width, height, rgba);
    REQUIRE(png);
    return *png;
}

Json payroll_app() {
    return {{"id", "payroll"},
            {"name", "Payroll"},
            {"command", "C:\\Apps\\Payroll\\PAYROLL.EXE"},
            {"file_types", {"application/x-payroll", "text/csv"}},
            {"icon_png_base64", guest::base64_encode(small_png(64, 64))}};
}

// The message a report with one app changed by edit is refused with.
std::string refusal(const std::function<void(Json&)>& edit) {
    Json app = payroll_app();
    edit(app);
    auto parsed = parse_app_report(Json{{"apps", {app}}}.dump());
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().code == Errc::invalid_argument);
    return parsed.error().message;
}

} // namespace

TEST_CASE("app report: a valid report parses whole", "[server][apps]") {
    Json second = {{"id", "clock"},
                   {"name", "Horloge ✓ 時計"},
                   {"command", "/usr/bin/xclock"},
                   {"file_types", Json::array()}};
    auto parsed = parse_app_report(Json{{"apps", {payroll_app(), second}}}.dump());
    INFO((parsed ? "" : parsed.error().message));
    REQUIRE(parsed);
    REQUIRE(parsed->size() == 2);
    CHECK((*parsed)[0].id == "payroll");
    CHECK((*parsed)[0].command == "C:\\Apps\\Payroll\\PAYROLL.EXE");
    CHECK((*parsed)[0].file_types == std::vector<std::string>{"application/x-payroll", "text/csv"});
    CHECK((*parsed)[0].icon_png == small_png(64, 64));
    CHECK((*parsed)[1].name == "Horloge ✓ 時計");
    CHECK((*parsed)[1].icon_png.empty());
    auto empty = parse_app_report(R"({"apps": []})");
    REQUIRE(empty);
    CHECK(empty->empty());
}

TEST_CASE("app report: hostile fields are refused with a message naming them", "[server][apps]") {
    CHECK_THAT(refusal([](Json& a) { a["id"] = "payRoll"; }),
               Catch::Contains("apps[0].id") && Catch::Contains("a-z"));
    CHECK_THAT(refusal([](Json& a) { a["id"] = "../etc"; }), Catch::Contains("apps[0].id"));
    CHECK_THAT(refusal([](Json& a) { a["id"] = "a/b"; }), Catch::Contains("apps[0].id"));
    CHECK_THAT(refusal([](Json& a) { a["id"] = std::string(65, 'a'); }),
               Catch::Contains("1 to 64"));
    CHECK_THAT(refusal([](Json& a) { a["id"] = ""; }), Catch::Contains("1 to 64"));
    CHECK_THAT(refusal([](Json& a) { a["id"] = 7; }), Catch::Contains("expected a string"));
    CHECK_THAT(refusal([](Json& a) { a["name"] = std::string(129, 'n'); }),
               Catch::Contains("apps[0].name") && Catch::Contains("128"));
    CHECK_THAT(refusal([](Json& a) { a["name"] = ""; }), Catch::Contains("apps[0].name"));
    CHECK_THAT(refusal([](Json& a) { a["name"] = "Pay\u202Egpj.exe"; }),
               Catch::Contains("bidirectional"));
    CHECK_THAT(refusal([](Json& a) { a["name"] = "\u2066Payroll\u2069"; }),
               Catch::Contains("bidirectional"));
    CHECK_THAT(refusal([](Json& a) { a["name"] = "Pay\u200Broll"; }), Catch::Contains("invisible"));
    CHECK_THAT(refusal([](Json& a) { a["name"] = "Pay\nroll"; }), Catch::Contains("control"));
    CHECK_THAT(refusal([](Json& a) { a["name"] = "Pay\u0085roll"; }), Catch::Contains("control"));
    CHECK_THAT(refusal([](Json& a) { a["command"] = std::string(4097, 'c'); }),
               Catch::Contains("apps[0].command") && Catch::Contains("4096"));
    CHECK_THAT(refusal([](Json& a) { a["command"] = "run\tme"; }), Catch::Contains("control"));
    CHECK_THAT(refusal([](Json& a) { a["file_types"] = {"text"}; }),
               Catch::Contains("file_types[0]") && Catch::Contains("MIME"));
    CHECK_THAT(refusal([](Json& a) { a["file_types"] = {"text/plain; charset=x"}; }),
               Catch::Contains("MIME"));
    CHECK_THAT(refusal([](Json& a) { a["file_types"] = {"/plain"}; }), Catch::Contains("MIME"));
    CHECK_THAT(refusal([](Json& a) { a["file_types"] = "text/plain"; }),
               Catch::Contains("file_types"));
    CHECK_THAT(refusal([](Json& a) {
                   a["file_types"] = Json::array();
                   for (int i = 0; i < 65; ++i)
                       a["file_types"].push_back("text/x-" + std::to_string(i));
               }),
               Catch::Contains("64"));
    CHECK_THAT(refusal([](Json& a) { a["surprise"] = true; }), Catch::Contains("unknown field"));
    CHECK_THAT(refusal([](Json& a) { a.erase("command"); }), Catch::Contains("command: missing"));
}

TEST_CASE("app report: icons must be small, whole PNG files", "[server][apps]") {
    Bytes png = small_png(32, 32);
    CHECK(check_icon_png(png));
    CHECK(check_icon_png(small_png(256, 1)));
    CHECK_THAT(check_icon_png(small_png(257, 16)).error().message, Catch::Contains("257×16"));
    Bytes truncated(png.begin(), png.end() - 5);
    CHECK_THAT(check_icon_png(truncated).error().message, Catch::Contains("truncated"));
    std::string_view gif_text = "GIF89a....................................................";
    Bytes gif(gif_text.begin(), gif_text.end());
    CHECK_THAT(check_icon_png(gif).error().message, Catch::Contains("not a PNG"));
    Bytes lying = png;
    lying[19] = 0; // width 0
    CHECK_FALSE(check_icon_png(lying));
    lying = png;
    lying[20] = 0x7f; // a height of two billion pixels: an icon bomb
    CHECK_FALSE(check_icon_png(lying));
    lying = png;
    lying[24] = 3; // bit depth 3 does not exist
    CHECK_FALSE(check_icon_png(lying));
    lying = png;
    lying[12] = 'X'; // the first chunk is not IHDR
    CHECK_FALSE(check_icon_png(lying));
    Bytes huge = png;
    huge.insert(huge.begin() + 33, (256u << 10), 0);
    CHECK_THAT(check_icon_png(huge).error().message, Catch::Contains("256 KiB"));

    CHECK_THAT(refusal([](Json& a) { a["icon_png_base64"] = "R0lGODlhAQABAAAAACw="; }),
               Catch::Contains("icon_png_base64"));
    CHECK_THAT(refusal([](Json& a) { a["icon_png_base64"] = "not base64!"; }),
               Catch::Contains("base64"));
    CHECK_THAT(refusal([&](Json& a) { a["icon_png_base64"] = guest::base64_encode(truncated); }),
               Catch::Contains("truncated"));
    CHECK_THAT(refusal([](Json& a) { a["icon_png_base64"] = std::string(400000, 'A'); }),
               Catch::Contains("256 KiB"));
}

TEST_CASE("app report: base64 is strict", "[server][apps]") {
    CHECK(decode_base64("") == Bytes{});
    CHECK(decode_base64("TWFu") == Bytes{'M', 'a', 'n'});
    CHECK(decode_base64("TWE=") == Bytes{'M', 'a'});
    CHECK(decode_base64("TQ==") == Bytes{'M'});
    CHECK_FALSE(decode_base64("TQ="));
    CHECK_FALSE(decode_base64("TR=="));     // not canonical
    CHECK_FALSE(decode_base64("T===="));    // padding in the wrong place
    CHECK_FALSE(decode_base64("TQ==TWFu")); // padding before the end
    CHECK_FALSE(decode_base64("TW\nFu"));
}

TEST_CASE("app report: whole reports are bounded", "[server][apps]") {
    Json many = {{"apps", Json::array()}};
    for (int i = 0; i < 257; ++i)
        many["apps"].push_back({{"id", "app" + std::to_string(i)},
                                {"name", "App"},
                                {"command", "/bin/true"},
                                {"file_types", Json::array()}});
    CHECK_THAT(parse_app_report(many.dump()).error().message, Catch::Contains("256 apps"));
    Json twice = {{"apps", {payroll_app(), payroll_app()}}};
    CHECK_THAT(parse_app_report(twice.dump()).error().message, Catch::Contains("repeated"));
    CHECK_THAT(parse_app_report(R"({"apps": {}})").error().message, Catch::Contains("list"));
    CHECK_THAT(parse_app_report(R"({"apps": [], "more": 1})").error().message,
               Catch::Contains("unknown field"));
    CHECK_FALSE(parse_app_report("[]"));
    CHECK_FALSE(parse_app_report(R"({"apps": [)"));
    CHECK_FALSE(parse_app_report(R"({"apps": ["payroll"]})"));
    CHECK_THAT(parse_app_report(std::string(max_app_report_body + 1, ' ')).error().message,
               Catch::Contains("8 MiB"));
}

TEST_CASE("metadata: one app report per image version, the newest listed by default",
          "[server][metadata][apps]") {
    test::TempDir dir;
    auto m = Metadata::open(dir / "metadata.db");
    REQUIRE(m);
    auto parsed = parse_app_report(Json{{"apps", {payroll_app()}}}.dump());
    REQUIRE(parsed);
    CHECK((*m)->app_report("payroll", std::nullopt).value() == std::nullopt);

    AppReport v1{"payroll", 1, "ep-1", "alice", "", 100, *parsed, {}};
    REQUIRE((*m)->save_app_report(v1));
    ReportedApp clock{"clock", "Clock", "/usr/bin/xclock", {}, {}};
    AppReport v2{"payroll", 2, "ep-2", "bob", "", 200, {clock, (*parsed)[0]}, {}};
    REQUIRE((*m)->save_app_report(v2));

    auto latest = (*m)->app_report("payroll", std::nullopt);
    REQUIRE(latest);
    REQUIRE(*latest);
    CHECK((*latest)->version == 2);
    CHECK((*latest)->user == "bob");
    REQUIRE((*latest)->apps.size() == 2);
    CHECK((*latest)->apps[0].id == "clock"); // in the order reported
    CHECK((*latest)->has_icon == std::vector<bool>{false, true});
    CHECK((*latest)->apps[1].file_types == (*parsed)[0].file_types);
    CHECK((*latest)->apps[1].icon_png.empty()); // icons are fetched one by one

    // A later report for version 1 replaces the earlier one entirely.
    AppReport again{"payroll", 1, "ep-3", "carol", "", 300, {clock}, {}};
    REQUIRE((*m)->save_app_report(again));
    auto first = (*m)->app_report("payroll", 1);
    REQUIRE(first);
    REQUIRE(*first);
    CHECK((*first)->agent == "ep-3");
    CHECK((*first)->reported == 300);
    REQUIRE((*first)->apps.size() == 1);
    CHECK((*first)->apps[0].id == "clock");
    CHECK((*m)->app_icon("payroll", 1, "payroll").value() == std::nullopt);

    auto icon = (*m)->app_icon("payroll", 2, "payroll");
    REQUIRE(icon);
    REQUIRE(*icon);
    CHECK(**icon == (*parsed)[0].icon_png);
    CHECK((*m)->app_icon("payroll", 2, "clock").value() == std::nullopt);
    CHECK((*m)->app_report("payroll", 3).value() == std::nullopt);
    CHECK((*m)->app_report("cad", std::nullopt).value() == std::nullopt);
}
