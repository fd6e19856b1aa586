// heirloom-agent: the endpoint agent daemon, one per user session.

#include "heirloom/agent/agent.hpp"
#include "heirloom/agent/control.hpp"
#include "heirloom/common/crypto.hpp"
#include "heirloom/common/log.hpp"
#include "heirloom/policy/signed.hpp"

#include <CLI/CLI.hpp>
#include <condition_variable>
#include <csignal>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>

using namespace heirloom;
using namespace heirloom::agent;

namespace {

// Background work must not starve the user: lowest CPU priority short of idle, and the idle
// I/O class, for this thread and the sync threads it starts (they inherit both).
void lower_priority() {
    auto tid = static_cast<id_t>(::syscall(SYS_gettid));
    ::setpriority(PRIO_PROCESS, tid, 10);
    constexpr int ioprio_class_idle = 3, ioprio_class_shift = 13, ioprio_who_process = 1;
    ::syscall(SYS_ioprio_set, ioprio_who_process, static_cast<int>(tid),
              ioprio_class_idle << ioprio_class_shift);
}

struct Daemon {
    Daemon(Agent& a, const Log& l) : agent(a), log(l) {}
    Agent& agent;
    const Log& log;
    std::atomic<bool> stop = false;
    std::mutex mutex;
    std::condition_variable wake;
    bool force = false;
    std::uint64_t requested = 0; // sync requests so far
    std::uint64_t completed = 0; // of them, answered by a finished round
    bool finished = false;       // the worker has left (set under mutex)
    std::string round_error;     // of the last finished round, empty when it went well

    // Leases are enforced every few seconds, also while a round waits on the network; new
    // removable media are looked for as often.
    void enforce_leases() {
        std::unique_lock lock(mutex);
        while (!stop) {
            lock.unlock();
            agent.enforce();
            bool media = agent.new_media();
            lock.lock();
            if (media) {
                log.info("removable media with a seed appeared: syncing");
                ++requested;
                force = true;
                wake.notify_all();
            }
            wake.wait_for(lock, std::chrono::seconds(5), [&] { return stop.load(); });
        }
    }

    void work() {
        run_rounds();
        std::lock_guard lock(mutex);
        finished = true;
        wake.notify_all();
    }

    void run_rounds() {
        lower_priority();
        auto next_cycle = std::chrono::steady_clock::now();
        std::unique_lock lock(mutex);
        while (!stop) {
            wake.wait_until(
                lock,
                std::min(next_cycle, std::chrono::steady_clock::now() + std::chrono::seconds(5)),
                [&] { return force || stop.load(); });
            if (stop)
                break;
            bool forced = std::exchange(force, false);
            if (!forced && std::chrono::steady_clock::now() < next_cycle)
                continue;
            std::uint64_t serving = requested;
            lock.unlock();
            auto done = agent.cycle(forced);
            if (!done)
                log.warn("{}", done.error().message);
            lock.lock();
            round_error = done ? std::string() : done.error().message;
            completed = serving;
            next_cycle = std::chrono::steady_clock::now() + std::chrono::seconds(30);
            wake.notify_all();
        }
    }

