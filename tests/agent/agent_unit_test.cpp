// The agent's parts on their own: the vault, the time anchor, the settings parser and the
// control socket, with hostile and malformed input.

#include "heirloom/agent/agent.hpp"
#include "heirloom/agent/clock.hpp"
#include "heirloom/agent/control.hpp"
#include "heirloom/agent/vault.hpp"
#include "support/support.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace heirloom;
using namespace heirloom::agent;

TEST_CASE("vault: secrets sealed under the device key, tampering and foreign keys refused",
          "[agent]") {
    test::TempDir dir;
    auto vault = Vault::open(dir / "vault");
    REQUIRE(vault);
    struct stat st {};
    REQUIRE(::stat((dir / "vault" / "device.key").c_str(), &st) == 0);
    CHECK((st.st_mode & 077) == 0);

    std::string token = "the-agent-token-0123456789";
    REQUIRE(vault->put("agent-token", as_bytes(token)));
    auto sealed = read_file(dir / "vault" / "agent-token.sealed");
    REQUIRE(sealed);
    CHECK(std::string(sealed->begin(), sealed->end()).find("agent-token-0123") ==
          std::string::npos);
    auto back = vault->get("agent-token");
    REQUIRE(back);
    CHECK(std::string(back->begin(), back->end()) == token);
    CHECK(vault->get("missing").error().code == Errc::not_found);

    SECTION("a flipped bit, a truncation or a swapped name is refused") {
        Bytes bad = *sealed;
        bad.back() ^= 1;
        test::write_file(dir / "vault" / "agent-token.sealed", bad);
        CHECK(vault->get("agent-token").error().code == Errc::crypto);
        test::write_file(dir / "vault" / "agent-token.sealed", ByteView(sealed->data(), 10));
        CHECK(vault->get("agent-token").error().code == Errc::crypto);
        test::write_file(dir / "vault" / "image-x.sealed", *sealed);
        CHECK(vault->get("image-x").error().code == Errc::crypto);
    }
    SECTION("another endpoint's device key does not open it") {
        auto other = Vault::open(dir / "other");
        REQUIRE(other);
        test::write_file(dir / "other" / "agent-token.sealed", *sealed);
        CHECK(other->get("agent-token").error().code == Errc::crypto);
    }
    SECTION("hostile names never leave the vault folder") {
        for (const std::string& name : std::vector<std::string>{
                 "../escape", "/etc/passwd", "", ".hidden", "a/b", "x\ny", std::string(200, 'a')})
            CHECK(vault->put(name, as_bytes(token)).error().code == Errc::invalid_argument);
    }
    SECTION("a device key open to others is refused") {
        ::chmod((dir / "vault" / "device.key").c_str(), 0644);
        CHECK_FALSE(Vault::open(dir / "vault"));
    }
    SECTION("authenticated state files notice edits") {
        REQUIRE(vault->write_authenticated(dir / "state.json", "policy", R"({"serial":7})"));
        auto text = vault->read_authenticated(dir / "state.json", "policy");
        REQUIRE(text);
        CHECK(*text == R"({"serial":7})");
        CHECK(vault->read_authenticated(dir / "state.json", "clock").error().code == Errc::crypto);
        auto raw = read_text_file(dir / "state.json");
        REQUIRE(raw);
        std::string edited = *raw;
        edited.replace(edited.find('7'), 1, "9");
        test::write_file(dir / "state.json", as_bytes(edited));
        CHECK(vault->read_authenticated(dir / "state.json", "policy").error().code == Errc::crypto);
        test::write_file(dir / "state.json", as_bytes(std::string("garbage")));
        CHECK_FALSE(vault->read_authenticated(dir / "state.json", "policy"));
    }
}

TEST_CASE("trusted clock: never goes back, remembers the high-water mark", "[agent]") {
    test::TempDir dir;
    auto vault = Vault::open(dir / "vault");
    REQUIRE(vault);
    auto clock = TrustedClock::load(*vault, dir / "clock.json");
    REQUIRE(clock);
    std::int64_t now = clock->now();
    CHECK(std::abs(now - static_cast<std::int64_t>(std::time(nullptr))) <= 2);
    clock->set_policy_serial(41);
    REQUIRE(clock->save());

    // A high-water mark a day ahead (as if the clock had been later, then set back).
    auto text = vault->read_authenticated(dir / "clock.json", "clock");
    REQUIRE(text);
    auto doc = parse_json(*text);
    REQUIRE(doc);
    (*doc)["high_water"] = now + 86400;
    REQUIRE(vault->write_authenticated(dir / "clock.json", "clock", doc->dump()));
    auto later = TrustedClock::load(*vault, dir / "clock.json");
    REQUIRE(later);
    CHECK(later->now() >= now + 86400);
    CHECK(later->clock_behind() >= 86400 - 2);
    CHECK(later->policy_serial() == 41);
    later->set_policy_serial(3); // never lowered
    CHECK(later->policy_serial() == 41);
}

