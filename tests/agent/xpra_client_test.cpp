// The host side of a workspace's device controls: the Xpra client's flags. The guest enforces
// the policy too (tests/agent/guest_agent_test.cpp), but the host's client must not offer
// what the policy forbids: with the clipboard off it has no clipboard at all, and each
// direction lets through only that direction.

#include "heirloom/agent/workspace_vm.hpp"

#include <catch2/catch.hpp>
#include <map>

using namespace heirloom;
using namespace heirloom::agent;

namespace {

// The client's --NAME=VALUE flags whose name holds word, as "NAME=VALUE ..." sorted by name;
// a flag given more than once fails the test (Xpra takes the last, so a second one could undo
// the first).
std::string flags_about(const std::vector<std::string>& args, const std::string& word) {
    std::map<std::string, std::string> found;
    for (const auto& a : args) {
        if (!a.starts_with("--") || a.find(word) == std::string::npos)
            continue;
        auto eq = a.find('=');
        std::string name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
        std::string value = eq == std::string::npos ? "" : a.substr(eq + 1);
        INFO("flag " << a);
        CHECK(found.emplace(name, value).second); // given once
    }
    std::string text;
    for (const auto& [name, value] : found)
        text += (text.empty() ? "" : " ") + name + "=" + value;
    return text;
}

std::vector<std::string> args_for(guest::DeviceControls controls) {
    DisplaySettings s;
    s.workspace_name = "Payroll";
    s.controls = controls;
    return xpra_client_args("/run/heirloom/vms/payroll/display.sock", s);
}

} // namespace

TEST_CASE("xpra client: the clipboard flags follow the policy's direction, off means none",
          "[vm][xpra]") {
    using guest::Direction;
    // Xpra's direction is seen from its server, the guest: "to-server" is host→guest.
    struct Case {
        Direction direction;
        std::string clipboard;
        std::string xpra_direction;
    };
    for (const Case& c : {Case{Direction::off, "no", "disabled"},
                          Case{Direction::host_to_guest, "yes", "to-server"},
                          Case{Direction::guest_to_host, "yes", "to-client"},
                          Case{Direction::both, "yes", "both"}}) {
        guest::DeviceControls controls;
        controls.clipboard = c.direction;
        auto args = args_for(controls);
        INFO("clipboard " << guest::direction_name(c.direction));
        CHECK(flags_about(args, "clipboard") ==
              "clipboard=" + c.clipboard + " clipboard-direction=" + c.xpra_direction);
    }
}

TEST_CASE("xpra client: file transfer only into the guest, printing only when allowed",
          "[vm][xpra]") {
    using guest::Direction;
    for (Direction d :
         {Direction::off, Direction::host_to_guest, Direction::guest_to_host, Direction::both}) {
        for (bool printing : {false, true}) {
            guest::DeviceControls controls;
            controls.file_transfer = d;
            controls.printing = printing;
            auto args = args_for(controls);
            INFO("file transfer " << guest::direction_name(d) << ", printing " << printing);
            // Files the host sends in are the only transfer the Xpra client takes part in;
            // the guest never opens files or links on the host.
            bool in = d == Direction::host_to_guest || d == Direction::both;
            CHECK(flags_about(args, "file-transfer") ==
                  std::string("file-transfer=") + (in ? "yes" : "no"));
            CHECK(flags_about(args, "open-") == "open-files=no open-url=no");
            CHECK(flags_about(args, "printing") ==
                  std::string("printing=") + (printing ? "yes" : "no"));
            // The clipboard, left at its default, is off.
            CHECK(flags_about(args, "clipboard") == "clipboard=no clipboard-direction=disabled");
        }
    }
}
