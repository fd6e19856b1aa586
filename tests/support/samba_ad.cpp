#include "support/samba_ad.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <random>
#include <sys/socket.h>
#include <unistd.h>

namespace heirloom::test {

namespace {

fs::path script() {
    return fs::path(HEIRLOOM_SOURCE_DIR) / "tests" / "support" / "samba-ad.sh";
}

// The provisioned domain, shared by every test of this build (made once, under a lock).
fs::path template_dir() {
    return bin_dir().parent_path() / "test-cache" / "samba-ad-template";
}

// True when nothing listens on address:port (a bind succeeds).
bool port_is_free(const std::string& address, int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    ::inet_pton(AF_INET, address.c_str(), &addr.sin_addr);
    const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return free;
}

// A loopback address of 127.88.0.0/16 whose AD ports are free.
std::string free_address(std::mt19937& random) {
    std::uniform_int_distribution<int> byte(1, 254);
    for (int attempt = 0; attempt < 50; ++attempt) {
        const std::string address =
            "127.88." + std::to_string(byte(random)) + "." + std::to_string(byte(random));
        if (port_is_free(address, 389) && port_is_free(address, 636) && port_is_free(address, 88))
            return address;
    }
    return {};
}

} // namespace

SambaAd::SambaAd() {
    if (!have_program("samba-tool") || !have_program("flock")) {
        state_ = ServerProcess::State::missing;
        problem_ = "samba-tool is not installed; skipping the Active Directory tests";
        return;
    }
    const fs::path tpl = template_dir();
    fs::create_directories(tpl.parent_path());
    RunResult made = run({"flock", (tpl.parent_path() / "samba-ad.lock").string(), "bash",
                          script().string(), "template", tpl.string()});
    if (made.exit_code == 3) {
        state_ = ServerProcess::State::missing;
        problem_ = "Samba's AD parts are not installed; skipping (" + made.err + ")";
        return;
    }
    if (made.exit_code != 0) {
        problem_ = "samba-ad.sh template failed (exit " + std::to_string(made.exit_code) + "):\n" +
                   made.err + made.out;
        return;
    }
    std::mt19937 random(static_cast<unsigned>(::getpid()) ^ std::random_device{}());
    for (int attempt = 0; attempt < 3; ++attempt) {
        address_ = free_address(random);
        if (address_.empty()) {
            problem_ = "no free loopback address in 127.88.0.0/16 for the domain controller";
            return;
        }
        const fs::path dc = dir_ / ("dc" + std::to_string(attempt));
        // A shared lock: no other test remakes the template while this one copies it.
        RunResult r = run({"flock", "-s", "-o", (tpl.parent_path() / "samba-ad.lock").string(),
                           "bash", script().string(), "start", dc.string(), tpl.string(), address_,
                           "--stop-with", std::to_string(::getpid())});
        if (r.exit_code == 0) {
            dc_ = dc;
            started_ = true;
            state_ = ServerProcess::State::running;
            return;
        }
        problem_ = "samba-ad.sh start failed (exit " + std::to_string(r.exit_code) + "):\n" +
                   r.err + r.out;
        run({"bash", script().string(), "stop", dc.string()});
        // Another test may have taken the address meanwhile: try another.
    }
}

SambaAd::~SambaAd() {
    stop();
}

std::string SambaAd::uri() const {
    return "ldap://" + address_;
}

std::string SambaAd::ldaps_uri() const {
    return "ldaps://" + address_;
}

fs::path SambaAd::ca_file() const {
    return dc_ / "tls" / "ca.pem";
}

fs::path SambaAd::krb5_conf() const {
    return dc_ / "krb5.conf";
}

server::DirectoryConfig SambaAd::config() const {
    server::DirectoryConfig config;
    server::apply_directory_profile(config, server::DirectoryType::active_directory);
    config.uri = uri();
    config.tls = server::DirectoryTls::start_tls;
    config.ca_file = ca_file().string();
    config.base_dn = base_dn();
    config.bind_dn = "CN=heirloom-svc,CN=Users," + base_dn();
    config.bind_password = "Service-Secret1";
    config.timeout_seconds = 10;
    return config;
}

std::string SambaAd::samba_tool(const std::vector<std::string>& arguments) {
    const fs::path& dc = dc_;
    std::vector<std::string> argv = {"samba-tool"};
    argv.insert(argv.end(), arguments.begin(), arguments.end());
    argv.insert(argv.end(), {"-s", (dc / "etc" / "smb.conf").string(), "-H",
                             (dc / "private" / "sam.ldb").string()});
    RunResult r = run(argv);
    return r.exit_code == 0 ? std::string() : "samba-tool failed: " + r.err + r.out;
}

std::string SambaAd::export_keytab(const fs::path& file) {
    RunResult r = run({"bash", script().string(), "keytab", dc_.string(), file.string()});
    return r.exit_code == 0 ? std::string() : "samba-ad.sh keytab failed: " + r.err + r.out;
}

std::string SambaAd::kinit(const std::string& user, const std::string& password,
                           const fs::path& ccache) {
    const fs::path file = dc_ / "kinit.password";
    write_file(file, as_bytes(password + "\n"));
    RunResult r =
        run({"env", "KRB5_CONFIG=" + krb5_conf().string(), "KRB5CCNAME=FILE:" + ccache.string(),
             "sh", "-c", "exec kinit \"$0\" <\"$1\"", user, file.string()});
    fs::remove(file);
    return r.exit_code == 0 ? std::string() : "kinit " + user + " failed: " + r.err + r.out;
}

void SambaAd::stop() {
    if (!started_)
        return;
    started_ = false;
    run({"bash", script().string(), "stop", dc_.string()});
}

} // namespace heirloom::test
