// The server under faults and hostile clients: the directory down or frozen, the server killed
// in the middle of a push, slow (slowloris) clients, and malformed or tampered requests.

#include "heirloom/trim/format.hpp"
#include "heirloom/trim/repository.hpp"
#include "support/server_deployment.hpp"

#include <arpa/inet.h>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <fstream>
#include <netinet/in.h>
#include <poll.h>
#include <sstream>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace heirloom;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

int connect_to(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    return fd;
}

// Sends raw bytes and returns what the server answers before closing (or 5 s pass).
std::string raw_exchange(int port, const std::string& request) {
    int fd = connect_to(port);
    (void)::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    std::string answer;
    char buffer[4096];
    pollfd p{fd, POLLIN, 0};
    while (::poll(&p, 1, 5000) > 0) {
        ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0)
            break;
        answer.append(buffer, static_cast<std::size_t>(n));
        auto end = answer.find("\r\n\r\n");
        if (end == std::string::npos)
            continue;
        auto length = answer.find("Content-Length: ");
        std::size_t body = length < end ? std::stoul(answer.substr(length + 16)) : 0;
        if (answer.size() >= end + 4 + body)
            break;
    }
    ::close(fd);
    return answer;
}

std::size_t count_files(const fs::path& dir) {
    std::size_t n = 0;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec))
        if (it->is_regular_file())
            ++n;
    return n;
}

// The server's side of the TCP connections to 127.0.0.1:port, from /proc/net/tcp: how many
// are established, and how many of those still wait in the listening socket's accept queue.
struct ServerConnections {
    int established = 0;
    int queued = -1; // -1: nothing listens on port
};
ServerConnections server_connections(int port) {
    ServerConnections c;
    std::ifstream lines("/proc/net/tcp"); // procfs: read as a stream, it has no size
    REQUIRE(lines);
    std::string line;
    std::getline(lines, line); // the header
    while (std::getline(lines, line)) {
        std::istringstream fields(line);
        std::string slot, local, remote, state, queues;
        fields >> slot >> local >> remote >> state >> queues;
        if (local.size() < 5 || std::stoi(local.substr(local.size() - 4), nullptr, 16) != port)
            continue;
        if (state == "0A") // listening: rx_queue is its accept queue
            c.queued = std::stoi(queues.substr(queues.find(':') + 1), nullptr, 16);
        else if (state == "01")
            ++c.established;
    }
    return c;
}

} // namespace

TEST_CASE("server: a directory that is down or frozen fails closed within seconds",
          "[server][integration]") {
    test::Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    test::HeirloomServerOptions options;
    options.membership_cache_seconds = 0; // ask the directory every time
    options.directory_timeout_seconds = 2;
    test::HeirloomServer server(slapd, options);
    HL_SKIP_UNLESS_RUNNING(server);
    auto admin = server.login("carol", "carol-pw");
    REQUIRE(admin->post("/v1/admin/images", {{"name", "payroll"}}));
    REQUIRE(admin->put("/v1/admin/workspaces/payroll-ws", test::workspace("payroll", "Payroll")));
    REQUIRE(
        admin->put("/v1/admin/assignments/a1",
                   test::assignment("payroll-ws", "group", "finance", "off", "off", "off", "off")));
    auto alice = test::enrol(server, "alice", "alice-pw");
    auto agent = test::agent_client(server, alice);
    REQUIRE(agent->get_text("/v1/agent/policy"));
    auto api = server.client();

    slapd.pause();
    auto start = Clock::now();
    auto login = api->post("/v1/login", {{"user", "alice"}, {"password", "alice-pw"}});
    double login_seconds = seconds_since(start);
    REQUIRE_FALSE(login);
    CHECK(login.error().code == Errc::network);
    CHECK(login_seconds < 10);
    start = Clock::now();
    auto policy = agent->get_text("/v1/agent/policy");
    REQUIRE_FALSE(policy); // never a policy from groups nobody could check
    CHECK(policy.error().code == Errc::network);
    CHECK(seconds_since(start) < 10);
    slapd.resume();
    CHECK(api->post("/v1/login", {{"user", "alice"}, {"password", "alice-pw"}}));
    CHECK(agent->get_text("/v1/agent/policy"));

    slapd.stop();
    start = Clock::now();
    auto down = api->post("/v1/login", {{"user", "alice"}, {"password", "alice-pw"}});
    REQUIRE_FALSE(down);
    CHECK(down.error().code == Errc::network);
    CHECK(seconds_since(start) < 10);
    CHECK_FALSE(agent->get_text("/v1/agent/policy"));
    CHECK_FALSE(server.log_text().find("alice-pw") != std::string::npos);
    CHECK_FALSE(server.log_text().find(alice.token) != std::string::npos);
}

