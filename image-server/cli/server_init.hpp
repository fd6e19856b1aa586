#pragma once

// heirloom-server init: first-run setup. Creates the signing keys and (when asked) a
// self-signed TLS certificate in the data folder, writes the configuration file from flags or
// answers, and checks the directory connection with a report an operator can act on.

#include "server_flags.hpp"

#include <cstdio>
#include <string>

namespace heirloom::server::cli {

// When init asks its questions: on a terminal (auto), always (answers read from stdin, one per
// line), or never (flags only; a missing required setting is an error).
enum class Ask { automatic, always, never };

struct InitOptions {
    fs::path config_out = "/etc/heirloom/server.json";
    std::string self_signed_host; // make a self-signed certificate for this name or address
    std::string check_user;       // also look this user up in the directory
    bool force = false;           // replace an existing configuration file
    Ask ask = Ask::automatic;
};

// Adds init's own flags.
void add_init_flags(CLI::App& app, InitOptions& options);

// Runs init; returns the exit code (0 ready, 1 a check failed, 2 bad settings).
int init(const Overrides& overrides, const InitOptions& options);

// Connects to the directory of config and prints what an operator needs to know (the groups
// found, the admin group, optionally a user and their groups) to out; true when all is well.
bool report_directory(const ServerConfig& config, const std::string& user, std::FILE* out);

} // namespace heirloom::server::cli
