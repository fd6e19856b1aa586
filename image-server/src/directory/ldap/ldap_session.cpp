#include "ldap_session.hpp"

#include "ldap_internal.hpp"

#include <algorithm>
#include <condition_variable>
#include <ctime>
#include <exception>
#include <ldap.h>
#include <memory>
#include <mutex>
#include <sys/socket.h>
#include <thread>

namespace heirloom::server::ldap_backend {

namespace {

timeval to_timeval(Clock::duration left) {
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(left).count();
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(micros / 1'000'000);
    tv.tv_usec = static_cast<suseconds_t>(micros % 1'000'000);
    return tv;
}

// Shuts a socket down when a deadline passes, unless stopped first: whatever libldap is
// blocked in on that socket (a TLS handshake, a half-read answer) then fails at once.
class Watchdog {
  public:
    Watchdog(int fd, Clock::time_point deadline)
        : thread_([this, fd, deadline] {
              std::unique_lock lock(mutex_);
              if (!stopped_changed_.wait_until(lock, deadline, [this] { return stopped_; }))
                  ::shutdown(fd, SHUT_RDWR);
          }) {}
    ~Watchdog() {
        {
            std::lock_guard lock(mutex_);
            stopped_ = true;
        }
        stopped_changed_.notify_one();
        thread_.join();
    }
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;

  private:
    std::mutex mutex_;
    std::condition_variable stopped_changed_;
    bool stopped_ = false;
    std::thread thread_; // last: starts once the members above exist
};

} // namespace

// libldap's connection callbacks, through which the session learns its socket. lc_arg points
// back at the guard, which the session keeps at a fixed address for the handle's lifetime.
struct ConnectionGuard {
    ldap_conncb callbacks{};
    Clock::time_point deadline;
    std::unique_ptr<Watchdog> watchdog;
    bool connected = false; // the TCP connection stood (so a later failure is TLS's)
};

namespace {

// Called once the TCP connection stands, before any TLS handshake.
int on_connected(LDAP* ld, Sockbuf* sb, LDAPURLDesc*, sockaddr*, ldap_conncb* callbacks) {
    auto* guard = static_cast<ConnectionGuard*>(callbacks->lc_arg);
    ber_socket_t fd = -1;
    if (ber_sockbuf_ctrl(sb, LBER_SB_OPT_GET_FD, &fd) != 1 || fd < 0)
        return LDAP_LOCAL_ERROR;
    // From here on the watchdog bounds the waits, and the socket stays blocking: with a network
    // timeout set, libldap 2.5 runs the TLS handshake on a non-blocking socket in a busy loop
    // that never times out (later versions poll); without one, the handshake simply blocks
    // until it is done or the watchdog shuts the socket down.
    const timeval none{-1, 0};
    ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &none);
    guard->connected = true;
    try {
        guard->watchdog = std::make_unique<Watchdog>(fd, guard->deadline);
    } catch (const std::exception&) {
        return LDAP_NO_MEMORY; // no thread for the watchdog: do not run unguarded
    }
    return LDAP_SUCCESS;
}

// Called before the connection is closed (and, with no Sockbuf, before the handle is freed):
// the watchdog must not outlive the socket, whose number the system may reuse.
void on_closing(LDAP*, Sockbuf*, ldap_conncb* callbacks) {
    static_cast<ConnectionGuard*>(callbacks->lc_arg)->watchdog.reset();
}

} // namespace

std::string lower_ascii(std::string_view text) {
    std::string out(text);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z')
            c = static_cast<char>(c - 'A' + 'a');
    return out;
}

std::string take_ldap_string(char* text) {
    std::string out = text != nullptr ? printable(text) : std::string();
    if (text != nullptr)
        ldap_memfree(text);
    return out;
}

std::string printable(std::string_view text) {
    constexpr std::size_t keep = 300;
    std::string out;
    for (char c : text.substr(0, keep))
        out += static_cast<unsigned char>(c) < 0x20 || c == 0x7F ? ' ' : c;
    if (text.size() > keep)
        out += "…";
    return out;
}

const std::vector<std::string>& LdapEntry::values(std::string_view attribute) const {
    static const std::vector<std::string> none;
    const std::string wanted = lower_ascii(attribute);
    for (const auto& [name, list] : attributes)
        if (name == wanted)
            return list;
    return none;
}

LdapSession::LdapSession(LDAP* handle, const DirectoryConfig& config, std::string description)
    : guard_(std::make_unique<ConnectionGuard>()), ld_(handle),
      description_(std::move(description)), timeout_seconds_(config.timeout_seconds),
      deadline_(Clock::now() + std::chrono::seconds(config.timeout_seconds)),
      start_tls_(config.tls == DirectoryTls::start_tls) {
    guard_->deadline = deadline_;
}

LdapSession::LdapSession(LdapSession&& other) noexcept
    : guard_(std::move(other.guard_)), ld_(std::exchange(other.ld_, nullptr)),
      description_(std::move(other.description_)), timeout_seconds_(other.timeout_seconds_),
      deadline_(other.deadline_), start_tls_(other.start_tls_) {}