TEST_CASE("server: a push cut by killing the server resumes, and nothing half-written shows",
          "[server][integration]") {
    test::Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    test::HeirloomServer server(slapd);
    HL_SKIP_UNLESS_RUNNING(server);
    test::TempDir dir;
    test::admin_login(server, dir / "home");
    auto disk = test::make_disk(64ull << 20, 300, 303);
    fs::path vhd = dir / "payroll.vhd";
    test::write_vhd(vhd, disk.content, 3);

    std::atomic<bool> done{false};
    test::RunResult first;
    std::thread push([&] {
        first = test::run_admin(dir / "home",
                                {"image", "push", "payroll", vhd.string(), "--connections", "1"});
        done = true;
    });
    // The server dies once it has stored a few of the push's objects, with many more to come
    // over the one connection. A push that finished first (or never got going) fails the test:
    // the resume below is only shown by a push that was cut.
    fs::path chunks = server.data_dir() / "images/payroll/repo/chunks";
    auto deadline = Clock::now() + 60s;
    while (!done && count_files(chunks) < 3 && Clock::now() < deadline)
        std::this_thread::sleep_for(2ms);
    bool cut = !done && count_files(chunks) >= 3;
    ::kill(server.pid(), SIGKILL);
    push.join();
    INFO(first.out << first.err);
    REQUIRE(cut);
    REQUIRE(first.exit_code != 0);

    server.restart();
    HL_SKIP_UNLESS_RUNNING(server);
    CHECK(count_files(server.data_dir() / "images/payroll/incoming") == 0);
    auto second =
        test::run_admin(dir / "home", {"image", "push", "payroll", vhd.string(), "--json"});
    INFO(second.err);
    REQUIRE(second.exit_code == 0);
    auto result = parse_json(second.out);
    REQUIRE(result);
    // The cut push packed a version that was never published; the retry publishes the next
    // number, reusing every object the server had verified before the kill.
    auto version = (*result)["version"].get<std::uint64_t>();
    CHECK(version >= 1);
    CHECK((*result)["objects_uploaded"].get<std::uint64_t>() <
          (*result)["objects"].get<std::uint64_t>());
    auto admin = server.login("carol", "carol-pw");
    auto images = admin->get("/v1/admin/images");
    REQUIRE(images);
    REQUIRE((*images)["images"].size() == 1);
    CHECK((*images)["images"][0]["versions"].size() == 1);
    CHECK((*images)["images"][0]["latest"] == version);
}

TEST_CASE("server: slow clients do not stop others from being served", "[server][integration]") {
    test::Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    test::HeirloomServerOptions options;
    options.plain_http = true;
    options.header_timeout_seconds = 2;
    options.max_active_requests = 8; // far fewer threads than slow clients
    test::HeirloomServer server(slapd, options);
    HL_SKIP_UNLESS_RUNNING(server);

    // 200 slowloris connections: headers trickled a byte at a time, never finished; and some
    // that send a whole request first, then trickle the next one on the kept-alive connection.
    constexpr int slow = 200;
    std::vector<int> fds;
    for (int i = 0; i < slow; ++i) {
        fds.push_back(connect_to(server.port()));
        std::string start = "GET /v1/server HTTP/1.1\r\nHost: x\r\nX-Slow: ";
        if (i % 4 == 0)
            start = "GET /v1/server HTTP/1.1\r\nHost: x\r\n\r\n" + start;
        (void)::send(fds.back(), start.data(), start.size(), MSG_NOSIGNAL);
    }
    std::atomic<bool> stop{false};
    std::thread trickle([&] {
        while (!stop) {
            for (int fd : fds)
                (void)::send(fd, "a", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            std::this_thread::sleep_for(300ms);
        }
    });

    // Meanwhile, ordinary clients are served.
    auto api = server.client();
    for (int i = 0; i < 20; ++i) {
        auto start = Clock::now();
        auto info = api->get("/v1/server");
        REQUIRE(info);
        CHECK(seconds_since(start) < 5); // a hang detector, not a benchmark (bench/ has those)
        std::this_thread::sleep_for(100ms);
    }
    // And the server has cut the slow ones: each sees the connection closed.
    int closed = 0;
    auto deadline = Clock::now() + 15s;
    for (int fd : fds) {
        char buffer[512];
        for (;;) {
            pollfd p{fd, POLLIN, 0};
            int left = static_cast<int>(
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now())
                    .count());
            if (left <= 0 || ::poll(&p, 1, left) <= 0)
                break;
            ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
            if (n <= 0) {
                ++closed;
                break;
            }
        }
    }
    stop = true;
    trickle.join();
    for (int fd : fds)
        ::close(fd);
    CHECK(closed == slow);
}

