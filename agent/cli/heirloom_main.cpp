// heirloom: the user's command line for the endpoint agent (it talks to heirloom-agent).

#include "heirloom/agent/control.hpp"
#include "heirloom/agent/paths.hpp"
#include "heirloom/agent/vm.hpp"
#include "heirloom/client/password.hpp"
#include "heirloom/common/bytes.hpp"
#include "heirloom/common/url.hpp"
#include "heirloom/negotiate/negotiate.hpp"

#include <CLI/CLI.hpp>
#include <ctime>
#include <fmt/core.h>
#include <unistd.h>

extern char** environ;

using namespace heirloom;
using namespace heirloom::agent;

namespace {

std::string when(std::int64_t t) {
    if (t <= 0)
        return "never";
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    ::localtime_r(&tt, &tm);
    char text[64];
    std::strftime(text, sizeof text, "%Y-%m-%d %H:%M", &tm);
    return text;
}

std::string version_text(const Json& v) {
    return v.is_number() ? "v" + std::to_string(v.get<std::uint64_t>()) : "-";
}

void print_status(const Json& s) {
    if (!s.value("enrolled", false)) {
        fmt::print("Not logged in. Run: heirloom login --server URL --user NAME\n");
        return;
    }
    const Json& e = s["enrolment"];
    fmt::print("{} at {} (endpoint {})\n", e.value("user", ""), e.value("server", ""),
               e.value("agent_id", ""));
    if (s.contains("policy")) {
        const Json& p = s["policy"];
        fmt::print("policy #{}: last from the server {}, valid until {}\n", p.value("serial", 0ull),
                   when(p.value("last_contact", 0ll)), when(p.value("expires_at", 0ll)));
    } else {
        fmt::print("no policy yet\n");
    }
    if (auto behind = s.value("clock_behind_seconds", 0ll); behind > 60)
        fmt::print("warning: the system clock is {} s behind the last time seen; leases use "
                   "the later time\n",
                   behind);
    if (auto problem = s.value("trust_problem", std::string()); !problem.empty())
        fmt::print("refused: {} (workspaces wait for the server)\n", problem);
    if (auto err = s.value("last_error", std::string()); !err.empty())
        fmt::print("last error: {}\n", err);
    for (const auto& w : s["workspaces"]) {
        fmt::print("\n{} ({})\n", w.value("display_name", ""), w.value("id", ""));
        std::string state = w.value("state", "");
        if (w.contains("progress")) {
            const Json& p = w["progress"];
            auto done = p.value("done", 0ull), total = p.value("total", 0ull);
            state += fmt::format(" {} {}%", p.value("stage", ""), total ? done * 100 / total : 0);
        }
        fmt::print("  image      {} {} (server {})\n", w.value("image", ""),
                   version_text(w["current_version"]), version_text(w["available_version"]));
        fmt::print("  state      {}\n", state);
        fmt::print("  last sync  {} from the server, {} from this endpoint\n",
                   format_bytes(w.value("bytes_network", 0ull)),
                   format_bytes(w.value("bytes_seeds", 0ull)));
        std::string lease = w.value("lease_state", "");
        fmt::print("  lease      {}{}\n", lease.empty() ? "-" : lease,
                   w.value("lease_ends", 0ll) > 0 ? ", ends " + when(w.value("lease_ends", 0ll))
                                                  : "");
        if (w.contains("vm")) {
            const Json& vm = w["vm"];
            std::string vm_state = vm.value("state", "stopped");
            if (vm.contains("accel"))
                vm_state += fmt::format(" ({}, image v{})", vm.value("accel", ""),
                                        vm.value("image_version", 0ull));
            fmt::print("  vm         {}\n", vm_state);
        }
        if (auto err = w.value("last_error", std::string()); !err.empty())
            fmt::print("  error      {}\n", err);
    }
}

// A desktop notification (notify-send, when installed); nothing happens without one. It gets
// the whole environment: the session bus address is what lets it reach the desktop.
void notify(const std::string& title, const std::string& body) {
    agent::SpawnOptions o;
    o.argv = {"notify-send", "--app-name=Heirloom", "--", title, body};
    for (char** e = environ; *e; ++e)
        o.env.emplace_back(*e);
    if (auto pid = agent::spawn_process(o))
        agent::wait_process(*pid, std::chrono::seconds(5));
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"heirloom: your Heirloom workspaces on this computer.\n\n"
                 "Talks to the heirloom-agent running in your session (see docs/agent.md)."};
    app.require_subcommand(1);
    bool json = false;

