// The directory interface without a directory: filter escaping, configuration checks, input
// refused before any network traffic, and timeouts against a port that accepts connections
// but never answers. The tests against a real slapd are in tests/integration/.

#include "heirloom/server/directory.hpp"
#include "support/support.hpp"

#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <cctype>
#include <chrono>
#include <functional>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace heirloom;
using namespace heirloom::server;
using namespace std::string_literals;
using heirloom::test::free_port;

namespace {

// A config that passes every check, pointing at a loopback port.
DirectoryConfig plain_config(int port) {
    DirectoryConfig config;
    config.uri = "ldap://127.0.0.1:" + std::to_string(port);
    config.tls = DirectoryTls::plain;
    config.base_dn = "dc=heirloom,dc=test";
    config.bind_dn = "cn=heirloom-server,ou=services,dc=heirloom,dc=test";
    config.bind_password = "service-secret";
    config.timeout_seconds = 1;
    return config;
}

std::unique_ptr<Directory> open_or_fail(const DirectoryConfig& config) {
    auto directory = open_ldap_directory(config);
    if (!directory)
        FAIL(directory.error().message);
    return std::move(*directory);
}

// True when every backslash starts a two-digit hex escape and no filter syntax is left bare.
bool only_escaped_specials(const std::string& escaped) {
    for (std::size_t i = 0; i < escaped.size(); ++i) {
        const char c = escaped[i];
        if (c == '*' || c == '(' || c == ')' || c == '\0')
            return false;
        if (c != '\\')
            continue;
        if (i + 2 >= escaped.size())
            return false;
        if (!std::isxdigit(static_cast<unsigned char>(escaped[i + 1])) ||
            !std::isxdigit(static_cast<unsigned char>(escaped[i + 2])))
            return false;
        i += 2;
    }
    return true;
}

// A TCP port on 127.0.0.1 that completes connections (the kernel does) but never answers:
// what a directory stopped with SIGSTOP, or a wedged one, looks like to a client.
class SilentPort {
  public:
    SilentPort() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t length = sizeof addr;
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), length) == 0);
        REQUIRE(::listen(fd_, 64) == 0);
        REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &length) == 0);
        port_ = ntohs(addr.sin_port);
    }
    ~SilentPort() { ::close(fd_); }
    SilentPort(const SilentPort&) = delete;
    SilentPort& operator=(const SilentPort&) = delete;
    int port() const { return port_; }

  private:
    int fd_ = -1;
    int port_ = 0;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

} // namespace

TEST_CASE("directory: escape_filter_value escapes the RFC 4515 specials", "[directory]") {
    CHECK(escape_filter_value("alice") == "alice");
    CHECK(escape_filter_value("") == "");
    CHECK(escape_filter_value("*") == "\\2a");
    CHECK(escape_filter_value("(") == "\\28");
    CHECK(escape_filter_value(")") == "\\29");
    CHECK(escape_filter_value("\\") == "\\5c");
    CHECK(escape_filter_value("a\0b"s) == "a\\00b");
    CHECK(escape_filter_value("*)(uid=*") == "\\2a\\29\\28uid=\\2a");
    CHECK(escape_filter_value("m*a(l)lo\\ry") == "m\\2aa\\28l\\29lo\\5cry");
    CHECK(escape_filter_value("\\2a") == "\\5c2a");
    // Ordinary punctuation of names and DNs stays as it is.
    CHECK(escape_filter_value("uid=bob,ou=people,dc=x") == "uid=bob,ou=people,dc=x");
    CHECK(escape_filter_value("o'brien & co. | x!=y ~ z") == "o'brien & co. | x!=y ~ z");
}

TEST_CASE("directory: escape_filter_value keeps UTF-8 text and escapes other bytes",
          "[directory]") {
    CHECK(escape_filter_value("zoë") == "zoë");
    CHECK(escape_filter_value("日本語") == "日本語");
    CHECK(escape_filter_value("\xF0\x9F\x94\x91") == "\xF0\x9F\x94\x91"); // U+1F511, 4 bytes
    CHECK(escape_filter_value("zo\xC3") == "zo\\c3");                     // cut short
    CHECK(escape_filter_value("\x80") == "\\80");                 // a lone continuation byte
    CHECK(escape_filter_value("\xC0\xAF") == "\\c0\\af");         // overlong "/"
    CHECK(escape_filter_value("\xED\xA0\x80") == "\\ed\\a0\\80"); // a UTF-16 surrogate
    CHECK(escape_filter_value("\xF4\x90\x80\x80") == "\\f4\\90\\80\\80"); // past U+10FFFF
    CHECK(escape_filter_value("\xFF*") == "\\ff\\2a");
    // Control characters are escaped too, so a filter is always safe to log.
    CHECK(escape_filter_value("a\nb\tc\x7F") == "a\\0ab\\09c\\7f");
}

