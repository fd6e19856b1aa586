#include "support/agent_home.hpp"

#include "heirloom/agent/control.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace heirloom::test {
namespace {

const char* const faketime_library = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

} // namespace

AgentHome::AgentHome() {
    fs::create_directories(home());
    fs::create_directories(runtime());
    ::chmod(runtime().c_str(), 0700);
}

bool AgentHome::have_faketime() {
    return fs::exists(faketime_library);
}

std::vector<std::string> AgentHome::environment() const {
    std::vector<std::string> env = {
        "HOME=" + home().string(), "XDG_DATA_HOME=",
        "XDG_CONFIG_HOME=",        "XDG_RUNTIME_DIR=" + runtime().string(),
        "PATH=/usr/bin:/bin",      "LANG=C.UTF-8"};
    env.insert(env.end(), extra_env_.begin(), extra_env_.end());
    return env;
}

std::string AgentHome::log_text() const {
    auto text = read_text_file(log_file(), 4 << 20);
    return text ? *text : std::string();
}

void AgentHome::write_settings(const Json& settings) const {
    std::string text = settings.dump(2);
    write_file(home() / ".config" / "heirloom" / "agent.json", as_bytes(text));
}

bool AgentHome::start(const std::string& faketime) {
    stop();
    std::vector<std::string> env = environment();
    if (!faketime.empty()) {
        env.push_back(std::string("LD_PRELOAD=") + faketime_library);
        env.push_back("FAKETIME=" + faketime);
        env.push_back("FAKETIME_DONT_RESET=1");
        // Setting the clock (date(1)) moves the wall clock only; without this, libfaketime
        // sets CLOCK_BOOTTIME to the faked wall time, and the lease clock's boot-time anchor
        // would see decades pass.
        env.push_back("FAKETIME_DONT_FAKE_MONOTONIC=1");
        // Under AddressSanitizer the preloaded library comes before ASan's runtime.
        env.push_back("ASAN_OPTIONS=verify_asan_link_order=0");
    }
    std::vector<std::string> argv = {(bin_dir() / "heirloom-agent").string(), "--log-level",
                                     "debug"};
    std::vector<char*> args, envp;
    for (auto& a : argv)
        args.push_back(a.data());
    args.push_back(nullptr);
    for (auto& e : env)
        envp.push_back(e.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log_file().c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                     0600);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0)
        return false;
    pid_ = pid;
    for (int i = 0; i < 200; ++i) {
        if (agent::call_agent(socket(), {{"command", "ping"}}, 2))
            return true;
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    stop();
    return false;
}

void AgentHome::stop() {
    if (pid_ <= 0)
        return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 200; ++i) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
}

RunResult AgentHome::heirloom(const std::vector<std::string>& args,
                              const std::string& password) const {
    std::vector<std::string> argv = {"/usr/bin/env", "-i"};
    for (const auto& e : environment())
        argv.push_back(e);
    if (!password.empty())
        argv.push_back("HEIRLOOM_PASSWORD=" + password);
    argv.push_back((bin_dir() / "heirloom").string());
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
}

Json AgentHome::status() const {
    auto r = heirloom({"status", "--json"});
    INFO(r.err << log_text());
    REQUIRE(r.exit_code == 0);
    auto doc = parse_json(r.out);
    REQUIRE(doc);
    return *doc;
}

Json AgentHome::sync() const {
    auto r = heirloom({"sync", "--now", "--wait", "--json"});
    INFO(r.err << log_text());
    REQUIRE(r.exit_code == 0);
    auto doc = parse_json(r.out);
    REQUIRE(doc);
    return *doc;
}

Json AgentHome::workspace(const Json& status, const std::string& id) {
    for (const auto& w : status.value("workspaces", Json::array()))
        if (w.value("id", "") == id)
            return w;
    return nullptr;
}

} // namespace heirloom::test
