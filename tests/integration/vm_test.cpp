// A published app from the guest image, end to end: the real directory (slapd), the real
// server, the guest VHD pushed with heirloom-admin, the real agent syncing it, `heirloom
// launch` booting the VM in real QEMU, and the app's window found on a real X server (Xvfb)
// through Xpra, with a screenshot saved. Then the clipboard: host→guest is allowed and
// arrives; guest→host is forbidden, and a secret the guest's clipboard is shown to hold never
// reaches the host, while host→guest copies keep arriving. Then a host file opened with an app
// (`heirloom launch APP --file PATH`): it arrives whole in the guest and the app gets its path.
//
// The guest image comes from installer/guest/build-guest-image.sh (tests/run-all.sh builds
// it into build/guest/; HEIRLOOM_GUEST_IMAGE points elsewhere).

#include "heirloom/common/crypto.hpp"
#include "support/agent_home.hpp"
#include "support/server_deployment.hpp"
#include "support/xvfb.hpp"

#include <catch2/catch.hpp>
#include <csignal>
#include <fmt/format.h>
#include <regex>
#include <thread>

using namespace heirloom;
using namespace std::chrono_literals;

namespace {

fs::path guest_image() {
    if (const char* p = std::getenv("HEIRLOOM_GUEST_IMAGE"))
        return p;
    return fs::path(HEIRLOOM_SOURCE_DIR) / "build" / "guest" / "guest.vhd";
}

void put(client::ApiClient& admin, const std::string& path, const Json& body) {
    auto r = admin.put(path, body);
    INFO(path << ": " << (r ? "" : r.error().message));
    REQUIRE(r);
}

Json app(const std::string& display_name, std::vector<std::string> command) {
    return {{"workspace", "legacy-ws"},    {"display_name", display_name},
            {"command", command},          {"icon", "app"},
            {"file_types", Json::array()}, {"url_patterns", Json::array()}};
}

std::string read_text(const fs::path& p) {
    auto t = read_text_file(p, 16 << 20);
    return t ? *t : std::string();
}

// What the show-file app printed on the guest's console about the file at a path matching
// name_pattern (a regex), once it has: the path's groups as the regex captured them.
std::smatch wait_for_shown_file(const fs::path& console, const std::string& name_pattern,
                                std::string& text) {
    std::regex line("guest file (/tmp/heirloom-files-[A-Za-z0-9]{6}/" + name_pattern +
                    "): (\\d+) bytes, sha256 ([0-9a-f]{64}), first line ([^\r\n]*?), mode "
                    "(\\d+), owner (\\S+), user (\\S+)");
    std::smatch m;
    for (int i = 0; i < 60; ++i) {
        text = read_text(console);
        if (std::regex_search(text, m, line))
            return m;
        std::this_thread::sleep_for(500ms);
    }
    return m;
}

// Waits until the guest's console holds text, or the timeout passes.
bool wait_for_console(const fs::path& console, const std::string& text,
                      std::chrono::milliseconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (read_text(console).find(text) != std::string::npos)
            return true;
        if (std::chrono::steady_clock::now() >= until)
            return false;
        std::this_thread::sleep_for(200ms);
    }
}

// Copies text on the host display and shows the guest's clipboard (the show-clipboard app)
// until the guest has it; false when it never arrives.
bool host_copy_reaches_guest(const test::Xvfb& x, const test::AgentHome& agent,
                             const fs::path& run_dir, const std::string& text) {
    REQUIRE(x.set_clipboard(text));
    for (int i = 0; i < 20; ++i) {
        REQUIRE(agent.heirloom({"launch", "show-clipboard"}).exit_code == 0);
        if (wait_for_console(run_dir / "console.log", "guest clipboard: " + text, 2s))
            return true;
    }
    return false;
}

} // namespace

