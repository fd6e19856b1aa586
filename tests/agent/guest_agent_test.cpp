// The real heirloom-guest, driven over Unix sockets standing in for its virtio-serial ports:
// the control session (hello, apps, launches, exits, refusals, reconnects) and the display
// relay to a stand-in Xpra socket.

#include "heirloom/agent/guest_protocol.hpp"
#include "support/guest_frames.hpp"
#include "support/guest_host.hpp"
#include "support/support.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace heirloom;
using namespace heirloom::guest;
using namespace heirloom::test;

namespace {

// Reads until want bytes arrived, the peer closed, or timeout_ms passed.
std::string read_within(int fd, std::size_t want, int timeout_ms = 10000) {
    std::string got;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (got.size() < want) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now())
                        .count();
        pollfd pfd{fd, POLLIN, 0};
        if (left <= 0 || ::poll(&pfd, 1, static_cast<int>(left)) != 1)
            break;
        char buffer[4096];
        ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n <= 0)
            break;
        got.append(buffer, static_cast<std::size_t>(n));
    }
    return got;
}

// True when the peer closes fd within timeout_ms.
bool closed_within(int fd, int timeout_ms = 10000) {
    pollfd pfd{fd, POLLIN, 0};
    char byte = 0;
    return ::poll(&pfd, 1, timeout_ms) == 1 && ::read(fd, &byte, 1) == 0;
}

} // namespace

