#include "guest/launcher.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace heirloom::guest {

namespace {

// What the child reports through its pipe when it cannot become the program.
struct ChildFailure {
    enum Stage : int { session, groups, gid, uid, exec } stage;
    int error;
};

const char* stage_name(int stage) {
    switch (stage) {
    case ChildFailure::session:
        return "cannot start a new session";
    case ChildFailure::groups:
        return "cannot set the user's groups";
    case ChildFailure::gid:
        return "cannot switch to the user's group";
    case ChildFailure::uid:
        return "cannot switch to the user";
    default:
        return "cannot run the program";
    }
}

Result<User> user_from_passwd(const passwd& entry) {
    User user;
    user.name = entry.pw_name;
    user.uid = entry.pw_uid;
    user.gid = entry.pw_gid;
    user.home = entry.pw_dir && *entry.pw_dir ? entry.pw_dir : "/";
    user.shell = entry.pw_shell && *entry.pw_shell ? entry.pw_shell : "/bin/sh";
    int count = 64;
    std::vector<gid_t> groups(static_cast<std::size_t>(count));
    if (::getgrouplist(entry.pw_name, entry.pw_gid, groups.data(), &count) < 0) {
        groups.resize(static_cast<std::size_t>(count));
        if (::getgrouplist(entry.pw_name, entry.pw_gid, groups.data(), &count) < 0)
            return fail(Errc::io, "cannot list the groups of " + user.name);
    }
    groups.resize(static_cast<std::size_t>(count));
    user.groups = std::move(groups);
    return user;
}

Result<User> lookup_passwd(const char* name, uid_t uid) {
    passwd entry{};
    passwd* found = nullptr;
    std::vector<char> buffer(16384);
    int rc = name ? ::getpwnam_r(name, &entry, buffer.data(), buffer.size(), &found)
                  : ::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found);
    if (rc != 0 || !found)
        return fail(Errc::not_found, name ? "no user called " + std::string(name)
                                          : "no user with uid " + std::to_string(uid));
    return user_from_passwd(entry);
}

bool is_executable_file(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
           ::access(path.c_str(), X_OK) == 0;
}

std::vector<std::string> child_environment(const SpawnRequest& request, const User& user) {
    std::vector<std::string> env = {"HOME=" + user.home, "USER=" + user.name,
                                    "LOGNAME=" + user.name, "SHELL=" + user.shell,
                                    "PATH=" + std::string(program_path)};
    const char* lang = std::getenv("LANG");
    env.push_back(std::string("LANG=") + (lang && *lang ? lang : "C.UTF-8"));
    if (!request.display.empty())
        env.push_back("DISPLAY=" + request.display);
    std::string runtime_dir = "/run/user/" + std::to_string(user.uid);
    struct stat st {};
    if (::stat(runtime_dir.c_str(), &st) == 0 && st.st_uid == user.uid)
        env.push_back("XDG_RUNTIME_DIR=" + runtime_dir);
    for (const auto& entry : request.environment) {
        // "NAME=" (spawn checked that every entry has one) replaces the same name.
        std::string_view name(entry.data(), entry.find('=') + 1);
        auto it = std::find_if(env.begin(), env.end(),
                               [&](const std::string& e) { return e.starts_with(name); });
        if (it != env.end())
            *it = entry;
        else
            env.push_back(entry);
    }
    return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
    std::vector<char*> out;
    for (auto& s : strings)
        out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

[[noreturn]] void report_and_exit(int pipe_fd, ChildFailure::Stage stage) {
    ChildFailure failure{stage, errno};
    [[maybe_unused]] auto n = ::write(pipe_fd, &failure, sizeof failure);
    ::_exit(127);
}

// What the child needs besides argv and envp, prepared before fork.
struct ChildSetup {
    const User& user;
    bool switch_user;
    const char* working_dir; // nullptr: the user's home
    bool discard_output;
    int devnull;
    int pipe_fd;
};

// In the child, between fork and exec: only async-signal-safe calls.
[[noreturn]] void become_program(const std::string& program, char* const* argv, char* const* envp,
                                 const ChildSetup& setup) {
    const User& user = setup.user;
    int pipe_fd = setup.pipe_fd;
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig = 1; sig < NSIG; ++sig)
        ::signal(sig, SIG_DFL);
    if (::setsid() < 0)
        report_and_exit(pipe_fd, ChildFailure::session);
    ::dup2(setup.devnull, 0);
    if (setup.discard_output) {
        ::dup2(setup.devnull, 1);
        ::dup2(setup.devnull, 2);
    }
    if (setup.switch_user) {
        if (::setgroups(user.groups.size(), user.groups.data()) != 0)
            report_and_exit(pipe_fd, ChildFailure::groups);
        if (::setgid(user.gid) != 0)
            report_and_exit(pipe_fd, ChildFailure::gid);
        if (::setuid(user.uid) != 0)
            report_and_exit(pipe_fd, ChildFailure::uid);
    }
    [[maybe_unused]] bool in_a_folder = (setup.working_dir && ::chdir(setup.working_dir) == 0) ||
                                        ::chdir(user.home.c_str()) == 0 || ::chdir("/") == 0;
    ::execve(program.c_str(), argv, envp);
    report_and_exit(pipe_fd, ChildFailure::exec);
}

} // namespace

