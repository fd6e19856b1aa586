#pragma once

// One endpoint user for the agent's tests: a private HOME with its XDG folders, the real
// heirloom-agent daemon started in it (optionally under libfaketime), and the real `heirloom`
// command run against it.

#include "heirloom/common/json.hpp"
#include "support/support.hpp"

#include <sys/types.h>

namespace heirloom::test {

class AgentHome {
  public:
    AgentHome();
    ~AgentHome() { stop(); }
    AgentHome(const AgentHome&) = delete;
    AgentHome& operator=(const AgentHome&) = delete;

    fs::path home() const { return dir_.path() / "home"; }
    fs::path state() const { return home() / ".local" / "share" / "heirloom"; }
    fs::path runtime() const { return dir_.path() / "run"; }
    fs::path socket() const { return runtime() / "heirloom" / "agent.sock"; }
    fs::path log_file() const { return dir_.path() / "agent.log"; }
    std::string log_text() const;

    // Adds "NAME=VALUE" to the environment of the agent and the command (DISPLAY, say).
    void add_environment(std::string entry) { extra_env_.push_back(std::move(entry)); }

    // Writes $XDG_CONFIG_HOME/heirloom/agent.json.
    void write_settings(const Json& settings) const;

    // Starts heirloom-agent and waits for its socket to answer; faketime is a FAKETIME value
    // ("+2h", "-1d") to run it under libfaketime, empty for the real clock.
    bool start(const std::string& faketime = {});
    void stop();
    bool running() const { return pid_ > 0; }

    // Runs `heirloom ARGS...` as this user (password, when given, in HEIRLOOM_PASSWORD).
    RunResult heirloom(const std::vector<std::string>& args,
                       const std::string& password = {}) const;
    // `heirloom status --json`, parsed; fails the test when it fails.
    Json status() const;
    // `heirloom sync --now --wait --json`... then the status.
    Json sync() const;
    // The workspace id's entry in a status, or null.
    static Json workspace(const Json& status, const std::string& id);

    static bool have_faketime();

  private:
    std::vector<std::string> environment() const;
    TempDir dir_;
    std::vector<std::string> extra_env_;
    pid_t pid_ = -1;
};

} // namespace heirloom::test