    Json handle(const Json& request) {
        std::string command = request.at("command").get<std::string>();
        auto ok = [](Json extra = Json::object()) {
            extra["ok"] = true;
            return extra;
        };
        auto error = [](const Error& e) {
            return Json{{"ok", false}, {"error", e.message}};
        };
        if (command == "ping")
            return ok();
        if (command == "status")
            return ok({{"status", agent.status()}});
        if (command == "sync") {
            std::unique_lock lock(mutex);
            std::uint64_t mine = ++requested;
            force = true;
            wake.notify_all();
            Json answer = Json::object();
            if (request.value("wait", false)) {
                wake.wait(lock, [&] { return completed >= mine || stop.load(); });
                answer["round_error"] = round_error;
            }
            lock.unlock();
            answer["status"] = agent.status();
            return ok(answer);
        }
        if (command == "login") {
            auto text = [&](const char* key) {
                return request.value(key, std::string());
            };
            const bool sso = !text("negotiate").empty();
            log.info("logging in {} at {}", sso ? "with Kerberos" : text("user"), text("server"));
            auto done = agent.login(text("server"), text("ca_file"), text("user"), text("password"),
                                    text("hostname"), text("negotiate"));
            if (!done)
                return error(done.error());
            Json enrolment = agent.status().value("enrolment", Json::object());
            std::lock_guard lock(mutex);
            ++requested;
            force = true;
            wake.notify_all();
            return ok({{"user", enrolment.is_object() ? enrolment.value("user", std::string())
                                                      : std::string()}});
        }
        if (command == "logout") {
            auto done = agent.logout();
            return done ? ok() : error(done.error());
        }
        if (command == "launch") {
            std::vector<std::string> args;
            if (request.contains("args") && request["args"].is_array())
                for (const auto& a : request["args"])
                    if (a.is_string())
                        args.push_back(a.get<std::string>());
            std::string id = request.value("app", std::string());
            std::optional<fs::path> file;
            if (request.contains("file") && request["file"].is_string())
                file = request["file"].get<std::string>();
            log.info("launching {}{}", id, file ? " with a file" : "");
            auto done = agent.launch(id, args, file);
            if (!done) {
                log.warn("launch of {} failed: {}", id, done.error().message);
                return error(done.error());
            }
            return ok({{"launch", *done}});
        }
        if (command == "suspend") {
            auto done = agent.suspend_workspace(request.value("workspace", std::string()));
            return done ? ok() : error(done.error());
        }
        if (command == "stop") {
            auto done = agent.stop_workspace(request.value("workspace", std::string()));
            return done ? ok() : error(done.error());
        }
        if (command == "policy") {
            auto p = agent.current_policy();
            if (!p)
                return error(p.error());
            return ok({{"serial", p->serial},
                       {"expires_at", p->expires_at},
                       {"policy", policy::to_json(p->policy)}});
        }
        return error(Error{Errc::invalid_argument, "unknown command '" + command + "'"});
    }
};

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"heirloom-agent: the Heirloom endpoint agent for the current user.\n\n"
                 "Keeps the user's signed policy fresh, syncs every assigned image in the "
                 "background, enforces offline leases, and answers the `heirloom` command on a "
                 "private socket ($XDG_RUNTIME_DIR/heirloom/agent.sock). State lives in "
                 "$XDG_DATA_HOME/heirloom, settings in $XDG_CONFIG_HOME/heirloom/agent.json "
                 "(see docs/agent.md)."};
    bool once = false;
    std::string level = "info";
    app.add_flag("--once", once,
                 "run one round (policy, sync, leases), print the status as JSON and exit");
    app.add_option("--log-level", level, "debug, info (default), warn or error")
        ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
    CLI11_PARSE(app, argc, argv);
    Log log(level == "debug"   ? LogLevel::debug
            : level == "warn"  ? LogLevel::warn
            : level == "error" ? LogLevel::error
                               : LogLevel::info);
    auto fail_with = [&](const Error& e) {
        log.error("{}", e.message);
        return 1;
    };
    if (auto ok = crypto::init(); !ok)
        return fail_with(ok.error());
    auto paths = default_paths();
    if (!paths)
        return fail_with(paths.error());
    auto settings = load_settings(paths->config_file);
    if (!settings)
        return fail_with(settings.error());
    auto agent = Agent::open(*paths, *settings);
    if (!agent)
        return fail_with(agent.error());
    if (once) {
        lower_priority();
        auto done = (*agent)->cycle(true);
        std::printf("%s\n", (*agent)->status().dump(2).c_str());
        return done ? 0 : fail_with(done.error());
    }

    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    auto server = ControlServer::listen(paths->socket());
    if (!server)
        return fail_with(server.error());
    Daemon daemon(**agent, log);
    std::thread worker([&] { daemon.work(); });
    std::thread enforcer([&] { daemon.enforce_leases(); });
    std::thread stopper([&] {
        int signal = 0;
        sigwait(&signals, &signal);
        log.info("stopping (signal {})", signal);
        std::lock_guard lock(daemon.mutex);
        daemon.stop = true;
        daemon.wake.notify_all();
    });
    log.info("agent running for uid {}; socket {}", ::getuid(), paths->socket().string());
    server->run([&](const Json& request) { return daemon.handle(request); }, daemon.stop);
    stopper.join();
    enforcer.join();
    (*agent)->stop_all_workspaces(); // the guests get a few seconds to power off
    (void)(*agent)->save_state();
    // A round may be waiting on the network: give it a few seconds, then leave anyway. The
    // image store is consistent at any point, and the transfer resumes next time.
    std::unique_lock lock(daemon.mutex);
    if (!daemon.wake.wait_for(lock, std::chrono::seconds(5), [&] { return daemon.finished; })) {
        log.info("leaving a sync in progress; it resumes at the next start");
        std::_Exit(0);
    }
    lock.unlock();
    worker.join();
    return 0;
}