    std::string server, user, ca_file, hostname;
    bool no_kerberos = false;
    auto* login = app.add_subcommand(
        "login", "enrol this computer with a server as you: with your Kerberos ticket (a domain "
                 "logon or kinit) when you hold one and the server takes it, else with your "
                 "password (from a prompt or HEIRLOOM_PASSWORD, never the command line)");
    login->add_option("--server", server, "server URL, https://host:port")->required();
    login->add_option("--user", user,
                      "your directory user name (needed for a password login; a Kerberos login "
                      "takes it from the ticket)");
    login->add_flag("--no-kerberos", no_kerberos, "use the password even with a Kerberos ticket");
    login->add_option("--ca-file", ca_file, "trust this CA for the server's certificate");
    login->add_option("--hostname", hostname, "this computer's name as the server shows it");

    app.add_subcommand("logout", "forget your token, image keys and policy on this computer");

    auto* status = app.add_subcommand(
        "status", "each workspace: versions, sync progress, bytes from seeds and network, lease");
    status->add_flag("--json", json, "machine-readable");

    bool now = false, wait = false;
    auto* sync = app.add_subcommand("sync", "fetch the policy and sync every image now");
    sync->add_flag("--now", now, "do it now (the default)");
    sync->add_flag("--wait", wait, "wait until it is done and print the status");
    sync->add_flag("--json", json, "with --wait: the status, machine-readable");

    auto* workspaces = app.add_subcommand("workspaces", "the workspaces your policy gives you");
    workspaces->add_flag("--json", json, "machine-readable");
    auto* apps = app.add_subcommand("apps", "the applications your policy publishes to you");
    apps->add_flag("--json", json, "machine-readable");

    std::string app_id, workspace_id;
    std::vector<std::string> app_args;
    auto* launch = app.add_subcommand(
        "launch", "start a published application (its workspace's VM starts first if needed); "
                  "its windows appear on your desktop");
    launch->add_option("app", app_id, "the application's id (heirloom apps lists them)")
        ->required();
    launch->add_option("args", app_args, "arguments passed to the application in the guest");
    std::string file;
    launch->add_option("--file", file,
                       "a file of this computer for the application to open (the menu's file "
                       "types use this); refused unless your policy allows files into the "
                       "workspace");
    launch->add_flag("--json", json, "machine-readable");
    auto* stop = app.add_subcommand(
        "stop", "shut a workspace's VM down (a revertible workspace forgets its changes)");
    stop->add_option("workspace", workspace_id, "the workspace's id")->required();
    auto* suspend = app.add_subcommand(
        "suspend", "save a workspace's VM to disk (encrypted) and stop it; the next launch "
                   "resumes it where it was");
    suspend->add_option("workspace", workspace_id, "the workspace's id")->required();
    CLI11_PARSE(app, argc, argv);

    auto paths = default_paths();
    if (!paths) {
        fmt::print(stderr, "heirloom: {}\n", paths.error().message);
        return 2;
    }
    auto call = [&](const Json& request, int timeout) -> Result<Json> {
        return call_agent(paths->socket(), request, timeout);
    };
    auto fail_with = [](const Error& e) {
        fmt::print(stderr, "heirloom: {}\n", e.message);
        return 1;
    };