TEST_CASE("directory: escaped injection attempts keep no filter syntax", "[directory]") {
    const std::vector<std::string> attempts = {
        "*",         "*)(uid=*", "alice)(|(uid=*", "\\2a", "*)(|(objectClass=*",
        "admin)(&)", "x\0*"s,    "\xFF(\xFE)",     "((((", "\\\\\\",
        "a*b*c"};
    for (const auto& attempt : attempts) {
        INFO(attempt);
        const std::string escaped = escape_filter_value(attempt);
        CHECK(only_escaped_specials(escaped));
    }
}

TEST_CASE("directory: open_ldap_directory accepts a sound configuration", "[directory]") {
    DirectoryConfig config = plain_config(389);
    config.tls = DirectoryTls::start_tls;
    auto directory = open_or_fail(config);
    CHECK(directory->describe() == "ldap://127.0.0.1:389 (StartTLS)");

    config.tls = DirectoryTls::plain;
    CHECK(open_or_fail(config)->describe() == "ldap://127.0.0.1:389 (no TLS)");

    config.uri = "ldaps://ldap.example.org:636/";
    config.tls = DirectoryTls::ldaps;
    CHECK(open_or_fail(config)->describe() == "ldaps://ldap.example.org:636/");

    // Anonymous searches: no service account at all.
    config.bind_dn.clear();
    config.bind_password.clear();
    CHECK(open_ldap_directory(config).has_value());

    // Separate bases without a common one; numeric OIDs as attribute names.
    config.base_dn.clear();
    config.user_base = "ou=people,dc=x";
    config.group_base = "ou=groups,dc=x";
    config.user_attribute = "0.9.2342.19200300.100.1.1";
    CHECK(open_ldap_directory(config).has_value());
}

TEST_CASE("directory: open_ldap_directory refuses a configuration that cannot work",
          "[directory]") {
    struct Case {
        const char* what;
        std::function<void(DirectoryConfig&)> change;
        const char* says;
    };
    const std::vector<Case> cases = {
        {"empty uri", [](auto& c) { c.uri.clear(); }, "uri is empty"},
        {"http uri", [](auto& c) { c.uri = "http://127.0.0.1:389"; }, "ldap://"},
        {"no scheme", [](auto& c) { c.uri = "127.0.0.1:389"; }, "uri"},
        {"two uris", [](auto& c) { c.uri = "ldap://a:389 ldap://b:389"; }, "single"},
        {"uri with a DN", [](auto& c) { c.uri = "ldap://a:389/dc=x"; }, "base_dn"},
        {"ldaps uri with StartTLS",
         [](auto& c) {
             c.uri = "ldaps://a:636";
             c.tls = DirectoryTls::start_tls;
         },
         "set tls to ldaps"},
        {"ldaps uri without TLS",
         [](auto& c) {
             c.uri = "ldaps://a:636";
             c.tls = DirectoryTls::plain;
         },
         "set tls to ldaps"},
        {"ldap uri with ldaps", [](auto& c) { c.tls = DirectoryTls::ldaps; }, "ldaps://"},
        {"timeout 0", [](auto& c) { c.timeout_seconds = 0; }, "timeout_seconds"},
        {"huge timeout", [](auto& c) { c.timeout_seconds = 100000; }, "timeout_seconds"},
        {"no base", [](auto& c) { c.base_dn.clear(); }, "base_dn is empty"},
        {"bad base", [](auto& c) { c.base_dn = "not a dn"; }, "base_dn"},
        {"bad user base", [](auto& c) { c.user_base = "ou=people,,"; }, "user_base"},
        {"bad bind dn", [](auto& c) { c.bind_dn = "heirloom-server"; }, "bind_dn"},
        {"bind dn without password", [](auto& c) { c.bind_password.clear(); }, "password"},
        {"password without bind dn", [](auto& c) { c.bind_dn.clear(); }, "bind_dn is empty"},
        {"filter in user_attribute", [](auto& c) { c.user_attribute = "uid)(cn=*"; },
         "user_attribute"},
        {"empty user_attribute", [](auto& c) { c.user_attribute.clear(); }, "user_attribute"},
        {"filter in object class", [](auto& c) { c.user_object_class = "*"; }, "user_object_class"},
        {"bad group_attribute", [](auto& c) { c.group_attribute = "cn=x"; }, "group_attribute"},
        {"missing ca_file",
         [](auto& c) {
             c.tls = DirectoryTls::start_tls;
             c.ca_file = "/nonexistent/ca.pem";
         },
         "ca_file"},
    };
    for (const auto& test : cases) {
        INFO(test.what);
        DirectoryConfig config = plain_config(389);
        test.change(config);
        auto directory = open_ldap_directory(config);
        REQUIRE_FALSE(directory.has_value());
        CHECK(directory.error().code == Errc::invalid_argument);
        CHECK_THAT(directory.error().message, Catch::Contains(test.says));
        CHECK_THAT(directory.error().message, !Catch::Contains("service-secret"));
    }
}