TEST_CASE("vm: a published app from the guest image opens as a window on the host display",
          "[vm][integration]") {
    fs::path image = guest_image();
    INFO("guest image " << image
                        << " (build it: bash installer/guest/build-guest-image.sh --out "
                           "build/guest --guest-agent build/bin/heirloom-guest)");
    REQUIRE(fs::exists(image));
    test::Xvfb x;
    INFO(x.error());
    REQUIRE(x.running());
    test::Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    test::HeirloomServer server(slapd);
    HL_SKIP_UNLESS_RUNNING(server);
    test::TempDir dir;

    // The admin pushes the guest image and publishes two of its apps to finance, with the
    // clipboard allowed only from host to guest.
    test::admin_login(server, dir / "home");
    auto pushed = test::run_admin(dir / "home", {"image", "push", "legacy", image.string()});
    INFO(pushed.err);
    REQUIRE(pushed.exit_code == 0);
    auto admin = server.login("carol", "carol-pw");
    Json ws = test::workspace("legacy", "Legacy Desk");
    ws["persistence"] = "revertible";
    ws["memory_mib"] = 512;
    ws["frame_colour"] = "#cc3300";
    put(*admin, "/v1/admin/workspaces/legacy-ws", ws);
    put(*admin, "/v1/admin/apps/clock", app("Clock", {"/usr/bin/xclock"}));
    put(*admin, "/v1/admin/apps/terminal", app("Terminal", {"/usr/bin/xterm"}));
    // Apps that show what the guest's clipboard holds (on the guest's console) and that put
    // text into it.
    put(*admin, "/v1/admin/apps/show-clipboard",
        app("Show clipboard",
            {"/bin/sh", "-c", "echo \"guest clipboard: $(xclip -o -selection clipboard)\""}));
    put(*admin, "/v1/admin/apps/copy-secret",
        app("Copy",
            {"/bin/sh", "-c", "printf secret-from-the-guest | xclip -selection clipboard -i"}));
    // An app that tells (on the guest's console) what it got as its file: the path, the size,
    // the SHA-256 and first line of the content, the mode, and who owns it and who runs it.
    put(*admin, "/v1/admin/apps/show-file",
        app("Show file", {"/bin/sh", "-c",
                          "printf 'guest file %s: %s bytes, sha256 %s, first line %s, mode %s, "
                          "owner %s, user %s\\n' \"$0\" \"$(wc -c < \"$0\")\" "
                          "\"$(sha256sum < \"$0\" | cut -d' ' -f1)\" \"$(head -n1 \"$0\")\" "
                          "\"$(stat -c %a \"$0\")\" \"$(stat -c %U \"$0\")\" \"$(id -un)\""}));
    put(*admin, "/v1/admin/assignments/finance-legacy",
        test::assignment("legacy-ws", "group", "finance", "host-to-guest", "host-to-guest", "off",
                         "off"));

    // Alice's agent, on the Xvfb display, syncs the image.
    test::AgentHome agent;
    agent.add_environment("DISPLAY=" + x.display());
    // HEIRLOOM_ACCEL=tcg for machines whose KVM opens but cannot run the guest's boot loader
    // (nested virtualisation: "KVM internal error ... emulation failure").
    if (const char* accel = std::getenv("HEIRLOOM_ACCEL"))
        agent.add_environment(std::string("HEIRLOOM_ACCEL=") + accel);
    agent.write_settings({{"vm_boot_timeout_seconds", 600}, {"vm_idle_suspend_seconds", 15}});
    REQUIRE(agent.start());
    auto login = agent.heirloom({"login", "--server", server.url(), "--user", "alice", "--ca-file",
                                 server.ca_file().string()},
                                "alice-pw");
    INFO(login.err << agent.log_text());
    REQUIRE(login.exit_code == 0);
    Json status = agent.sync();
    INFO(status.dump(2));
    REQUIRE(test::AgentHome::workspace(status, "legacy-ws")["state"] == "ready");

    // A cold launch: the VM boots, the guest agent starts the app, Xpra shows its window,
    // titled with the workspace's name.
    auto cold = agent.heirloom({"launch", "clock", "--json"});
    fs::path run_dir = agent.runtime() / "heirloom" / "vms" / "legacy-ws";
    INFO(cold.out << cold.err << agent.log_text() << "\n--- guest console\n"
                  << read_text(run_dir / "console.log") << "\n--- xpra client\n"
                  << read_text(run_dir / "xpra-client.log"));
    REQUIRE(cold.exit_code == 0);
    auto launched = parse_json(cold.out);
    REQUIRE(launched);
    CHECK((*launched)["cold"] == true);
    std::string window = x.wait_for_window("\\[Legacy Desk\\]", 60s);
    if (window.empty()) {
        REQUIRE(x.screenshot(test::screenshot_dir() / "vm-no-window.png"));
        FAIL("no window titled [Legacy Desk]; windows: "
             << x.run({"sh", "-c",
                       "for w in $(xdotool search --name .); do xdotool getwindowname "
                       "$w; done"})
                    .out
             << "\n--- xpra client log\n"
             << read_text(run_dir / "xpra-client.log"));
    }
    CHECK_THAT(x.window_title(window), Catch::Contains("xclock") && Catch::Contains("Legacy Desk"));
    std::this_thread::sleep_for(2s); // let the clock paint
    fs::path shot = test::screenshot_dir() / "vm-app-window.png";
    REQUIRE(x.screenshot(shot));
    CHECK(test::Xvfb::colours(shot) > 8); // a window with content, not a blank screen

    // The workspace shows as running, on the image the agent synced.
    Json vm = test::AgentHome::workspace(agent.status(), "legacy-ws")["vm"];
    CHECK(vm["state"] == "running");
    CHECK(vm["image_version"] == 1);

    // The guest listed its apps; the next round reports them to the server for the version
    // the VM runs, where the console offers them.
    agent.sync();
    auto reported = admin->get("/v1/admin/images/legacy/apps");
    INFO((reported ? reported->dump(2) : reported.error().message) << agent.log_text());
    REQUIRE(reported);
    CHECK((*reported)["version"] == 1);
    CHECK((*reported)["reported_by"]["user"] == "alice");

    // A warm launch reuses the running VM.
    auto warm = agent.heirloom({"launch", "terminal", "--json"});
    REQUIRE(warm.exit_code == 0);
    auto warm_json = parse_json(warm.out);
    REQUIRE(warm_json);
    CHECK((*warm_json)["cold"] == false);
    CHECK_FALSE(
        x.wait_for_window("xterm.*\\[Legacy Desk\\]|\\[Legacy Desk\\].*xterm", 90s).empty());

    // Suspend to disk: the VM stops, its windows go; the next launch resumes it (no boot).
    auto suspended = agent.heirloom({"suspend", "legacy-ws"});
    INFO(suspended.err);
    REQUIRE(suspended.exit_code == 0);
    CHECK(test::AgentHome::workspace(agent.status(), "legacy-ws")["vm"]["state"] == "suspended");
    CHECK(x.wait_for_window("\\[Legacy Desk\\]", 1s).empty());
    fs::path state = agent.state() / "overlays" / "legacy-ws.state";
    REQUIRE(fs::exists(state));
    // The saved memory is encrypted: the guest's own hostname, in every guest's RAM, is not
    // in it.
    CHECK(read_text(state).find("heirloom-guest") == std::string::npos);
    auto resumed = agent.heirloom({"launch", "clock", "--json"});
    INFO(resumed.out << resumed.err << "\n--- guest console\n"
                     << read_text(run_dir / "console.log"));
    REQUIRE(resumed.exit_code == 0);
    auto resumed_json = parse_json(resumed.out);
    REQUIRE(resumed_json);
    CHECK((*resumed_json)["resumed"] == true);
    CHECK((*resumed_json)["cold"] == false);
    CHECK_FALSE(x.wait_for_window("\\[Legacy Desk\\]", 60s).empty());
    CHECK_FALSE(fs::exists(state)); // used up

    // Clipboard, host→guest allowed: what the host copies is what the guest reads. It must
    // arrive: the forbidden direction below means something only on a clipboard that works.
    auto arrival = std::chrono::steady_clock::now();
    REQUIRE(host_copy_reaches_guest(x, agent, run_dir, "hello-from-the-host"));
    auto took = std::chrono::steady_clock::now() - arrival;

    // Clipboard, guest→host forbidden: the guest's clipboard holds the secret (the guest
    // itself reads it back), and in twice the time the allowed direction took (10 s at
    // least), it never reaches the host.
    REQUIRE(agent.heirloom({"launch", "copy-secret"}).exit_code == 0);
    bool held = false;
    for (int i = 0; i < 30 && !held; ++i) {
        REQUIRE(agent.heirloom({"launch", "show-clipboard"}).exit_code == 0);
        held =
            wait_for_console(run_dir / "console.log", "guest clipboard: secret-from-the-guest", 2s);
    }
    INFO("--- guest console\n" << read_text(run_dir / "console.log"));
    REQUIRE(held);
    auto watch_until = std::chrono::steady_clock::now() +
                       std::max<std::chrono::nanoseconds>(2 * took, std::chrono::seconds(10));
    while (std::chrono::steady_clock::now() < watch_until) {
        REQUIRE(x.clipboard().find("secret-from-the-guest") == std::string::npos);
        std::this_thread::sleep_for(500ms);
    }
    // And the clipboard still works the allowed way, after the secret was held back.
    CHECK(host_copy_reaches_guest(x, agent, run_dir, "second-copy-from-the-host"));

    // A host file opened with an app, file transfer host→guest allowed: it arrives in a
    // folder of the guest agent's session, whole (two parts of the protocol: more than
    // 512 KiB), the user's, and the app gets its guest path as its argument.
    fs::path host_file = dir / "Q3 report.csv";
    std::string content = "quarter,total from the host\n";
    for (int i = 0; content.size() < 600 * 1024; ++i)
        content += fmt::format("row {},{}.{:02}\n", i, i * 37 % 1000, i % 100);
    test::write_file(host_file, as_bytes(content));
    std::string host_sha = to_hex(crypto::sha256(as_bytes(content)));
    auto opened = agent.heirloom({"launch", "show-file", "--file", host_file.string(), "--json"});
    std::string console;
    INFO(opened.out << opened.err << agent.log_text());
    REQUIRE(opened.exit_code == 0);
    auto shown = wait_for_shown_file(run_dir / "console.log", "Q3 report\\.csv", console);
    INFO("--- guest console\n" << console);
    REQUIRE_FALSE(shown.empty());
    CHECK(shown[2] == std::to_string(content.size()));
    CHECK(shown[3] == host_sha);
    CHECK(shown[4] == "quarter,total from the host");
    CHECK(shown[5] == "600");
    CHECK(shown[6] == shown[7]); // the app's user owns it
    CHECK(shown[6] != "root");
    std::string guest_dir = fs::path(shown[1].str()).parent_path().string();
    // The same file again: a second copy beside the first, which is not replaced.
    REQUIRE(agent.heirloom({"launch", "show-file", "--file", host_file.string()}).exit_code == 0);
    auto again = wait_for_shown_file(run_dir / "console.log", "2-Q3 report\\.csv", console);
    REQUIRE_FALSE(again.empty());
    CHECK(fs::path(again[1].str()).parent_path() == guest_dir);
    CHECK(again[3] == host_sha);

    // A VM that dies is noticed, restarted, and the user told (status and an event).
    vm = test::AgentHome::workspace(agent.status(), "legacy-ws")["vm"];
    REQUIRE(vm.contains("pid"));
    auto qemu_pid = vm["pid"].get<pid_t>();
    REQUIRE(::kill(qemu_pid, SIGKILL) == 0);
    Json after;
    for (int i = 0; i < 100; ++i) {
        std::this_thread::sleep_for(200ms);
        after = test::AgentHome::workspace(agent.status(), "legacy-ws");
        if (after["vm"].value("pid", qemu_pid) != qemu_pid)
            break;
    }
    INFO(after.dump(2));
    CHECK(after["vm"].value("pid", qemu_pid) != qemu_pid);
    CHECK_THAT(after["last_error"].get<std::string>(), Catch::Contains("stopped unexpectedly"));
    CHECK_THAT(after["vm"].value("state", std::string()), Catch::Matches("booting|running"));

    // The restarted VM runs no app: once its guest is up, it is suspended after the idle
    // time (15 s here), while the VM before it, with apps open, never was.
    std::string idle_state;
    for (int i = 0; i < 240 && idle_state != "suspended"; ++i) {
        std::this_thread::sleep_for(500ms);
        idle_state = test::AgentHome::workspace(agent.status(), "legacy-ws")["vm"].value(
            "state", std::string());
    }
    CHECK(idle_state == "suspended");

    // Stop: the VM powers off and the revertible workspace forgets its changes.
    REQUIRE(agent.heirloom({"stop", "legacy-ws"}).exit_code == 0);
    CHECK(test::AgentHome::workspace(agent.status(), "legacy-ws")["vm"]["state"] == "stopped");
    CHECK_FALSE(fs::exists(agent.state() / "overlays" / "legacy-ws.qcow2"));
    CHECK(x.wait_for_window("\\[Legacy Desk\\]", 1s).empty());
}
