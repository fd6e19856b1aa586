// The tray: its model from the agent's status (hostile strings included), and the real
// heirloom-tray on a desktop with no tray host, where it must stay quiet.

#include "heirloom/agent/tray_model.hpp"
#include "support/support.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <spawn.h>
#include <sys/wait.h>
#include <thread>

using namespace heirloom;
using namespace heirloom::agent;

namespace {

Json workspace(const std::string& id, const std::string& state, const std::string& lease) {
    return {{"id", id},
            {"display_name", "Payroll " + id},
            {"state", state},
            {"lease_state", lease},
            {"current_version", 3},
            {"last_error", ""}};
}

Json status_with(Json workspaces) {
    return {{"enrolled", true},
            {"enrolment", {{"user", "alice"}, {"server", "https://x"}}},
            {"workspaces", std::move(workspaces)}};
}

// The state letter of process pid in /proc/PID/stat ('S' asleep, 'R' running, 'Z' exited).
char process_state(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat"); // procfs: no size to read by
    std::string stat;
    std::getline(in, stat);
    auto close = stat.rfind(')'); // after the program's name, which may hold anything
    return close != std::string::npos && close + 2 < stat.size() ? stat[close + 2] : '?';
}

} // namespace

TEST_CASE("tray model: states, progress, warnings raised once each", "[agent][tray]") {
    auto offline = tray_model(Json(), "the agent is not running");
    CHECK(offline.state == TrayState::offline);
    CHECK_FALSE(offline.can_sync);
    CHECK(tray_model(Json{{"enrolled", false}}, "").summary == "Heirloom: not logged in");

    auto ready = tray_model(status_with({workspace("a", "ready", "valid")}), "");
    CHECK(ready.state == TrayState::ok);
    CHECK(ready.can_sync);
    CHECK(ready.lines.at(0) == "Payroll a: ready (v3)");
    CHECK(ready.notices.empty());

    Json syncing = workspace("b", "syncing", "valid");
    syncing["progress"] = {{"stage", "sync"}, {"done", 50}, {"total", 200}};
    auto busy = tray_model(status_with({syncing}), "");
    CHECK(busy.state == TrayState::syncing);
    CHECK(busy.lines.at(0) == "Payroll b: syncing 25%");

    auto warned = tray_model(
        status_with({workspace("a", "ready", "warning"), workspace("c", "wiped", "expired")}), "");
    CHECK(warned.state == TrayState::warning);
    REQUIRE(warned.notices.size() == 2);
    CHECK(warned.notices[0].key == "a:warning");
    CHECK(warned.summary == "Heirloom (alice): 2 workspaces, 2 need attention");

    Json failing = workspace("d", "error", "valid");
    failing["last_error"] = "server unreachable";
    CHECK(tray_model(status_with({failing}), "").state == TrayState::error);
}

TEST_CASE("tray model: strings from the server cannot break lines or grow without bound",
          "[agent][tray]") {
    Json w = workspace("x", "error", "valid");
    w["display_name"] = "Evil\nName\r\x1b[31m";
    w["last_error"] = std::string(10000, 'e') + "\n";
    auto m = tray_model(status_with({w}), "");
    REQUIRE(m.lines.size() == 1);
    CHECK(m.lines[0].find('\n') == std::string::npos);
    CHECK(m.lines[0].find('\x1b') == std::string::npos);
    CHECK(m.lines[0].size() < 700);
    CHECK(tray_model(Json::array(), "").state == TrayState::offline); // not even an object
}

TEST_CASE("heirloom-tray: with no tray host it stays quiet and stops on request",
          "[agent][tray][integration]") {
    test::TempDir dir;
    fs::path log = dir / "tray.log";
    std::string program = (test::bin_dir() / "heirloom-tray").string();
    std::vector<std::string> env = {"HOME=" + dir.path().string(),
                                    "XDG_RUNTIME_DIR=" + dir.path().string(),
                                    "QT_QPA_PLATFORM=offscreen"};
    std::vector<char*> envp;
    for (auto& e : env)
        envp.push_back(e.data());
    envp.push_back(nullptr);
    char* argv[] = {program.data(), nullptr};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT, 0600);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid = -1;
    REQUIRE(posix_spawn(&pid, argv[0], &actions, nullptr, argv, envp.data()) == 0);
    posix_spawn_file_actions_destroy(&actions);
    // It says it found no tray host, and is still running after saying so.
    const std::string quiet = "no system tray on this desktop; staying quiet";
    std::string text;
    int status = 0;
    bool exited = false;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (text.find(quiet) == std::string::npos && !exited &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        exited = ::waitpid(pid, &status, WNOHANG) == pid;
        text = read_text_file(log).value_or("");
    }
    INFO(text);
    CHECK(text.find(quiet) != std::string::npos);
    // Then it waits in its event loop (asleep, checking for a tray host now and then) rather
    // than exiting.
    while (!exited && process_state(pid) != 'S' && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        exited = ::waitpid(pid, &status, WNOHANG) == pid;
    }
    if (!exited)
        exited = ::waitpid(pid, &status, WNOHANG) == pid;
    CHECK_FALSE(exited); // still running
    if (!exited) {
        ::kill(pid, SIGTERM);
        CHECK(::waitpid(pid, &status, 0) == pid);
    }
    text = read_text_file(log).value_or("");
    CHECK(text.find("rror") == std::string::npos);
}