TEST_CASE("directory: bad names and empty passwords are refused before any network traffic",
          "[directory]") {
    // Nothing listens on this port: any attempt to talk would end in Errc::network.
    auto directory = open_or_fail(plain_config(free_port()));
    const std::vector<std::string> bad_names = {
        "",        std::string(257, 'a'), "ali\0ce"s, "alice\n", "\tbob", "bell\a",
        "del\x7F", "bad\xFFutf8"};
    for (const auto& name : bad_names) {
        INFO(name);
        auto user = directory->authenticate(name, "alice-pw");
        REQUIRE_FALSE(user.has_value());
        CHECK(user.error().code == Errc::invalid_argument);
        auto found = directory->lookup(name);
        REQUIRE_FALSE(found.has_value());
        CHECK(found.error().code == Errc::invalid_argument);
    }
    auto empty_password = directory->authenticate("alice", "");
    REQUIRE_FALSE(empty_password.has_value());
    CHECK(empty_password.error().code == Errc::invalid_argument);
    CHECK_THAT(empty_password.error().message, Catch::Contains("password is empty"));

    auto search = directory->search_users(std::string(300, 'x'), 10);
    REQUIRE_FALSE(search.has_value());
    CHECK(search.error().code == Errc::invalid_argument);
    // A limit of 0 asks for nothing, so nothing is asked.
    auto none = directory->search_groups("staff", 0);
    REQUIRE(none.has_value());
    CHECK(none->empty());

    // A 256-byte name is fine, and a good name does reach for the (missing) directory.
    auto longest = directory->authenticate(std::string(256, 'a'), "pw");
    REQUIRE_FALSE(longest.has_value());
    CHECK(longest.error().code == Errc::network);
}

TEST_CASE("directory: a directory that is down gives Errc::network at once", "[directory]") {
    const int port = free_port();
    auto directory = open_or_fail(plain_config(port));
    const auto start = std::chrono::steady_clock::now();
    auto user = directory->authenticate("alice", "alice-pw");
    REQUIRE_FALSE(user.has_value());
    CHECK(user.error().code == Errc::network);
    CHECK_THAT(user.error().message, Catch::Contains("127.0.0.1:" + std::to_string(port)));
    CHECK_THAT(user.error().message, Catch::Contains("is it running"));
    CHECK_THAT(user.error().message, !Catch::Contains("alice-pw"));
    CHECK_THAT(user.error().message, !Catch::Contains("service-secret"));
    CHECK(seconds_since(start) < 1.0);
}

TEST_CASE("directory: a directory that never answers gives Errc::network within the timeout",
          "[directory]") {
    SilentPort silent;
    DirectoryConfig config = plain_config(silent.port());
    SECTION("plain: the service bind waits") {}
    SECTION("StartTLS: the StartTLS request waits") {
        config.tls = DirectoryTls::start_tls;
    }
    SECTION("ldaps: the TLS handshake waits") {
        config.uri = "ldaps://127.0.0.1:" + std::to_string(silent.port());
        config.tls = DirectoryTls::ldaps;
    }
    config.timeout_seconds = 1;
    auto directory = open_or_fail(config);

    auto start = std::chrono::steady_clock::now();
    auto user = directory->authenticate("alice", "alice-pw");
    const double took = seconds_since(start);
    REQUIRE_FALSE(user.has_value());
    CHECK(user.error().code == Errc::network);
    CHECK_THAT(user.error().message, Catch::Contains("did not answer within 1 s"));
    CHECK(took >= 0.9);
    CHECK(took < 3.0);

    start = std::chrono::steady_clock::now();
    auto found = directory->lookup("alice");
    REQUIRE_FALSE(found.has_value());
    CHECK(found.error().code == Errc::network);
    CHECK(seconds_since(start) < 3.0);

    start = std::chrono::steady_clock::now();
    auto users = directory->search_users("a", 10);
    REQUIRE_FALSE(users.has_value());
    CHECK(users.error().code == Errc::network);
    CHECK(seconds_since(start) < 3.0);
}
