#pragma once

// Starting programs in the guest: an app the host asked for, or the Xpra server. Always an
// argv (never a shell), in a new session and process group, as the workspace's user.

#include "heirloom/common/error.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace heirloom::guest {

// The PATH programs are looked up in and started with.
inline constexpr std::string_view program_path =
    "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";

struct User {
    std::string name;
    uid_t uid = 0;
    gid_t gid = 0;
    std::string home;
    std::string shell;
    std::vector<gid_t> groups; // supplementary groups, the primary one included
};

// The account called name, from the guest's user database.
Result<User> lookup_user(std::string_view name);
// The account this process runs as.
Result<User> current_user();

// The executable a program name means: name itself when it holds a '/', otherwise the first
// match in program_path.
std::optional<std::string> find_program(std::string_view name);

// Where a program's stdout and stderr go: heirloom-guest's own (the guest's console), or
// nowhere, for programs as chatty as Wine.
enum class Output { inherit, discard };

struct SpawnRequest {
    std::vector<std::string> argv;
    const User* user = nullptr; // the account to run as; switched to only when we are root
    std::string display;        // DISPLAY for the program, unset when empty
    // "NAME=value" entries set on top of the standard environment (replacing a same name).
    std::vector<std::string> environment;
    std::string working_dir; // the folder it starts in; the user's home when empty
    Output output = Output::inherit;
};

// Starts a program and returns its pid once it has been exec'd: a program that cannot be
// found or started (or a user that cannot be switched to) is an error, not an exit.
Result<pid_t> spawn(const SpawnRequest& request);

// The protocol's exit code for a wait status: the exit status, or 128 + the signal.
int exit_code(int wait_status);

} // namespace heirloom::guest