Result<User> lookup_user(std::string_view name) {
    return lookup_passwd(std::string(name).c_str(), 0);
}

Result<User> current_user() {
    return lookup_passwd(nullptr, ::geteuid());
}

std::optional<std::string> find_program(std::string_view name) {
    if (name.empty())
        return std::nullopt;
    if (name.find('/') != std::string_view::npos) {
        std::string path(name);
        return is_executable_file(path) ? std::optional(path) : std::nullopt;
    }
    std::string_view dirs = program_path;
    while (!dirs.empty()) {
        auto colon = dirs.find(':');
        std::string candidate = std::string(dirs.substr(0, colon)) + "/" + std::string(name);
        if (is_executable_file(candidate))
            return candidate;
        dirs = colon == std::string_view::npos ? std::string_view() : dirs.substr(colon + 1);
    }
    return std::nullopt;
}

Result<pid_t> spawn(const SpawnRequest& request) {
    if (request.argv.empty() || request.argv.front().empty())
        return fail(Errc::invalid_argument, "no program to run");
    auto program = find_program(request.argv.front());
    if (!program)
        return fail(Errc::not_found, "program " + request.argv.front() + " is not installed");
    User self;
    const User* user = request.user;
    if (!user) {
        self = HL_TRY(current_user());
        user = &self;
    }
    bool switch_user = ::geteuid() == 0 && user->uid != ::geteuid();
    for (const auto& entry : request.environment)
        if (entry.find('=') == std::string::npos || entry.front() == '=' ||
            entry.find('\0') != std::string::npos)
            return fail(Errc::invalid_argument, "not an environment entry: " + entry);

    std::vector<std::string> args = request.argv;
    std::vector<std::string> env = child_environment(request, *user);
    auto argv = c_strings(args);
    auto envp = c_strings(env);

    int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0)
        return fail(Errc::io, std::string("cannot open /dev/null: ") + std::strerror(errno));
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
        ::close(devnull);
        return fail(Errc::io, std::string("cannot make a pipe: ") + std::strerror(errno));
    }
    ChildSetup setup{*user,
                     switch_user,
                     request.working_dir.empty() ? nullptr : request.working_dir.c_str(),
                     request.output == Output::discard,
                     devnull,
                     pipe_fds[1]};
    pid_t pid = ::fork();
    if (pid == 0)
        become_program(*program, argv.data(), envp.data(), setup);
    int fork_errno = errno;
    ::close(pipe_fds[1]);
    ::close(devnull);
    if (pid < 0) {
        ::close(pipe_fds[0]);
        return fail(Errc::io, std::string("cannot fork: ") + std::strerror(fork_errno));
    }
    ChildFailure failure{};
    ssize_t n = 0;
    do
        n = ::read(pipe_fds[0], &failure, sizeof failure);
    while (n < 0 && errno == EINTR);
    ::close(pipe_fds[0]);
    if (n != static_cast<ssize_t>(sizeof failure))
        return pid; // the pipe closed on exec: the program runs
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return fail(Errc::io, std::string(stage_name(failure.stage)) + " " + *program + ": " +
                              std::strerror(failure.error));
}

int exit_code(int wait_status) {
    if (WIFEXITED(wait_status))
        return WEXITSTATUS(wait_status);
    if (WIFSIGNALED(wait_status))
        return std::min(128 + WTERMSIG(wait_status), 255);
    return 255;
}

} // namespace heirloom::guest
