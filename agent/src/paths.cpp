#include "heirloom/agent/paths.hpp"

#include <cstdlib>
#include <sys/stat.h>
#include <unistd.h>

namespace heirloom::agent {
namespace {

fs::path from_env(const char* name) {
    const char* value = std::getenv(name);
    return value && *value == '/' ? fs::path(value) : fs::path();
}

} // namespace

Result<AgentPaths> default_paths() {
    fs::path home = from_env("HOME");
    AgentPaths p;
    p.state = from_env("HEIRLOOM_STATE_DIR");
    if (p.state.empty()) {
        fs::path data = from_env("XDG_DATA_HOME");
        if (data.empty() && home.empty())
            return fail(Errc::invalid_argument,
                        "neither HOME nor XDG_DATA_HOME is set: cannot place the agent's state");
        p.state = (data.empty() ? home / ".local" / "share" : data) / "heirloom";
    }
    p.runtime = from_env("HEIRLOOM_RUNTIME_DIR");
    if (p.runtime.empty()) {
        fs::path run = from_env("XDG_RUNTIME_DIR");
        p.runtime = run.empty() ? fs::path("/tmp") / ("heirloom-" + std::to_string(::getuid()))
                                : run / "heirloom";
    }
    fs::path config = from_env("XDG_CONFIG_HOME");
    if (config.empty())
        config = home.empty() ? p.state : home / ".config";
    p.config_file = config / "heirloom" / "agent.json";
    return p;
}

Status ensure_private_dir(const fs::path& dir) {
    std::error_code ec;
    if (!fs::exists(dir, ec)) {
        fs::create_directories(dir, ec);
        if (ec)
            return fail(Errc::io, "create " + dir.string() + ": " + ec.message());
        ::chmod(dir.c_str(), 0700);
    }
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0)
        return fail_errno("stat", dir.string());
    if (!S_ISDIR(st.st_mode))
        return fail(Errc::invalid_argument, dir.string() + " is not a folder (or is a link)");
    if (st.st_uid != ::getuid())
        return fail(Errc::denied, dir.string() + " belongs to another user");
    if ((st.st_mode & 077) != 0 && ::chmod(dir.c_str(), 0700) != 0)
        return fail(Errc::denied, dir.string() + " is open to other users and cannot be closed");
    return {};
}

} // namespace heirloom::agent
