#pragma once

// heirloom-admin: the command line over the server's admin API, for scripting.

namespace heirloom::admin {

// Parses arguments and runs one command; returns the exit code (0 success, 1 failure, 2 usage).
int run(int argc, char** argv);

} // namespace heirloom::admin