TEST_CASE("agent settings: defaults, bounds, unknown keys and wrong types", "[agent]") {
    auto defaults = parse_settings("{}");
    REQUIRE(defaults);
    CHECK(defaults->policy_refresh_seconds == 300);
    auto s = parse_settings(R"({"policy_refresh_seconds": 1, "sync_workers": 1000,
        "max_bytes_per_second": 5, "seeds": {"payroll-ws": ["/srv/seed"]},
        "media_roots": ["/media/alice"]})");
    REQUIRE(s);
    CHECK(s->policy_refresh_seconds == 10);
    CHECK(s->sync_workers == 32);
    CHECK(s->max_bytes_per_second == 64 << 10);
    CHECK(s->seeds.at("payroll-ws").at(0) == "/srv/seed");
    CHECK(s->media_roots.at(0) == "/media/alice");
    for (const char* bad : {R"({"polcy_refresh_seconds": 10})", R"({"sync_workers": "two"})",
                            R"({"seeds": ["/x"]})", R"([1, 2])", "{", R"({"seeds": {"a": [1]}})"})
        CHECK_FALSE(parse_settings(bad));
}

namespace {

// Sends raw bytes to a socket and returns the answer line (or what came before the close).
std::string raw_call(const fs::path& path, const std::string& bytes, bool close_write = true) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.string().size());
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (close_write)
        ::shutdown(fd, SHUT_WR);
    std::string out;
    char buffer[4096];
    ssize_t n;
    while ((n = ::recv(fd, buffer, sizeof buffer, 0)) > 0)
        out.append(buffer, static_cast<std::size_t>(n));
    ::close(fd);
    return out;
}

} // namespace

TEST_CASE("control socket: requests, malformed input, and other users refused", "[agent]") {
    test::TempDir dir;
    fs::path path = dir / "run" / "agent.sock";
    auto server = ControlServer::listen(path);
    REQUIRE(server);
    std::atomic<bool> stop = false;
    std::atomic<int> handled = 0;
    std::thread serving([&] {
        server->run(
            [&](const Json& request) {
                ++handled;
                return Json{{"ok", true}, {"echo", request["command"]}};
            },
            stop);
    });
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 077) == 0);

    auto answer = call_agent(path, {{"command", "status"}}, 5);
    REQUIRE(answer);
    CHECK((*answer)["echo"] == "status");
    // A second daemon on the same socket is refused.
    CHECK(ControlServer::listen(path).error().code == Errc::conflict);

    int before = handled;
    CHECK(raw_call(path, "not json\n").find("bad request") != std::string::npos);
    CHECK(raw_call(path, "[1,2]\n").find("bad request") != std::string::npos);
    CHECK(raw_call(path, R"({"command": 5})"
                         "\n")
              .find("bad request") != std::string::npos);
    CHECK(raw_call(path, std::string(max_control_message + 10, 'x')).find("too long") !=
          std::string::npos);
    CHECK(raw_call(path, R"({"command": "status")").find("bad request") != std::string::npos);
    CHECK(handled == before); // none of those reached the handler

    if (::getuid() == 0) {
        // Another user (nobody) connecting gets a refusal, never the handler.
        ::chmod(dir.path().c_str(), 0711);
        ::chmod(path.parent_path().c_str(), 0711);
        ::chmod(path.c_str(), 0666);
        // The child reports what it got through a pipe, so a failure says why.
        auto as_nobody = [&] {
            int p[2];
            REQUIRE(::pipe(p) == 0);
            pid_t child = ::fork();
            if (child == 0) {
                ::close(p[0]);
                std::string got;
                if (::setgid(65534) != 0 || ::setuid(65534) != 0) {
                    got = "cannot become nobody";
                } else {
                    auto r = call_agent(path, {{"command", "status"}}, 5);
                    got = r ? "an answer: " + r->dump() : r.error().message;
                }
                (void)!::write(p[1], got.data(), got.size());
                ::_exit(0);
            }
            ::close(p[1]);
            std::string got;
            char buf[512];
            for (ssize_t n; (n = ::read(p[0], buf, sizeof buf)) > 0;)
                got.append(buf, static_cast<std::size_t>(n));
            ::close(p[0]);
            ::waitpid(child, nullptr, 0);
            return got;
        };
        std::string got = as_nobody();
        INFO("nobody got: " << got);
        CHECK(got.find("another user") != std::string::npos);
        CHECK(handled == before);
    } else {
        WARN("not root: the other-user check of the control socket is not exercised");
    }
    stop = true;
    serving.join();
}
