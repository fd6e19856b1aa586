#include "support/http_servers.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace heirloom::test {

namespace {

using namespace std::chrono_literals;

std::string read_log(const fs::path& path) {
    auto text = read_text_file(path, 1 << 20);
    return text ? *text : std::string();
}

// The last lines of a log, enough to explain a failed start.
std::string log_tail(const std::string& log) {
    constexpr std::size_t keep = 2000;
    return log.size() <= keep ? log : "…" + log.substr(log.size() - keep);
}

std::string quote(const fs::path& path) {
    return "\"" + path.string() + "\"";
}

} // namespace

ServerProcess::~ServerProcess() {
    stop();
}

std::string ServerProcess::url() const {
    return std::string(tls_ ? "https://" : "http://") + "127.0.0.1:" + std::to_string(port_);
}

void ServerProcess::stop() {
    if (pid_ <= 0)
        return;
    ::kill(pid_, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        pid_t done = ::waitpid(pid_, &status, WNOHANG);
        if (done == pid_ || (done < 0 && errno != EINTR)) {
            pid_ = -1;
            return;
        }
        std::this_thread::sleep_for(10ms);
    }
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
}

std::string ServerProcess::find_program(const std::string& name) {
    std::vector<std::string> dirs;
    if (const char* path = std::getenv("PATH")) {
        std::string all = path;
        std::size_t start = 0;
        for (;;) {
            std::size_t end = all.find(':', start);
            dirs.push_back(all.substr(start, end == std::string::npos ? end : end - start));
            if (end == std::string::npos)
                break;
            start = end + 1;
        }
    }
    // Servers live in sbin, which is often not on an ordinary user's PATH.
    for (const char* dir : {"/usr/local/sbin", "/usr/sbin", "/sbin"})
        dirs.emplace_back(dir);
    for (const auto& dir : dirs) {
        if (dir.empty())
            continue;
        fs::path candidate = fs::path(dir) / name;
        if (::access(candidate.c_str(), X_OK) == 0 && fs::is_regular_file(candidate))
            return candidate.string();
    }
    return {};
}

void ServerProcess::set_missing(std::string why) {
    state_ = State::missing;
    problem_ = std::move(why);
}

void ServerProcess::start(const std::string& name,
                          const std::function<std::vector<std::string>(int port)>& make_argv,
                          const fs::path& log, int fixed_port) {
    std::string last_log;
    for (int attempt = 0; attempt < 3; ++attempt) {
        const int port = fixed_port ? fixed_port : free_port();
        const std::vector<std::string> argv = make_argv(port);
        // Everything the child needs is prepared before fork: between fork and exec only
        // async-signal-safe calls are allowed, and the tests may be running threads.
        std::vector<char*> args;
        for (const auto& arg : argv)
            args.push_back(const_cast<char*>(arg.c_str()));
        args.push_back(nullptr);
        int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (log_fd < 0 || null_fd < 0) {
            problem_ = name + ": cannot open " + log.string();
            return;
        }
        const pid_t parent = ::getpid();
        const pid_t pid = ::fork();
        if (pid == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent)
                ::_exit(127);
            ::dup2(null_fd, 0);
            ::dup2(log_fd, 1);
            ::dup2(log_fd, 2);
            ::execv(args[0], args.data());
            ::_exit(127);
        }
        ::close(log_fd);
        ::close(null_fd);
        if (pid < 0) {
            problem_ = name + ": fork failed";
            return;
        }
        pid_ = pid;
        port_ = port;

        bool exited = false;
        auto deadline = std::chrono::steady_clock::now() + 10s;
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                exited = true;
                break;
            }
            if (wait_for_port(port_, 50)) {
                state_ = State::running;
                return;
            }
        }
        stop();
        last_log = read_log(log);
        // Another process may have taken the port between free_port() and the bind; try a
        // different one. Anything else is a real failure.
        if (exited && last_log.find("in use") != std::string::npos)
            continue;
        problem_ = name + (exited ? " exited at startup" : " did not listen within 10 s") +
                   "; its log (" + log.string() + ") ends with:\n" + log_tail(last_log);
        return;
    }
    problem_ = name + " found no free port; its log ends with:\n" + log_tail(last_log);
}