    if (*login) {
        if (hostname.empty()) {
            char name[256] = {};
            ::gethostname(name, sizeof name - 1);
            hostname = name;
        }
        const auto logged_in = [&](const Json& answer) {
            fmt::print("Logged in as {} at {}. Your workspaces sync in the background: heirloom "
                       "status\n",
                       answer.value("user", user), server);
            return 0;
        };
        // Single sign-on first: a ticket for the server's HTTP service proves who this is.
        std::string kerberos_problem;
        if (auto url = parse_url(server); url && !no_kerberos) {
            if (auto token = negotiate::client_token(url->host)) {
                Json request = {{"command", "login"},   {"server", server},
                                {"user", user},         {"ca_file", ca_file},
                                {"hostname", hostname}, {"negotiate", *token}};
                auto answer = call(request, 60);
                if (answer)
                    return logged_in(*answer);
                kerberos_problem = answer.error().message;
            } else {
                kerberos_problem = token.error().message;
            }
        }
        if (user.empty())
            return fail_with(Error{Errc::invalid_argument,
                                   "cannot log in with Kerberos (" + kerberos_problem +
                                       "): give --user NAME to log in with your password"});
        auto password = client::read_password("Password for " + user + ": ");
        if (!password)
            return fail_with(password.error());
        Json request = {{"command", "login"}, {"server", server},     {"user", user},
                        {"ca_file", ca_file}, {"hostname", hostname}, {"password", *password}};
        auto answer = call(request, 60);
        std::fill(password->begin(), password->end(), '\0');
        if (!answer)
            return fail_with(answer.error());
        return logged_in(*answer);
    }
    if (*launch) {
        Json request = {{"command", "launch"}, {"app", app_id}, {"args", app_args}};
        if (!file.empty()) {
            std::error_code ec;
            request["file"] = fs::absolute(file, ec).string();
        }
        auto answer = call(request, 3600);
        if (!answer) {
            // Launched from the menu there is no terminal: the desktop says it too.
            notify("Heirloom could not start " + app_id, answer.error().message);
            return fail_with(answer.error());
        }
        const Json& r = (*answer)["launch"];
        if (json)
            fmt::print("{}\n", r.dump(2));
        else
            fmt::print("Started {} in {} ({} launch, {:.1f} s, {}).\n", r.value("app", ""),
                       r.value("workspace", ""),
                       r.value("cold", false)      ? "cold"
                       : r.value("resumed", false) ? "resumed"
                                                   : "warm",
                       r.value("seconds", 0.0), r.value("accel", ""));
        return 0;
    }
    if (*suspend) {
        auto answer = call({{"command", "suspend"}, {"workspace", workspace_id}}, 600);
        if (!answer)
            return fail_with(answer.error());
        fmt::print("Suspended {}: the next launch resumes it.\n", workspace_id);
        return 0;
    }
    if (*stop) {
        auto answer = call({{"command", "stop"}, {"workspace", workspace_id}}, 60);
        if (!answer)
            return fail_with(answer.error());
        fmt::print("Stopped {}.\n", workspace_id);
        return 0;
    }
    if (app.got_subcommand("logout")) {
        auto answer = call({{"command", "logout"}}, 30);
        if (!answer)
            return fail_with(answer.error());
        fmt::print("Logged out: token, image keys and policy forgotten on this computer.\n");
        return 0;
    }
    if (*status || *sync) {
        Json request =
            *sync ? Json{{"command", "sync"}, {"wait", wait}} : Json{{"command", "status"}};
        auto answer = call(request, wait ? 24 * 3600 : 30);
        if (!answer)
            return fail_with(answer.error());
        if (*sync && !wait) {
            fmt::print("Syncing in the background: heirloom status\n");
            return 0;
        }
        if (json)
            fmt::print("{}\n", (*answer)["status"].dump(2));
        else
            print_status((*answer)["status"]);
        if (auto failed = answer->value("round_error", std::string()); !failed.empty()) {
            fmt::print(stderr, "heirloom: the sync did not complete: {}\n", failed);
            return 1;
        }
        return 0;
    }
    auto answer = call({{"command", "policy"}}, 30);
    if (!answer)
        return fail_with(answer.error());
    const Json& p = (*answer)["policy"];
    if (*workspaces) {
        if (json) {
            fmt::print("{}\n", p["workspaces"].dump(2));
            return 0;
        }
        for (const auto& w : p["workspaces"]) {
            const Json& ws = w["workspace"];
            const Json& c = w["controls"];
            fmt::print("{:<20} {:<28} image {:<16} clipboard {}, file transfer {}, printing {}, "
                       "removable media {}\n",
                       ws.value("id", ""), ws.value("display_name", ""),
                       w["image"].value("name", ""), c.value("clipboard", ""),
                       c.value("file_transfer", ""), c.value("printing", ""),
                       c.value("removable_media", ""));
        }
        return 0;
    }
    if (json) {
        fmt::print("{}\n", p["apps"].dump(2));
        return 0;
    }
    for (const auto& a : p["apps"])
        fmt::print("{:<20} {:<28} in {}\n", a.value("id", ""), a.value("display_name", ""),
                   a.value("workspace", ""));
    return 0;
}