LdapSession::~LdapSession() {
    if (ld_ != nullptr)
        ldap_unbind_ext(ld_, nullptr, nullptr);
}

// Sets the options that hold for every connection: LDAPv3, no referral chasing (a referral
// could send the service password elsewhere), timeouts, the watchdog's callbacks, and TLS with
// certificate checks.
Status LdapSession::configure(const DirectoryConfig& config) {
    LDAP* ld = ld_;
    const int version = LDAP_VERSION3;
    const timeval timeout{config.timeout_seconds, 0};
    const int time_limit = config.timeout_seconds;
    bool ok = ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version) == LDAP_OPT_SUCCESS &&
              ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) == LDAP_OPT_SUCCESS &&
              ldap_set_option(ld, LDAP_OPT_RESTART, LDAP_OPT_ON) == LDAP_OPT_SUCCESS &&
              ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &timeout) == LDAP_OPT_SUCCESS &&
              ldap_set_option(ld, LDAP_OPT_TIMEOUT, &timeout) == LDAP_OPT_SUCCESS &&
              ldap_set_option(ld, LDAP_OPT_TIMELIMIT, &time_limit) == LDAP_OPT_SUCCESS;
    guard_->callbacks.lc_add = on_connected;
    guard_->callbacks.lc_del = on_closing;
    guard_->callbacks.lc_arg = guard_.get();
    ok = ok && ldap_set_option(ld, LDAP_OPT_CONNECT_CB, &guard_->callbacks) == LDAP_OPT_SUCCESS;
    if (!ok)
        return fail(Errc::unsupported, "this libldap refuses the basic connection options");
    if (config.tls == DirectoryTls::plain)
        return {};

    const int demand = LDAP_OPT_X_TLS_DEMAND;
    const int tls_1_2 = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2;
    ok = ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand) == LDAP_OPT_SUCCESS &&
         ldap_set_option(ld, LDAP_OPT_X_TLS_PROTOCOL_MIN, &tls_1_2) == LDAP_OPT_SUCCESS;
    if (ok && !config.ca_file.empty()) {
        // Only the given CAs: no folder of system CAs from ldap.conf on top.
        ok = ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, config.ca_file.c_str()) ==
                 LDAP_OPT_SUCCESS &&
             ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTDIR, nullptr) == LDAP_OPT_SUCCESS;
    }
    if (!ok)
        return fail(Errc::unsupported, "this libldap refuses the TLS options (built without TLS?)");
    const int client = 0;
    if (ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &client) != LDAP_OPT_SUCCESS) {
        char* text = nullptr;
        ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &text);
        std::string detail = take_ldap_string(text);
        return fail(
            Errc::invalid_argument,
            "cannot set up TLS for the directory" +
                (config.ca_file.empty() ? std::string() : " with ca_file " + config.ca_file) +
                (detail.empty() ? std::string() : ": " + detail) +
                ": check that ca_file is a readable PEM file of CA certificates");
    }
    return {};
}

Result<LdapSession> LdapSession::open(const DirectoryConfig& config,
                                      const std::string& description) {
    LDAP* handle = nullptr;
    const int rc = ldap_initialize(&handle, config.uri.c_str());
    if (rc != LDAP_SUCCESS || handle == nullptr)
        return fail(Errc::invalid_argument,
                    "cannot use directory address " + config.uri + ": " + ldap_err2string(rc));
    LdapSession session(handle, config, description);
    HL_TRY(session.configure(config));
    HL_TRY(session.connect());
    if (session.start_tls_)
        HL_TRY(session.start_tls());
    return session;
}

Status LdapSession::connect() {
    // Connects within the network timeout, then (for ldaps://) shakes hands under the watchdog.
    const int rc = ldap_connect(ld_);
    if (rc == LDAP_SUCCESS)
        return {};
    if (rc == LDAP_TIMEOUT || Clock::now() >= deadline_)
        return std::unexpected(timeout_error("connect"));
    if (guard_->connected)
        return std::unexpected(tls_error(rc));
    return fail(Errc::network, "cannot connect to directory " + description_ + ": " +
                                   describe_code(rc) + ": is it running, and is the uri right?");
}

Status LdapSession::start_tls() {
    int msgid = 0;
    int rc = ldap_start_tls(ld_, nullptr, nullptr, &msgid);
    if (rc != LDAP_SUCCESS)
        return std::unexpected(local_error(rc, "StartTLS"));
    LDAPMessage* raw = nullptr;
    HL_TRY(wait_for(msgid, "StartTLS", &raw));
    int result = LDAP_OTHER;
    char* text = nullptr;
    rc = ldap_parse_result(ld_, raw, &result, nullptr, &text, nullptr, nullptr, 1);
    std::string detail = take_ldap_string(text);
    if (rc != LDAP_SUCCESS)
        return std::unexpected(local_error(rc, "StartTLS"));
    if (result != LDAP_SUCCESS)
        return fail(Errc::network, "directory " + description_ +
                                       " refused StartTLS: " + ldap_err2string(result) +
                                       (detail.empty() ? "" : " (" + detail + ")") +
                                       ": give it a certificate, or use an ldaps:// address");
    // The handshake blocks; the watchdog ends it at the deadline.
    rc = ldap_install_tls(ld_);
    if (rc == LDAP_SUCCESS)
        return {};
    if (rc == LDAP_TIMEOUT || Clock::now() >= deadline_)
        return std::unexpected(timeout_error("TLS handshake"));
    return std::unexpected(tls_error(rc));
}

