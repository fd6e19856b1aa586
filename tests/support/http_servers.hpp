#pragma once

// Real HTTP servers for tests that fetch over the network: nginx, which honours Range and
// answers multipart/byteranges, and python3 -m http.server, which ignores Range and always
// sends whole files. Each serves a folder on 127.0.0.1 and stops when destroyed.
//
// Usage:
//     NginxServer nginx(repo_dir);
//     HL_SKIP_UNLESS_RUNNING(nginx);
//     auto source = open_source(nginx.url() + "/repo");

#include "support/skip.hpp"
#include "support/support.hpp"

#include <functional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace heirloom::test {

// A server program started in the constructor of a subclass and stopped (killed and waited
// for) in the destructor. Construct it on the test's main thread: the server is told to die
// with the thread that started it, so it never outlives a crashed test.
class ServerProcess {
  public:
    enum class State {
        running, // serving on port()
        missing, // the program is not installed; the test should be skipped
        failed,  // the program is installed but did not start; the test should fail
    };

    virtual ~ServerProcess();
    ServerProcess(const ServerProcess&) = delete;
    ServerProcess& operator=(const ServerProcess&) = delete;

    State state() const { return state_; }
    bool running() const { return state_ == State::running; }
    // Why the server is not running, with the end of its log when it failed.
    const std::string& problem() const { return problem_; }
    int port() const { return port_; }
    // The server's process id (-1 when not running), for tests that kill or freeze it.
    pid_t pid() const { return pid_; }
    // "http://127.0.0.1:PORT" (or https:// for a TLS server).
    std::string url() const;

    // Stops the server (SIGTERM, then SIGKILL after 5 s) and waits for it; for tests of a
    // server that goes away. Safe to call more than once.
    void stop();

  protected:
    ServerProcess() = default;

    // Finds program on PATH or in /usr/sbin and /sbin; empty when not installed.
    static std::string find_program(const std::string& name);

    // Runs the program on a free port with the arguments make_argv builds for that port,
    // waiting until it accepts connections. Retries on other ports when one turns out to be
    // taken. Output goes to log. A fixed_port (a restart on the same address) is not changed.
    void start(const std::string& name,
               const std::function<std::vector<std::string>(int port)>& make_argv,
               const fs::path& log, int fixed_port = 0);

    void set_missing(std::string why);
    bool tls_ = false;

  private:
    pid_t pid_ = -1;
    int port_ = 0;
    State state_ = State::failed;
    std::string problem_;
};

// TLS settings for an nginx server: a certificate and its private key in PEM files.
struct TlsFiles {
    fs::path certificate;
    fs::path key;
};

// nginx serving root (Range, multipart/byteranges, keep-alive), with its configuration, logs
// and temporary folders in a private temporary folder. With tls, it speaks HTTPS only.
class NginxServer : public ServerProcess {
  public:
    explicit NginxServer(const fs::path& root, const TlsFiles* tls = nullptr);
    // Stops the server before its folder goes away.
    ~NginxServer() override { stop(); }
    // The access log, for checking what the client asked for.
    std::string access_log() const;

  private:
    TempDir dir_;
};

// python3 -m http.server serving root: answers every GET with the whole file (200), ignoring
// Range, and closes the connection after each answer.
class PythonHttpServer : public ServerProcess {
  public:
    explicit PythonHttpServer(const fs::path& root);
    // Stops the server before its folder goes away.
    ~PythonHttpServer() override { stop(); }

  private:
    TempDir dir_;
};

// Makes a self-signed certificate for 127.0.0.1 and localhost with the openssl program.
// Returns false (and the reason) when openssl is missing or fails.
bool make_test_certificate(const fs::path& dir, TlsFiles& out, std::string& problem);

} // namespace heirloom::test

// Ends the current test as skipped (HL_SKIP: a failure under CI and tests/run-all.sh) when
// the server's program is not installed, and fails it when the server is installed but did not
// start.
#define HL_SKIP_UNLESS_RUNNING(server)                                                             \
    do {                                                                                           \
        if ((server).state() == ::heirloom::test::ServerProcess::State::missing)                   \
            HL_SKIP((server).problem());                                                           \
        if ((server).state() == ::heirloom::test::ServerProcess::State::failed)                    \
            FAIL((server).problem());                                                              \
    } while (0)