NginxServer::NginxServer(const fs::path& root, const TlsFiles* tls) {
    tls_ = tls != nullptr;
    const std::string program = find_program("nginx");
    if (program.empty()) {
        set_missing("nginx is not installed (installer/install-deps.sh installs nginx-light)");
        return;
    }
    fs::create_directories(dir_ / "tmp");
    const fs::path conf = dir_ / "nginx.conf";
    const fs::path error_log = dir_ / "error.log";
    start(
        "nginx",
        [&](int port) {
            // A single process (no master, no workers) keeps the server the child we wait
            // for, running as the test's user. Every path nginx writes to is in dir_, since
            // the compiled-in defaults (/var/log/nginx, /var/lib/nginx) may not be writable.
            std::ofstream out(conf, std::ios::trunc);
            out << "master_process off;\n"
                << "worker_processes 1;\n"
                << "pid " << quote(dir_ / "nginx.pid") << ";\n"
                << "error_log " << quote(error_log) << " info;\n"
                << "events { worker_connections 512; }\n"
                << "http {\n"
                << "  access_log " << quote(dir_ / "access.log") << ";\n"
                << "  client_body_temp_path " << quote(dir_ / "tmp/body") << ";\n"
                << "  proxy_temp_path " << quote(dir_ / "tmp/proxy") << ";\n"
                << "  fastcgi_temp_path " << quote(dir_ / "tmp/fastcgi") << ";\n"
                << "  uwsgi_temp_path " << quote(dir_ / "tmp/uwsgi") << ";\n"
                << "  scgi_temp_path " << quote(dir_ / "tmp/scgi") << ";\n"
                << "  default_type application/octet-stream;\n"
                << "  keepalive_timeout 65;\n"
                << "  server {\n"
                << "    listen 127.0.0.1:" << port << (tls_ ? " ssl" : "") << ";\n";
            if (tls_)
                out << "    ssl_certificate " << quote(tls->certificate) << ";\n"
                    << "    ssl_certificate_key " << quote(tls->key) << ";\n";
            out << "    root " << quote(root) << ";\n"
                << "    location / { }\n"
                << "  }\n"
                << "}\n";
            return std::vector<std::string>{
                program,       "-e", error_log.string(), "-p", dir_.path().string(), "-c",
                conf.string(), "-g", "daemon off;"};
        },
        error_log);
}

std::string NginxServer::access_log() const {
    return read_log(dir_ / "access.log");
}

PythonHttpServer::PythonHttpServer(const fs::path& root) {
    const std::string program = find_program("python3");
    if (program.empty()) {
        set_missing("python3 is not installed (installer/install-deps.sh installs it)");
        return;
    }
    start(
        "python3 -m http.server",
        [&](int port) {
            return std::vector<std::string>{program,
                                            "-u",
                                            "-m",
                                            "http.server",
                                            "--bind",
                                            "127.0.0.1",
                                            std::to_string(port),
                                            "--directory",
                                            root.string()};
        },
        dir_ / "server.log");
}

bool make_test_certificate(const fs::path& dir, TlsFiles& out, std::string& problem) {
    if (!have_program("openssl")) {
        problem = "openssl is not installed (installer/install-deps.sh installs it)";
        return false;
    }
    out.certificate = dir / "cert.pem";
    out.key = dir / "key.pem";
    RunResult r = run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                       out.key.string(), "-out", out.certificate.string(), "-days", "2", "-subj",
                       "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"});
    if (r.exit_code != 0) {
        problem = "openssl could not make a test certificate: " + r.err;
        return false;
    }
    return true;
}

} // namespace heirloom::test