TEST_CASE("heirloom-guest: hello, app list, launches and exits over a control socket", "[guest]") {
    test::TempDir dir;
    auto write = [&](const std::string& name, const std::string& text) {
        test::write_file(dir / "apps" / name, as_bytes(text));
    };
    auto icon = fake_png(700);
    test::write_file(dir / "apps/heirloom-test-icon.png", icon);
    write("heirloom-test-exit3.desktop", "[Desktop Entry]\nType=Application\nName=Exit Three\n"
                                         "Exec=/bin/sh -c \"exit 3\"\nIcon=heirloom-test-icon\n"
                                         "MimeType=text/plain;\n");
    write("heirloom-test-args.desktop",
          "[Desktop Entry]\nType=Application\nName=Args\nExec=/bin/sh -c \"echo "
          "\\\"\\$DISPLAY|\\$1|\\$2\\\" > " +
              (dir / "args.txt").string() + "\" sh %F\n");
    write("heirloom-test-killed.desktop", "[Desktop Entry]\nType=Application\nName=Killed\n"
                                          "Exec=/bin/sh -c \"kill -9 \\$\\$\"\n");
    write("heirloom-test-missing.desktop", "[Desktop Entry]\nType=Application\nName=Missing\n"
                                           "Exec=/nonexistent/heirloom-test-program\n");

    FakeHost host(dir / "control.sock");
    auto guest_bin = (test::bin_dir() / "heirloom-guest").string();
    REQUIRE(fs::exists(guest_bin));
    pid_t guest = start_guest({guest_bin, "--control", (dir / "control.sock").string(),
                               "--no-display", "--no-clock", "--display-number", ":42",
                               "--apps-dir", (dir / "apps").string()},
                              dir / "guest.log");
    REQUIRE(guest > 0);
    struct Reaper {
        pid_t pid;
        ~Reaper() {
            if (::kill(pid, 0) == 0) {
                ::kill(pid, SIGKILL);
                ::waitpid(pid, nullptr, 0);
            }
        }
    } reaper{guest};
    auto log = [&] {
        return slurp(dir / "guest.log");
    };

    REQUIRE(host.accept());
    auto hello = host.expect<GuestHello>();
    CHECK_FALSE(hello.guest_version.empty());
    CHECK_FALSE(hello.hostname.empty());

    // Nothing but hello is answered before the host's hello.
    host.send(ListApps{});
    CHECK(host.expect<GuestError>().message.find("expected hello") != std::string::npos);
    host.send(HostHello{});

    host.send(ListApps{});
    auto list = host.expect<AppList>();
    std::map<std::string, App> apps;
    for (const auto& app : list.apps)
        apps[app.id] = app;
    REQUIRE(apps.contains("heirloom-test-exit3"));
    REQUIRE(apps.contains("heirloom-test-args"));
    CHECK(apps["heirloom-test-exit3"].name == "Exit Three");
    CHECK(apps["heirloom-test-exit3"].command == "/bin/sh -c \"exit 3\"");
    CHECK(apps["heirloom-test-exit3"].icon_png == icon);
    CHECK(apps["heirloom-test-exit3"].file_types == std::vector<std::string>{"text/plain"});

    SECTION("an app runs, and its exit status is reported") {
        host.send(Launch{11, "heirloom-test-exit3", {}, {}});
        auto launched = host.expect<Launched>();
        CHECK(launched.req == 11);
        auto exited = host.expect<Exited>();
        CHECK(exited.pid == launched.pid);
        CHECK(exited.code == 3);

        host.send(Launch{12, "heirloom-test-killed", {}, {}});
        auto killed = host.expect<Launched>();
        CHECK(host.expect<Exited>() == Exited{killed.pid, 128 + SIGKILL});
    }
    SECTION("a host file arrives in parts under a safe name, only while file transfer allows") {
        // Before the host allowed it (controls off by default): refused.
        host.send(FilePart{30, "a.txt", 3, 0, {'a', 'b', 'c'}});
        CHECK(host.expect<FileFailed>().req == 30);
        host.send(Controls{{Direction::off, Direction::host_to_guest, false, false}});
        host.expect<ControlsApplied>();

        std::vector<std::uint8_t> content(max_file_part + 1000);
        for (std::size_t i = 0; i < content.size(); ++i)
            content[i] = static_cast<std::uint8_t>(i * 13);
        std::vector<std::uint8_t> first(content.begin(), content.begin() + max_file_part);
        std::vector<std::uint8_t> rest(content.begin() + max_file_part, content.end());
        host.send(FilePart{31, "../../etc/passwd", content.size(), 0, first});
        host.send(FilePart{31, "../../etc/passwd", content.size(), max_file_part, rest});
        auto stored = host.expect<FileStored>();
        CHECK(stored.req == 31);
        fs::path path = stored.path;
        struct Cleanup {
            fs::path dir;
            ~Cleanup() {
                std::error_code ec;
                if (dir.filename().string().starts_with("heirloom-files-"))
                    fs::remove_all(dir, ec);
            }
        } cleanup{path.parent_path()};
        CHECK(path.filename() == "passwd");
        CHECK(path.parent_path().filename().string().starts_with("heirloom-files-"));
        CHECK(test::as_text(read_file(path).value()) == test::as_text(content));
        // The same name again: a second file beside it, never over it.
        host.send(FilePart{32, "passwd", 2, 0, {'h', 'i'}});
        auto again = host.expect<FileStored>();
        CHECK(fs::path(again.path).parent_path() == path.parent_path());
        CHECK(fs::path(again.path).filename() == "2-passwd");
        // A part out of order, or of a file never started: refused, nothing kept.
        host.send(FilePart{33, "x.txt", 10, 0, {'1', '2'}});
        host.send(FilePart{33, "x.txt", 10, 5, {'3', '4'}});
        CHECK(host.expect<FileFailed>().req == 33);
        CHECK_FALSE(fs::exists(path.parent_path() / "x.txt"));
        host.send(FilePart{34, "y.txt", 10, 4, {'1'}});
        CHECK(host.expect<FileFailed>().req == 34);
        // The app gets the path.
        host.send(Launch{35, "heirloom-test-args", {stored.path}, {}});
        auto launched = host.expect<Launched>();
        CHECK(host.expect<Exited>() == Exited{launched.pid, 0});
        CHECK(slurp(dir / "args.txt") == ":42|" + stored.path + "|\n");
        // Turned off again: refused.
        host.send(Controls{{Direction::off, Direction::guest_to_host, false, false}});
        host.expect<ControlsApplied>();
        host.send(FilePart{36, "z.txt", 1, 0, {'z'}});
        CHECK(host.expect<FileFailed>().message.find("off") != std::string::npos);
    }
    SECTION("arguments reach the app as they are, with DISPLAY set") {
        host.send(Launch{13, "heirloom-test-args", {"a file.txt", "$(id) `x` ;|"}, {}});
        auto launched = host.expect<Launched>();
        CHECK(host.expect<Exited>() == Exited{launched.pid, 0});
        CHECK(slurp(dir / "args.txt") == ":42|a file.txt|$(id) `x` ;|\n");
    }
    SECTION("a policy's command line runs as given, without a shell, even for an id the guest "
            "does not know") {
        host.send(Launch{14, "policy-app", {"x y"}, {"/bin/sh", "-c", "exit 5", "ignored"}});
        auto launched = host.expect<Launched>();
        CHECK(host.expect<Exited>() == Exited{launched.pid, 5});
        host.send(Launch{15, "policy-app", {}, {"/no/such/program"}});
        CHECK(host.expect<LaunchFailed>().req == 15);
    }
    SECTION("unknown apps and missing programs fail to launch") {
        host.send(Launch{21, "no-such-app", {}, {}});
        auto failed = host.expect<LaunchFailed>();
        CHECK(failed.req == 21);
        CHECK(failed.message.find("no-such-app") != std::string::npos);
        host.send(Launch{22, "heirloom-test-missing", {}, {}});
        auto missing = host.expect<LaunchFailed>();
        CHECK(missing.req == 22);
        CHECK(missing.message.find("not installed") != std::string::npos);
    }
    SECTION("pings, controls and a refused clock") {
        host.send(Ping{77});
        CHECK(host.expect<Pong>().seq == 77);
        DeviceControls controls{Direction::both, Direction::off, true, false};
        host.send(Controls{controls});
        CHECK(host.expect<ControlsApplied>().controls == controls);
        host.send(SetTime{1'700'000'000'000});
        CHECK(host.expect<GuestError>().message.find("clock") != std::string::npos);
    }
    SECTION("bad messages are answered with an error; a bad frame ends the session") {
        host.send_raw(raw_frame(R"({"type":"launch","req":1,"app_id":"x","args":[],"cmd":"sh"})"));
        CHECK(host.expect<GuestError>().message.find("unexpected field \"cmd\"") !=
              std::string::npos);
        host.send_raw(raw_frame("{not json"));
        CHECK(host.expect<GuestError>().message.find("malformed JSON") != std::string::npos);
        host.send(Ping{1});
        CHECK(host.expect<Pong>().seq == 1);

        host.send_raw(raw_frame("", 0xffffffff));
        CHECK(host.expect<GuestError>().message.find("frame length") != std::string::npos);
        host.send(Ping{2});
        CHECK_FALSE(host.receive(300));

        // A new connection is a new session, starting with hello.
        host.disconnect();
        REQUIRE(host.accept());
        host.expect<GuestHello>();
        host.send(HostHello{});
        host.send(Ping{3});
        CHECK(host.expect<Pong>().seq == 3);
    }

    REQUIRE(::kill(guest, SIGTERM) == 0);
    INFO(log());
    CHECK(wait_for_exit(guest, 5000) == 0);
    CHECK(log().find("stopping") != std::string::npos);
}

