#include "support/slapd.hpp"

#include <arpa/inet.h>
#include <csignal>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace heirloom::test {

namespace {

fs::path script() {
    return fs::path(HEIRLOOM_SOURCE_DIR) / "installer" / "demo-directory.sh";
}

// True when nothing listens on 127.0.0.1:port (a bind succeeds).
bool port_is_free(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return free;
}

// A port that is free, with the next one (for ldaps) free too.
int free_port_pair() {
    for (int attempt = 0; attempt < 20; ++attempt) {
        const int port = free_port();
        if (port < 65535 && port_is_free(port + 1))
            return port;
    }
    return free_port();
}

} // namespace

Slapd::Slapd() {
    if (!have_program("openssl")) {
        state_ = ServerProcess::State::missing;
        problem_ = "openssl is not installed; the tests that need slapd cannot run "
                   "(installer/install-deps.sh installs it)";
        return;
    }
    TlsFiles tls;
    fs::create_directories(dir_ / "tls");
    if (!make_test_certificate(dir_ / "tls", tls, problem_))
        return;
    const fs::path home = dir_ / "ldap";
    for (int attempt = 0; attempt < 3; ++attempt) {
        const int port = free_port_pair();
        RunResult r = run({"bash", script().string(), "start", home.string(), std::to_string(port),
                           "--tls-cert", tls.certificate.string(), "--tls-key", tls.key.string(),
                           "--stop-with", std::to_string(::getpid())});
        if (r.exit_code == 3) {
            state_ = ServerProcess::State::missing;
            problem_ = "slapd is not installed (installer/install-deps.sh installs slapd and "
                       "ldap-utils; " +
                       r.err + ")";
            return;
        }
        if (r.exit_code == 0) {
            auto pid = read_text_file(home / "slapd.pid", 64);
            if (!pid) {
                problem_ = "demo-directory.sh left no pid file: " + pid.error().message;
                return;
            }
            pid_ = static_cast<pid_t>(std::stol(*pid));
            port_ = port;
            state_ = ServerProcess::State::running;
            return;
        }
        problem_ = "installer/demo-directory.sh start failed (exit " + std::to_string(r.exit_code) +
                   "):\n" + r.err + r.out;
        // Another process may have taken one of the ports meanwhile; try others.
        if (r.err.find("in use") == std::string::npos && r.err.find("bind") == std::string::npos)
            return;
    }
}

Slapd::~Slapd() {
    stop();
}

std::string Slapd::uri() const {
    return "ldap://127.0.0.1:" + std::to_string(port_);
}

std::string Slapd::ldaps_uri() const {
    return "ldaps://127.0.0.1:" + std::to_string(port_ + 1);
}

fs::path Slapd::ca_file() const {
    return dir_ / "tls" / "cert.pem";
}

server::DirectoryConfig Slapd::config() const {
    server::DirectoryConfig config;
    config.uri = uri();
    config.tls = server::DirectoryTls::start_tls;
    config.ca_file = ca_file().string();
    config.base_dn = base_dn();
    config.bind_dn = "cn=heirloom-server,ou=services," + base_dn();
    config.bind_password = "service-secret";
    config.user_base = "ou=people," + base_dn();
    config.group_base = "ou=groups," + base_dn();
    config.timeout_seconds = 5;
    return config;
}

std::string Slapd::modify(const std::string& ldif) {
    const fs::path file = dir_ / "change.ldif";
    write_file(file, as_bytes(ldif));
    RunResult r = run({"ldapmodify", "-a", "-x", "-H", uri(), "-D", "cn=admin," + base_dn(), "-w",
                       "admin-secret", "-f", file.string()});
    return r.exit_code == 0 ? std::string() : "ldapmodify failed: " + r.err + r.out;
}

void Slapd::pause() {
    if (pid_ <= 0)
        return;
    ::kill(pid_, SIGSTOP);
    // SIGSTOP reaches each of slapd's threads a moment later; a request sent before the last
    // one stopped could still be answered. Wait until every thread shows state T (stopped).
    const fs::path tasks = fs::path("/proc") / std::to_string(pid_) / "task";
    for (int attempt = 0; attempt < 200; ++attempt) {
        bool all_stopped = true;
        std::error_code ec;
        for (const auto& task : fs::directory_iterator(tasks, ec)) {
            auto stat = read_text_file(task.path() / "stat", 4096);
            // "PID (comm) STATE ...": the state follows the last ')'.
            const std::size_t close = stat ? stat->rfind(')') : std::string::npos;
            if (close == std::string::npos || close + 2 >= stat->size() ||
                ((*stat)[close + 2] != 'T' && (*stat)[close + 2] != 't'))
                all_stopped = false;
        }
        if (ec || all_stopped)
            return;
        ::usleep(5000);
    }
}

void Slapd::resume() {
    if (pid_ > 0)
        ::kill(pid_, SIGCONT);
}

void Slapd::stop() {
    if (pid_ <= 0)
        return;
    run({"bash", script().string(), "stop", (dir_ / "ldap").string()});
    pid_ = -1;
}

} // namespace heirloom::test