TEST_CASE("server: connections beyond the limit are refused, and pipelined requests served",
          "[server][integration]") {
    test::Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    test::HeirloomServerOptions options;
    options.plain_http = true;
    options.max_connections = 20;
    test::HeirloomServer server(slapd, options);
    HL_SKIP_UNLESS_RUNNING(server);

    // Two requests in one write on one connection: two answers, in order.
    std::string two = "GET /v1/server HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /v1/nothing-here HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    int fd = connect_to(server.port());
    (void)::send(fd, two.data(), two.size(), MSG_NOSIGNAL);
    std::string answers;
    char buffer[4096];
    pollfd p{fd, POLLIN, 0};
    while (::poll(&p, 1, 5000) > 0) {
        ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0)
            break;
        answers.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    auto first = answers.find("HTTP/1.1 200");
    auto second = answers.find("HTTP/1.1 404");
    CHECK(first == 0);
    CHECK(second != std::string::npos);
    CHECK(second > first);

    // 20 idle connections fill the limit; the 21st is closed without an answer.
    // Once the server has accepted all 20 (none waits in its accept queue), the 21st is one
    // too many.
    std::vector<int> idle;
    for (int i = 0; i < 20; ++i)
        idle.push_back(connect_to(server.port()));
    auto accepted_by = Clock::now() + 10s;
    auto held = server_connections(server.port());
    while ((held.queued != 0 || held.established < 20) && Clock::now() < accepted_by) {
        std::this_thread::sleep_for(5ms);
        held = server_connections(server.port());
    }
    REQUIRE(held.queued == 0);
    REQUIRE(held.established == 20);
    int extra = connect_to(server.port());
    pollfd q{extra, POLLIN, 0};
    REQUIRE(::poll(&q, 1, 5000) == 1);
    CHECK(::recv(extra, buffer, sizeof buffer, 0) <= 0);
    ::close(extra);
    // Once they go, others are served again.
    for (int i : idle)
        ::close(i);
    auto api = server.client();
    bool served = false;
    for (int attempt = 0; attempt < 50 && !served; ++attempt) {
        served = api->get("/v1/server").has_value();
        if (!served)
            std::this_thread::sleep_for(100ms);
    }
    CHECK(served);
}