TEST_CASE("heirloom-guest: the display port is relayed to the Xpra socket, byte for byte",
          "[guest]") {
    test::TempDir dir;
    // A stand-in for Xpra that just stays up; the test plays the Xpra server on its socket.
    auto fake_xpra = dir / "fake-xpra";
    test::write_file(fake_xpra, as_bytes(std::string("#!/bin/sh\nexec sleep 600\n")));
    fs::permissions(fake_xpra, fs::perms::owner_all);
    test::write_file(dir / "apps/heirloom-test-true.desktop",
                     as_bytes(std::string("[Desktop Entry]\nType=Application\nName=True\n"
                                          "Exec=/bin/true\n")));
    auto xpra_socket = dir / "run/xpra.sock";
    FakeHost host(dir / "control.sock");
    int display_listener = listen_unix(dir / "display.sock");
    pid_t guest = start_guest({(test::bin_dir() / "heirloom-guest").string(), "--control",
                               (dir / "control.sock").string(), "--display",
                               (dir / "display.sock").string(), "--xpra", fake_xpra.string(),
                               "--xpra-socket", xpra_socket.string(), "--display-number", ":57",
                               "--no-clock", "--apps-dir", (dir / "apps").string()},
                              dir / "guest.log");
    REQUIRE(guest > 0);

    REQUIRE(host.accept());
    host.expect<GuestHello>();
    host.send(HostHello{});
    // Apps cannot open windows before the display exists.
    host.send(Launch{1, "heirloom-test-true", {}, {}});
    CHECK(host.expect<LaunchFailed>().message.find("send controls") != std::string::npos);
    host.send(Controls{{}});
    host.expect<ControlsApplied>();
    REQUIRE(fs::is_directory(dir / "run"));
    int xpra_listener = listen_unix(xpra_socket);

    int display = accept_within(display_listener);
    REQUIRE(display >= 0);
    std::string hello_bytes("P\0\xff\x01 any bytes", 14);
    REQUIRE(::write(display, hello_bytes.data(), hello_bytes.size()) ==
            static_cast<ssize_t>(hello_bytes.size()));
    int xpra = accept_within(xpra_listener);
    REQUIRE(xpra >= 0);
    CHECK(read_within(xpra, hello_bytes.size()) == hello_bytes);
    auto big = test::pseudo_random(3u << 20, 9);
    std::string reply(big.begin(), big.end());
    std::thread writer([&] {
        std::size_t done = 0;
        while (done < reply.size()) {
            ssize_t n = ::write(xpra, reply.data() + done, reply.size() - done);
            if (n <= 0)
                break;
            done += static_cast<std::size_t>(n);
        }
    });
    std::string echoed = read_within(display, reply.size());
    writer.join();
    CHECK(echoed == reply);

    // The host side goes away: the Xpra connection is closed; new data opens a fresh one.
    ::close(display);
    CHECK(closed_within(xpra));
    ::close(xpra);
    display = accept_within(display_listener);
    REQUIRE(display >= 0);
    REQUIRE(::write(display, "again", 5) == 5);
    xpra = accept_within(xpra_listener);
    REQUIRE(xpra >= 0);
    CHECK(read_within(xpra, 5) == "again");

    REQUIRE(::kill(guest, SIGTERM) == 0);
    CHECK(wait_for_exit(guest, 8000) == 0);
    ::close(xpra);
    ::close(display);
    ::close(xpra_listener);
    ::close(display_listener);
    CHECK(slurp(dir / "guest.log").find("started the Xpra server") != std::string::npos);
}
