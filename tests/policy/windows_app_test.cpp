// Published apps whose command is a Windows program: the policy takes only plain paths on the
// Wine prefix's drive C:, and leaves Unix commands as they were.

#include "heirloom/policy/json.hpp"
#include "heirloom/policy/model.hpp"
#include "policy/sample_policy.hpp"

#include <catch2/catch.hpp>

using namespace heirloom;
using namespace heirloom::policy;
using policy::test::sample_policy;

namespace {

PublishedApp app_with(std::vector<std::string> command) {
    return {"pay", "payroll-ws", "Payroll", std::move(command), "pay", {}, {}, false};
}

std::string app_error(std::vector<std::string> command) {
    auto valid = validate_app(app_with(std::move(command)), "apps[2]");
    REQUIRE_FALSE(valid);
    return valid.error().message;
}

} // namespace

TEST_CASE("a Windows program on drive C: is a valid command", "[policy][windows]") {
    CHECK(validate_app(app_with({"C:\\Apps\\Payroll\\PAY.EXE", "/s"}), "app"));
    CHECK(validate_app(app_with({"c:\\windows\\notepad.exe"}), "app"));
    CHECK(validate_app(app_with({"C:\\Program Files\\Lön\\lön.exe", "D:\\data", "\\\\x"}), "app"));
    // Unix commands are untouched, whatever their arguments look like.
    CHECK(validate_app(app_with({"/usr/bin/xterm", "C:\\x"}), "app"));
    CHECK(validate_app(app_with({"xclock"}), "app"));
}

TEST_CASE("a Windows program elsewhere is refused with a clear error", "[policy][windows]") {
    CHECK(app_error({"D:\\Apps\\PAY.EXE"}) ==
          "apps[2].command[0]: a Windows program must be on drive C: (the guest's Wine "
          "prefix), not D:");
    CHECK(app_error({"z:\\bin\\sh.exe"}) ==
          "apps[2].command[0]: a Windows program must be on drive C: (the guest's Wine "
          "prefix), not Z:");
    struct Case {
        std::string program;
        std::string why;
    };
    for (const Case& c : std::vector<Case>{
             {"\\\\server\\share\\PAY.EXE", "UNC"},
             {"\\\\?\\C:\\PAY.EXE", "UNC"},
             {"\\Apps\\PAY.EXE", "no drive letter"},
             {"C:PAY.EXE", "relative"},
             {"C:/Apps/PAY.EXE", "backslashes"},
             {"C:\\Apps\\..\\..\\PAY.EXE", "\"..\""},
             {"C:\\Apps\\PAY.BAT", ".exe"},
             {"C:\\Apps\\PAY.EXE;rm -rf", ".exe"},
             {"C:\\Apps\\$(reboot).exe", ""},
             {"C:\\NUL\\PAY.EXE", "reserved device name"},
             {"C:\\Apps\\PAY.EXE.", "ends with a dot"},
             {"C:\\Apps\\P|Y.EXE", "'|'"},
         }) {
        INFO(c.program);
        if (c.why.empty()) {
            // Shell metacharacters are plain name characters to Windows: accepted, and never
            // given to a shell.
            CHECK(validate_app(app_with({c.program}), "apps[2]"));
            continue;
        }
        std::string error = app_error({c.program});
        CHECK(error.starts_with("apps[2].command[0]: \""));
        CHECK_THAT(error, Catch::Contains("is not a Windows program path"));
        CHECK_THAT(error, Catch::Contains(c.why));
    }
}

TEST_CASE("a policy set with a bad Windows program does not parse", "[policy][windows]") {
    PolicySet set = sample_policy();
    REQUIRE(validate(set));
    set.apps.push_back(app_with({"D:\\PAY.EXE"}));
    auto valid = validate(set);
    REQUIRE_FALSE(valid);
    CHECK(valid.error().message ==
          "apps[2].command[0]: a Windows program must be on drive C: (the guest's Wine "
          "prefix), not D:");
    auto parsed = parse_policy_set(to_json(set).dump());
    REQUIRE_FALSE(parsed);
    CHECK_THAT(parsed.error().message, Catch::Contains("apps[2].command[0]: a Windows program"));
}
