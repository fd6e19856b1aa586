#pragma once

// heirloom-image: the command line over the image engine.

namespace heirloom::trim::cli {

// Parses arguments and runs one subcommand; returns the process exit code
// (0 success, 1 failure, 2 usage error).
int run(int argc, char** argv);

} // namespace heirloom::trim::cli
