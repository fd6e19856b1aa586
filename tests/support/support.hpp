#pragma once

// Helpers shared by tests: temporary folders, running programs, free loopback ports.

#include "heirloom/common/bytes.hpp"
#include "heirloom/common/file.hpp"

#include <string>
#include <sys/types.h>
#include <vector>

namespace heirloom::test {

// A fresh folder under $TMPDIR, removed with everything in it when this goes out of scope
// (kept when HEIRLOOM_KEEP_TEST_DIRS is set, for debugging).
class TempDir {
  public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const fs::path& path() const { return path_; }
    fs::path operator/(const fs::path& rel) const { return path_ / rel; }

  private:
    fs::path path_;
};

struct RunResult {
    int exit_code = -1; // -signal when killed by a signal
    std::string out;    // stdout
    std::string err;    // stderr
};

// Runs argv (no shell), capturing stdout and stderr.
RunResult run(const std::vector<std::string>& argv);

// Starts argv (looked up in PATH, no shell) in the background with stdin from /dev/null and
// stdout and stderr appended to log; returns its pid, or -1 when it could not be started.
pid_t spawn_background(std::vector<std::string> argv, const fs::path& log = "/dev/null");

// The folder holding the built programs (build/bin).
fs::path bin_dir();

// True when a program is on PATH.
bool have_program(const std::string& name);

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_port();

// Deterministic pseudo-random bytes for test data.
Bytes pseudo_random(std::size_t n, std::uint64_t seed);

// Writes bytes to a file (creating folders), failing the test on error.
void write_file(const fs::path& path, ByteView data);

// Polls until a TCP port on 127.0.0.1 accepts connections, or the timeout passes.
bool wait_for_port(int port, int timeout_ms = 5000);

} // namespace heirloom::test
