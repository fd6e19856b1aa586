#pragma once

// heirloom-server: the command line of the image and policy server.

namespace heirloom::server::cli {

// Parses arguments and runs; returns the process exit code (0 success, 1 failure, 2 usage).
int run(int argc, char** argv);

} // namespace heirloom::server::cli
