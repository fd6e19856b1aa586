// The test program itself (tests/support/catch_main.cpp): a write to a connection the other
// side closed fails with EPIPE, which an assertion can report, instead of killing the whole run
// with SIGPIPE.

#include "support/skip.hpp"

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdlib>
#include <optional>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

TEST_CASE("test harness: writing to a closed connection fails, it does not kill the run",
          "[harness]") {
    int pipe_fds[2];
    REQUIRE(::pipe(pipe_fds) == 0);
    ::close(pipe_fds[0]);
    errno = 0;
    CHECK(::write(pipe_fds[1], "x", 1) == -1); // without MSG_NOSIGNAL or a handler: SIGPIPE
    CHECK(errno == EPIPE);
    ::close(pipe_fds[1]);

    int sockets[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, sockets) == 0);
    ::close(sockets[1]);
    errno = 0;
    CHECK(::send(sockets[0], "x", 1, 0) == -1);
    CHECK(errno == EPIPE);
    ::close(sockets[0]);
}

namespace {

// Sets an environment variable (or unsets it, for nullptr) until destroyed.
class ScopedEnv {
  public:
    ScopedEnv(const char* name, const char* value) : name_(name) {
        if (const char* old = std::getenv(name))
            old_ = old;
        value ? ::setenv(name, value, 1) : ::unsetenv(name);
    }
    ~ScopedEnv() { old_ ? ::setenv(name_, old_->c_str(), 1) : ::unsetenv(name_); }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

  private:
    const char* name_;
    std::optional<std::string> old_;
};

} // namespace

TEST_CASE("test harness: a missing component fails the test under CI and run-all.sh", "[harness]") {
    using heirloom::test::components_required;
    struct Case {
        const char* ci;
        const char* require_all;
        bool required;
    };
    for (const Case& c :
         {Case{nullptr, nullptr, false}, Case{"true", nullptr, true}, Case{"false", nullptr, false},
          Case{nullptr, "1", true}, Case{nullptr, "0", false}, Case{nullptr, "", false},
          Case{"false", "yes", true}}) {
        ScopedEnv ci("CI", c.ci);
        ScopedEnv all("HEIRLOOM_REQUIRE_ALL", c.require_all);
        INFO("CI=" << (c.ci ? c.ci : "(unset)")
                   << " HEIRLOOM_REQUIRE_ALL=" << (c.require_all ? c.require_all : "(unset)"));
        CHECK(components_required() == c.required);
    }
}