Status LdapSession::wait_for(int msgid, std::string_view doing, LDAPMessage** message) {
    *message = nullptr;
    const Clock::duration left = deadline_ - Clock::now();
    if (left <= Clock::duration::zero()) {
        ldap_abandon_ext(ld_, msgid, nullptr, nullptr);
        return std::unexpected(timeout_error(doing));
    }
    timeval tv = to_timeval(left);
    const int rc = ldap_result(ld_, msgid, LDAP_MSG_ALL, &tv, message);
    if (rc == 0) {
        ldap_abandon_ext(ld_, msgid, nullptr, nullptr);
        return std::unexpected(timeout_error(doing));
    }
    if (rc < 0 || *message == nullptr) {
        int code = LDAP_OTHER;
        ldap_get_option(ld_, LDAP_OPT_RESULT_CODE, &code);
        return std::unexpected(local_error(code, doing));
    }
    return {};
}

std::string LdapSession::diagnostic() const {
    char* text = nullptr;
    if (ldap_get_option(ld_, LDAP_OPT_DIAGNOSTIC_MESSAGE, &text) != LDAP_OPT_SUCCESS)
        return {};
    return take_ldap_string(text);
}

Error LdapSession::timeout_error(std::string_view doing) const {
    return Error{Errc::network, "directory " + description_ + " did not answer within " +
                                    std::to_string(timeout_seconds_) + " s (" + std::string(doing) +
                                    "): is it running?"};
}

std::string LdapSession::describe_code(int code) const {
    std::string what = ldap_err2string(code);
    const std::string detail = diagnostic();
    // GnuTLS failures often leave only this placeholder behind, which helps nobody.
    if (!detail.empty() && detail != what && detail != "(unknown error code)")
        what += " (" + detail + ")";
    return what;
}

Error LdapSession::tls_error(int code) const {
    return Error{Errc::network,
                 "the TLS handshake with directory " + description_ +
                     " failed: " + describe_code(code) +
                     ": check that ca_file holds the CA that signed the directory's certificate, "
                     "and that the certificate names the host in the uri (libldap checks "
                     "'localhost' against this machine's name)"};
}

Error LdapSession::local_error(int code, std::string_view doing) const {
    if (code == LDAP_TIMEOUT || Clock::now() >= deadline_)
        return timeout_error(doing);
    if (code == LDAP_SERVER_DOWN || code == LDAP_CONNECT_ERROR)
        return Error{Errc::network, "directory " + description_ + " dropped the connection (" +
                                        std::string(doing) + "): " + describe_code(code) +
                                        ": is it running?"};
    return Error{Errc::network, "directory " + description_ + ": " + std::string(doing) +
                                    " failed: " + describe_code(code)};
}

Result<BindOutcome> LdapSession::bind(std::string_view dn, std::string_view password,
                                      std::string* rejection) {
    const std::string dn_text(dn);
    berval credentials{};
    credentials.bv_len = password.size();
    credentials.bv_val = const_cast<char*>(password.data()); // libldap only reads it
    int msgid = 0;
    const std::string doing = dn.empty() ? "anonymous bind" : "bind as " + printable(dn);
    int rc = ldap_sasl_bind(ld_, dn_text.c_str(), LDAP_SASL_SIMPLE, &credentials, nullptr, nullptr,
                            &msgid);
    if (rc != LDAP_SUCCESS)
        return std::unexpected(local_error(rc, doing));
    LDAPMessage* raw = nullptr;
    HL_TRY(wait_for(msgid, doing, &raw));
    int result = LDAP_OTHER;
    char* text = nullptr;
    rc = ldap_parse_result(ld_, raw, &result, nullptr, &text, nullptr, nullptr, 1);
    const std::string detail = take_ldap_string(text);
    if (rc != LDAP_SUCCESS)
        return std::unexpected(local_error(rc, doing));
    if (result == LDAP_SUCCESS)
        return BindOutcome::accepted;
    if (result == LDAP_INVALID_CREDENTIALS || result == LDAP_INAPPROPRIATE_AUTH) {
        if (rejection != nullptr)
            *rejection = detail;
        return BindOutcome::rejected;
    }
    return fail(Errc::network, "directory " + description_ + " refused the " + doing + ": " +
                                   ldap_err2string(result) +
                                   (detail.empty() ? "" : " (" + detail + ")"));
}

} // namespace heirloom::server::ldap_backend