TEST_CASE("server: malformed, oversized and tampered requests get clear refusals",
          "[server][integration]") {
    test::Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    test::HeirloomServerOptions options;
    options.plain_http = true;
    test::HeirloomServer server(slapd, options);
    HL_SKIP_UNLESS_RUNNING(server);
    test::TempDir dir;
    test::admin_login(server, dir / "home");
    auto payroll = test::make_disk(8ull << 20, 20, 401);
    auto cad = test::make_disk(8ull << 20, 20, 402);
    REQUIRE(test::push_disk(server, dir / "home", "payroll", payroll, dir.path()) == 1);
    REQUIRE(test::push_disk(server, dir / "home", "cad", cad, dir.path()) == 1);
    auto admin = server.login("carol", "carol-pw");
    auto api = server.client();

    SECTION("bodies: too large, not JSON, unknown fields, wrong types") {
        std::string huge(2u << 20, 'x');
        std::string answer = raw_exchange(
            server.port(), "POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                               std::to_string(huge.size()) + "\r\n\r\n" + huge.substr(0, 1000));
        CHECK(answer.starts_with("HTTP/1.1 413"));
        for (const std::string& body : std::vector<std::string>{
                 "", "{", "[]", "null", "{\"user\":\"alice\"}", "{\"user\":1,\"password\":\"x\"}",
                 "{\"user\":\"alice\",\"password\":\"alice-pw\",\"admin\":true}",
                 "{\"user\":\"al\\u0000ice\",\"password\":\"x\"}",
                 std::string(200, '[') + std::string(200, ']')}) {
            std::string reply = raw_exchange(
                server.port(), "POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                                   std::to_string(body.size()) + "\r\n\r\n" + body);
            INFO(body.substr(0, 60) << " -> " << reply.substr(0, 200));
            CHECK(reply.starts_with("HTTP/1.1 400"));
            CHECK(reply.find("\"error\"") != std::string::npos);
        }
        CHECK(raw_exchange(server.port(), "NONSENSE\r\n\r\n").starts_with("HTTP/1.1 400"));
        std::string long_header =
            "GET /v1/server HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n";
        std::string reply = raw_exchange(server.port(), long_header);
        CHECK((reply.empty() || reply.starts_with("HTTP/1.1 4")));
        auto events = test::agent_client(server, test::enrol(server, "alice", "alice-pw"));
        for (const Json& bad : std::vector<Json>{
                 Json{{"events", {{{"type", "rm -rf"}, {"time", 1}}}}},
                 Json{{"events", {{{"type", "launch"}, {"time", -1}}}}},
                 Json{{"events", {{{"type", "launch"}, {"time", 1}, {"image", "../x"}}}}},
                 Json{{"events", Json::array({1, 2})}}}) {
            auto r = events->post("/v1/agent/events", bad);
            REQUIRE_FALSE(r);
            CHECK(r.error().code == Errc::invalid_argument);
        }
        Json many = {{"events", Json::array()}};
        for (int i = 0; i < 300; ++i)
            many["events"].push_back({{"type", "launch"}, {"time", 1}});
        CHECK_FALSE(events->post("/v1/agent/events", many));
    }

    SECTION("uploads: tampered, misnamed and foreign objects are refused and never visible") {
        fs::path repo = server.data_dir() / "images/payroll/repo";
        fs::path a_chunk;
        for (const auto& f : fs::recursive_directory_iterator(repo / "chunks"))
            if (f.is_regular_file())
                a_chunk = f.path();
        REQUIRE(!a_chunk.empty());
        auto bytes = read_file(a_chunk);
        REQUIRE(bytes);
        std::string fake_id(64, 'a');
        std::string fake_path = "chunks/aa/" + fake_id;
        // Right bytes, wrong name.
        auto misnamed = admin->put_bytes("/v1/admin/images/payroll/objects/" + fake_path, *bytes);
        REQUIRE_FALSE(misnamed);
        CHECK(misnamed.error().code == Errc::invalid_argument);
        // A flipped byte under the right name: removed first so the upload is not a duplicate.
        std::string name = fs::relative(a_chunk, repo).string();
        Bytes tampered = *bytes;
        tampered[tampered.size() - 5] ^= 1;
        fs::rename(a_chunk, dir / "saved");
        auto r = admin->put_bytes("/v1/admin/images/payroll/objects/" + name, tampered);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == Errc::invalid_argument);
        CHECK_FALSE(fs::exists(a_chunk));
        // Payroll's chunk under image cad: another family key, refused.
        auto foreign = admin->put_bytes("/v1/admin/images/cad/objects/" + name, *bytes);
        REQUIRE_FALSE(foreign);
        CHECK(count_files(server.data_dir() / "images/cad/incoming") == 0);
        // The genuine object is accepted again.
        auto good = admin->put_bytes("/v1/admin/images/payroll/objects/" + name, *bytes);
        REQUIRE(good);
        CHECK(fs::exists(a_chunk));
        for (const std::string& bad :
             std::vector<std::string>{"chunks/AA/" + std::string(64, 'A'), "chunks/ab/" + fake_id,
                                      "images/payroll/latest", "chunks/aa/../../family.key"})
            CHECK_FALSE(admin->put_bytes("/v1/admin/images/payroll/objects/" + bad, *bytes));
    }

    SECTION("manifests: garbage, an old version, another image's, missing objects") {
        fs::path repo = server.data_dir() / "images/payroll/repo";
        auto manifest = read_file(repo / trim::manifest_path("payroll", 1));
        REQUIRE(manifest);
        auto garbage =
            admin->put_bytes("/v1/admin/images/payroll/versions/2", test::pseudo_random(5000, 1));
        REQUIRE_FALSE(garbage);
        CHECK(garbage.error().code == Errc::invalid_argument);
        auto old = admin->put_bytes("/v1/admin/images/payroll/versions/1", *manifest);
        REQUIRE_FALSE(old);
        CHECK(old.error().code == Errc::conflict);
        auto mismatch = admin->put_bytes("/v1/admin/images/payroll/versions/2", *manifest);
        REQUIRE_FALSE(mismatch);
        CHECK(mismatch.error().code == Errc::invalid_argument);
        auto other = admin->put_bytes("/v1/admin/images/cad/versions/2", *manifest);
        REQUIRE_FALSE(other);
        CHECK(other.error().code == Errc::invalid_argument);
        auto latest = trim::repository_latest(repo, "payroll");
        REQUIRE(latest);
        CHECK(*latest == 1u);
        auto images = admin->get("/v1/admin/images");
        REQUIRE(images);
        for (const auto& image : (*images)["images"])
            CHECK(image["versions"].size() == 1);
    }
}
