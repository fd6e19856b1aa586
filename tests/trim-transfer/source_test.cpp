// Tests of the object sources: folders, real HTTP servers (nginx honours Range, Python's
// http.server ignores it), and a scripted hostile server for answers real servers never give.

#include "../../trim-transfer/src/source/multipart.hpp"
#include "heirloom/trim/source.hpp"
#include "support/http_servers.hpp"
#include "support/support.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <fcntl.h>
#include <functional>
#include <mutex>
#include <netinet/in.h>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

using namespace heirloom;
using namespace heirloom::trim;
using namespace std::chrono_literals;

namespace {

// A repository folder (repo/ inside a temporary folder, so servers rooted at the temporary
// folder exercise URL path prefixes) with objects of known content.
struct Repo {
    test::TempDir dir;
    Bytes chunk = test::pseudo_random(1 << 20, 1);
    Bytes manifest = test::pseudo_random(1000, 2);
    static constexpr std::string_view chunk_path = "chunks/ab/ab12cd34";
    static constexpr std::string_view manifest_path = "images/payroll/latest";

    Repo() {
        test::write_file(root() / chunk_path, chunk);
        test::write_file(root() / manifest_path, manifest);
    }
    fs::path root() const { return dir / "repo"; }
};

SourceOptions options_with(int timeout_seconds, int max_connections, std::string ca_file = {}) {
    SourceOptions options;
    options.ca_file = std::move(ca_file);
    options.timeout_seconds = timeout_seconds;
    options.max_connections = max_connections;
    return options;
}

Bytes slice(const Bytes& bytes, std::uint64_t offset, std::uint64_t length) {
    return Bytes(bytes.begin() + static_cast<std::ptrdiff_t>(offset),
                 bytes.begin() + static_cast<std::ptrdiff_t>(offset + length));
}

std::unique_ptr<ObjectSource> open_ok(const std::string& spec, const SourceOptions& options = {}) {
    auto source = open_source(spec, options);
    INFO("open_source(" << spec << "): " << (source ? "" : source.error().message));
    REQUIRE(source);
    return std::move(*source);
}

Bytes get_ok(ObjectSource& source, std::string_view path, std::uint64_t max_size = 64 << 20) {
    auto got = source.get(path, max_size);
    INFO("get " << path << ": " << (got ? "" : got.error().message));
    REQUIRE(got);
    return std::move(*got);
}

// Fetches ranges and checks every returned buffer against the object's real bytes.
void check_ranges(ObjectSource& source, std::string_view path, const Bytes& object,
                  const std::vector<ByteRange>& ranges) {
    auto got = source.get_ranges(path, ranges);
    INFO("get_ranges " << path << ": " << (got ? "" : got.error().message));
    REQUIRE(got);
    REQUIRE(got->size() == ranges.size());
    for (std::size_t i = 0; i < ranges.size(); ++i) {
        INFO("range " << i << ": " << ranges[i].offset << "+" << ranges[i].length);
        CHECK(((*got)[i] == slice(object, ranges[i].offset, ranges[i].length)));
    }
}

// Expects an error with the given code whose message mentions every one of the phrases.
template <class T>
void check_error(const Result<T>& result, Errc code,
                 std::initializer_list<std::string_view> phrases) {
    REQUIRE_FALSE(result);
    INFO("error: " << result.error().message);
    CHECK(result.error().code == code);
    for (auto phrase : phrases)
        CHECK(result.error().message.find(phrase) != std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// A scripted HTTP server on 127.0.0.1. It serves one connection at a time: reads a request,
// records it, and sends the script's reply byte for byte, so tests can produce answers no real
// server gives. The listening socket is bound before the constructor returns, so there is no
// port race.

struct Reply {
    std::string bytes; // sent as is
    bool hang = false; // after the bytes, keep the connection open until the client leaves
    // Bytes from this offset on are sent one at a time, trickle_delay apart.
    std::size_t trickle_from = std::string::npos;
    std::chrono::milliseconds trickle_delay{0};
};

class HostileServer {
  public:
    using Script = std::function<Reply(const std::string& request, std::size_t index)>;

    explicit HostileServer(Script script) : script_(std::move(script)) {
        listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
            ::listen(listen_fd_, 16) != 0 ||
            ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
            ::pipe2(stop_pipe_, O_CLOEXEC) != 0)
            throw std::runtime_error("cannot start the scripted HTTP server");
        port_ = ntohs(addr.sin_port);
        thread_ = std::thread([this] { serve(); });
    }

    ~HostileServer() {
        char byte = 0;
        (void)!::write(stop_pipe_[1], &byte, 1);
        thread_.join();
        ::close(listen_fd_);
        ::close(stop_pipe_[0]);
        ::close(stop_pipe_[1]);
    }

    HostileServer(const HostileServer&) = delete;
    HostileServer& operator=(const HostileServer&) = delete;

    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

    std::vector<std::string> requests() const {
        std::lock_guard lock(mutex_);
        return requests_;
    }

  private:
    // Waits until fd is readable; false when the server is stopping or after 10 s.
    bool wait_readable(int fd) const {
        pollfd fds[2] = {{fd, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
        if (::poll(fds, 2, 10000) <= 0)
            return false;
        return fds[1].revents == 0;
    }

    void serve() {
        for (;;) {
            if (!wait_readable(listen_fd_)) {
                pollfd stop{stop_pipe_[0], POLLIN, 0};
                if (::poll(&stop, 1, 0) > 0)
                    return;
                continue;
            }
            int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0)
                continue;
            handle(fd);
            ::shutdown(fd, SHUT_WR);
            ::close(fd);
        }
    }

    void handle(int fd) {
        std::string request;
        char buf[4096];
        while (request.find("\r\n\r\n") == std::string::npos) {
            if (!wait_readable(fd))
                return;
            ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n <= 0)
                return;
            request.append(buf, static_cast<std::size_t>(n));
        }
        std::size_t index = 0;
        {
            std::lock_guard lock(mutex_);
            requests_.push_back(request);
            index = requests_.size() - 1;
        }
        Reply reply = script_(request, index);
        std::size_t sent = 0;
        while (sent < reply.bytes.size()) {
            std::size_t size = reply.bytes.size() - sent;
            if (sent >= reply.trickle_from) {
                pollfd stop{stop_pipe_[0], POLLIN, 0};
                if (::poll(&stop, 1, static_cast<int>(reply.trickle_delay.count())) != 0)
                    return;
                size = 1;
            } else {
                size = std::min(size, reply.trickle_from - sent);
            }
            ssize_t n = ::send(fd, reply.bytes.data() + sent, size, MSG_NOSIGNAL);
            if (n <= 0)
                return;
            sent += static_cast<std::size_t>(n);
        }
        // Holds the connection without answering until the client gives up.
        while (reply.hang && wait_readable(fd) && ::recv(fd, buf, sizeof buf, 0) > 0) {
        }
    }

    Script script_;
    int listen_fd_ = -1;
    int stop_pipe_[2] = {-1, -1};
    int port_ = 0;
    std::thread thread_;
    mutable std::mutex mutex_;
    std::vector<std::string> requests_;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

// An HTTP/1.1 answer that closes the connection; Content-Length is added unless the headers
// already frame the body.
std::string response(const std::string& status, Headers headers, const std::string& body,
                     bool add_length = true) {
    std::string out = "HTTP/1.1 " + status + "\r\n";
    headers.emplace_back("Connection", "close");
    if (add_length)
        headers.emplace_back("Content-Length", std::to_string(body.size()));
    for (const auto& [name, value] : headers)
        out += name + ": " + value + "\r\n";
    return out + "\r\n" + body;
}

// The object the scripted server pretends to serve: 100 printable bytes.
const std::string hostile_object = [] {
    std::string s;
    for (int i = 0; i < 100; ++i)
        s += static_cast<char>('A' + i % 26);
    return s;
}();

struct PartSpec {
    std::uint64_t first;
    std::uint64_t last;
    bool with_range = true;
};

std::string part(const std::string& boundary, const PartSpec& p, const std::string& object) {
    std::string out = "\r\n--" + boundary + "\r\nContent-Type: application/octet-stream\r\n";
    if (p.with_range)
        out += "Content-Range: bytes " + std::to_string(p.first) + "-" + std::to_string(p.last) +
               "/" + std::to_string(object.size()) + "\r\n";
    return out + "\r\n" + object.substr(p.first, p.last - p.first + 1);
}

// A multipart/byteranges body shaped like nginx's.
std::string multipart_body(const std::string& boundary, const std::vector<PartSpec>& parts,
                           const std::string& object = hostile_object) {
    std::string out;
    for (const auto& p : parts)
        out += part(boundary, p, object);
    return out + "\r\n--" + boundary + "--\r\n";
}

std::string multipart_response(const std::string& body, const std::string& boundary = "SEP") {
    return response("206 Partial Content",
                    {{"Content-Type", "multipart/byteranges; boundary=" + boundary}}, body);
}

Bytes bytes_of(std::string_view s) {
    return Bytes(s.begin(), s.end());
}

// Two ranges of the scripted object; the answers below are built for exactly these.
const std::vector<ByteRange> two_ranges = {{0, 10}, {20, 10}};

} // namespace

// ---------------------------------------------------------------------------------------------

TEST_CASE("valid_object_path accepts repository paths and refuses unsafe ones", "[source]") {
    for (std::string_view ok :
         {"images/payroll/latest", "chunks/ab/ab12cd", "a", "x.y-z_1/.hidden", "a..b/c"})
        CHECK(valid_object_path(ok));
    for (std::string_view bad : std::vector<std::string_view>{
             "", "/etc/passwd", "../secret", "a/../b", "a/..", "..", ".", "a/./b", "a//b", "a/",
             "a b", "a\\b", "a%2fb", "chunks/ab?x", "ä", std::string_view("a\0b", 3)})
        CHECK_FALSE(valid_object_path(bad));
    CHECK_FALSE(valid_object_path(std::string(2000, 'a')));
}

TEST_CASE("open_source refuses what it cannot open, with clear messages", "[source]") {
    test::TempDir dir;
    test::write_file(dir / "file", bytes_of("x"));

    check_error(open_source(""), Errc::invalid_argument, {"no image source"});
    check_error(open_source((dir / "missing").string()), Errc::not_found,
                {"does not exist", "missing"});
    check_error(open_source((dir / "file").string()), Errc::invalid_argument, {"is not a folder"});
    check_error(open_source("ftp://example.org/repo"), Errc::unsupported, {"http://"});
    for (std::string bad :
         {"http://", "http://:80/", "http://host:0/", "http://host:99999/", "http://host:x/",
          "http://user:pw@host/", "http://host/a b", "https://host/repo?x=1", "http://[::1/"})
        check_error(open_source(bad), Errc::invalid_argument, {"invalid URL"});
    check_error(open_source("https://host/repo", options_with(30, 8, (dir / "nope.pem").string())),
                Errc::not_found, {"CA file"});
    check_error(open_source(dir.path().string(), options_with(0, 8)), Errc::invalid_argument,
                {"timeout"});
    check_error(open_source(dir.path().string(), options_with(30, 0)), Errc::invalid_argument,
                {"connection"});

    auto folder = open_ok(dir.path().string());
    CHECK(folder->describe() == "folder " + dir.path().string());
    auto http = open_ok("HTTP://Example.org:8080/repo/");
    CHECK(http->describe() == "http://Example.org:8080/repo");
    CHECK(open_ok("https://example.org")->describe() == "https://example.org");
    CHECK(open_ok("http://[::1]:81/a/b")->describe() == "http://[::1]:81/a/b");
}

TEST_CASE("folder source reads whole objects and ranges", "[source]") {
    Repo repo;
    auto source = open_ok(repo.root().string());

    CHECK((get_ok(*source, Repo::chunk_path) == repo.chunk));
    CHECK((get_ok(*source, Repo::manifest_path) == repo.manifest));
    CHECK((get_ok(*source, Repo::manifest_path, repo.manifest.size()) == repo.manifest));

    std::vector<ByteRange> ranges = {{500000, 4096}, {0, 1},    {0, 0},
                                     {10, 100},      {50, 100}, {repo.chunk.size() - 7, 7}};
    check_ranges(*source, Repo::chunk_path, repo.chunk, ranges);

    TransferStats stats = source->stats();
    CHECK(stats.requests == 4);
    CHECK(stats.bytes == repo.chunk.size() + 2 * repo.manifest.size() + 4096 + 1 + 200 + 7);

    SECTION("missing objects are not_found") {
        check_error(source->get("chunks/00/0000", 1 << 20), Errc::not_found, {"chunks/00/0000"});
        check_error(source->get_ranges("chunks/00/0000", ranges), Errc::not_found, {"0000"});
        // A path running through a file is just as missing.
        check_error(source->get("images/payroll/latest/x", 1 << 20), Errc::not_found, {});
    }
    SECTION("objects larger than max_size are corrupt") {
        check_error(source->get(Repo::manifest_path, repo.manifest.size() - 1), Errc::corrupt,
                    {"1000 bytes", "limit of 999"});
    }
    SECTION("ranges past the end are corrupt") {
        std::vector<ByteRange> past = {{0, 10}, {repo.manifest.size() - 5, 6}};
        check_error(source->get_ranges(Repo::manifest_path, past), Errc::corrupt,
                    {"1000 bytes", "995+6"});
        std::vector<ByteRange> huge = {{~std::uint64_t{0} - 2, 5}};
        check_error(source->get_ranges(Repo::manifest_path, huge), Errc::corrupt, {});
    }
    SECTION("unsafe paths are refused before touching the disk") {
        test::write_file(repo.dir / "secret", bytes_of("secret"));
        for (std::string_view bad : {"../secret", "/etc/passwd", "a//b", ""}) {
            check_error(source->get(bad, 1 << 20), Errc::invalid_argument, {"invalid object path"});
            check_error(source->get_ranges(bad, ranges), Errc::invalid_argument, {});
        }
    }
    SECTION("folders and FIFOs are not objects, and a FIFO does not block") {
        check_error(source->get("chunks/ab", 1 << 20), Errc::io, {"not a regular file"});
        REQUIRE(::mkfifo((repo.root() / "chunks/ab/fifo").c_str(), 0600) == 0);
        check_error(source->get("chunks/ab/fifo", 1 << 20), Errc::io, {"not a regular file"});
    }
}

TEST_CASE("multipart parser splits byteranges bodies and refuses malformed ones", "[source]") {
    namespace mp = heirloom::trim::multipart;

    SECTION("Content-Range") {
        auto r = mp::parse_content_range(" bytes 10-19/100 ");
        REQUIRE(r);
        CHECK(r->first == 10);
        CHECK(r->last == 19);
        CHECK(r->total == 100u);
        CHECK(r->length() == 10);
        auto unknown = mp::parse_content_range("bytes 0-0/*");
        REQUIRE(unknown);
        CHECK_FALSE(unknown->total);
        for (std::string_view bad :
             {"", "bytes", "bytes */100", "bytes 10-9/100", "bytes 0-100/100", "items 0-9/100",
              "bytes 0-9", "bytes -1-9/100", "bytes 0-9/x", "bytes 0-99999999999999999999999/1",
              "bytes0-9/100", "bytes 0-18446744073709551615/*"})
            CHECK_FALSE(mp::parse_content_range(bad));
    }
    SECTION("boundary from Content-Type") {
        auto b = mp::byteranges_boundary("multipart/byteranges; boundary=00000000001");
        REQUIRE(b);
        CHECK(*b == std::optional<std::string>("00000000001"));
        auto quoted =
            mp::byteranges_boundary("Multipart/ByteRanges;charset=\"x;y\"; Boundary=\"a b=c\"");
        REQUIRE(quoted);
        CHECK(*quoted == std::optional<std::string>("a b=c"));
        auto other = mp::byteranges_boundary("application/octet-stream");
        REQUIRE(other);
        CHECK_FALSE(other->has_value());
        for (std::string_view bad :
             {"multipart/byteranges", "multipart/byteranges; boundary=",
              "multipart/byteranges; boundary=\"x", "multipart/byteranges; boundary=a; boundary=b",
              "multipart/byteranges; boundary=a\x01", "multipart/byteranges; =x"})
            CHECK_FALSE(mp::byteranges_boundary(bad));
    }
    SECTION("well-formed bodies") {
        std::string body = multipart_body("SEP", {{0, 9}, {20, 29}});
        auto parts = mp::parse_byteranges(body, "SEP");
        INFO((parts ? "" : parts.error().message));
        REQUIRE(parts);
        REQUIRE(parts->size() == 2);
        CHECK(body.substr((*parts)[0].data_offset, (*parts)[0].data_length) ==
              hostile_object.substr(0, 10));
        CHECK(body.substr((*parts)[1].data_offset, (*parts)[1].data_length) ==
              hostile_object.substr(20, 10));
        CHECK((*parts)[1].range.first == 20);

        // A preamble, transport padding after the delimiter, and data that contains the
        // delimiter itself: part lengths come from Content-Range, not from searching.
        std::string tricky =
            "preamble\r\n--SEP  \r\nContent-Range: bytes 0-9/10\r\n\r\n\r\n--SEP\r\na"
            "\r\n--SEP--";
        auto t = mp::parse_byteranges(tricky, "SEP");
        INFO((t ? "" : t.error().message));
        REQUIRE(t);
        REQUIRE(t->size() == 1);
        CHECK(tricky.substr((*t)[0].data_offset, 10) == "\r\n--SEP\r\na");
    }
    SECTION("malformed bodies") {
        std::string good = multipart_body("SEP", {{0, 9}, {20, 29}});
        std::vector<std::pair<std::string, std::string>> cases = {
            {"", "never appears"},
            {"--SEP--\r\n", "no parts"},
            {good.substr(0, good.size() - 9), "not followed by the boundary"},
            {good.substr(0, good.size() - 20), "truncated"},
            {good.substr(0, 40), "truncated"},
            {good + "junk", "after the closing boundary"},
            {multipart_body("SEP", {{0, 9, false}}), "no Content-Range"},
            {"--SEP\r\nContent-Range: bytes 0-9/100\r\nContent-Range: bytes "
             "0-9/100\r\n\r\n0123456789\r\n--SEP--",
             "more than one Content-Range"},
            {"--SEP\r\nContent-Range bytes 0-9/100\r\n\r\n0123456789\r\n--SEP--",
             "malformed header"},
            {"--SEP\r\nX: y\r\n folded\r\n", "folded"},
            {"--SEP\r\nContent-Range: bytes 0-9/100\r\n\r\n0123456789AB\r\n--SEP--",
             "not followed"},
            {"--SEPX\r\nContent-Range: bytes 0-9/100\r\n\r\n0123456789\r\n--SEP--",
             "extra characters"},
            {"--SEP\r\nContent-Range: bytes 5-2/100\r\n\r\n\r\n--SEP--", "malformed Content-Range"},
            {"--SEP", "truncated"},
        };
        for (const auto& [body, phrase] : cases) {
            auto parts = mp::parse_byteranges(body, "SEP");
            INFO("body: " << body);
            check_error(parts, Errc::corrupt, {phrase});
        }
    }
}

TEST_CASE("http source reads objects and ranges from nginx", "[source]") {
    Repo repo;
    test::NginxServer nginx(repo.dir.path());
    HL_SKIP_UNLESS_RUNNING(nginx);
    const std::string url = nginx.url() + "/repo";
    auto source = open_ok(url + "/");
    CHECK(source->describe() == url);

    CHECK((get_ok(*source, Repo::chunk_path) == repo.chunk));
    CHECK((get_ok(*source, Repo::manifest_path) == repo.manifest));
    TransferStats stats = source->stats();
    CHECK(stats.requests == 2);
    CHECK(stats.bytes == repo.chunk.size() + repo.manifest.size());

    SECTION("a missing object is not_found") {
        check_error(source->get("chunks/00/0000", 1 << 20), Errc::not_found,
                    {"404", "not on the server", url + "/chunks/00/0000"});
        check_error(source->get_ranges("chunks/00/0000", two_ranges), Errc::not_found, {"404"});
    }
    SECTION("an object larger than max_size is refused") {
        check_error(source->get(Repo::chunk_path, 1000), Errc::corrupt,
                    {"1048576 bytes", "limit of 1000"});
    }
    SECTION("one range is a 206 with Content-Range") {
        check_ranges(*source, Repo::chunk_path, repo.chunk, {{100, 5000}});
        CHECK(source->stats().requests == 3);
        CHECK(source->stats().bytes == stats.bytes + 5000);
        // nginx logs a request just after answering it, so the line may take a moment.
        std::string log;
        for (int i = 0; i < 100 && log.find("\" 206 5000 ") == std::string::npos; ++i) {
            std::this_thread::sleep_for(20ms);
            log = nginx.access_log();
        }
        INFO("access log: " << log);
        CHECK(log.find("\"GET /repo/chunks/ab/ab12cd34 HTTP/1.1\" 206 5000 ") != std::string::npos);
    }
    SECTION("several ranges come back as multipart/byteranges, in the caller's order") {
        check_ranges(*source, Repo::chunk_path, repo.chunk,
                     {{900000, 4096}, {0, 10}, {5000, 100}, {repo.chunk.size() - 1, 1}});
        CHECK(source->stats().requests == 3);
    }
    SECTION("overlapping and adjacent ranges are merged into one request") {
        check_ranges(*source, Repo::chunk_path, repo.chunk,
                     {{0, 100}, {50, 100}, {150, 50}, {1000, 10}, {1000, 10}, {1005, 2}, {0, 0}});
        CHECK(source->stats().requests == 3);
        // 200 + 10 bytes of data and the framing of two parts, nothing more.
        CHECK(source->stats().bytes - stats.bytes < 210 + 400);
    }
    SECTION("more than 64 ranges are split over several requests") {
        std::vector<ByteRange> many;
        for (std::uint64_t i = 0; i < 200; ++i)
            many.push_back({(199 - i) * 5000 + i, 100 + i});
        check_ranges(*source, Repo::chunk_path, repo.chunk, many);
        CHECK(source->stats().requests == 2 + 4);
    }
    SECTION("ranges past the end are corrupt") {
        const std::uint64_t size = repo.chunk.size();
        check_error(source->get_ranges(Repo::chunk_path, std::vector<ByteRange>{{size - 10, 20}}),
                    Errc::corrupt, {"past the end", "1048576 bytes"});
        check_error(
            source->get_ranges(Repo::chunk_path, std::vector<ByteRange>{{0, 10}, {size + 100, 10}}),
            Errc::corrupt, {"past the end"});
        check_error(source->get_ranges(Repo::chunk_path,
                                       std::vector<ByteRange>{{0, 10}, {1000, 10}, {size - 5, 10}}),
                    Errc::corrupt, {"past the end"});
        check_error(source->get_ranges(Repo::chunk_path, std::vector<ByteRange>{{size + 100, 10}}),
                    Errc::corrupt, {"416"});
    }
}

TEST_CASE("http source is safe to use from 8 threads at once", "[source]") {
    Repo repo;
    test::NginxServer nginx(repo.dir.path());
    HL_SKIP_UNLESS_RUNNING(nginx);
    // Fewer connections than threads, so threads also wait for each other's connections.
    auto source = open_ok(nginx.url() + "/repo", options_with(30, 4));

    constexpr int threads = 8;
    constexpr int rounds = 20;
    std::atomic<int> mismatches{0};
    std::mutex mutex;
    std::vector<std::string> errors;
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            Bytes pattern = test::pseudo_random(64, static_cast<std::uint64_t>(t));
            for (int round = 0; round < rounds; ++round) {
                std::vector<ByteRange> ranges;
                for (int i = 0; i < 1 + (round + t) % 70; ++i)
                    ranges.push_back(
                        {(pattern[i % 64] * 4000ull + i * 997ull) % (repo.chunk.size() - 600),
                         1 + pattern[(i + 1) % 64] * 2ull});
                auto got = source->get_ranges(Repo::chunk_path, ranges);
                auto whole =
                    source->get(round % 2 ? Repo::chunk_path : Repo::manifest_path, 2 << 20);
                std::lock_guard lock(mutex);
                if (!got || !whole) {
                    errors.push_back(!got ? got.error().message : whole.error().message);
                    continue;
                }
                for (std::size_t i = 0; i < ranges.size(); ++i)
                    if ((*got)[i] != slice(repo.chunk, ranges[i].offset, ranges[i].length))
                        ++mismatches;
                if (*whole != (round % 2 ? repo.chunk : repo.manifest))
                    ++mismatches;
            }
        });
    }
    for (auto& w : workers)
        w.join();
    INFO("first error: " << (errors.empty() ? "" : errors.front()));
    CHECK(errors.empty());
    CHECK(mismatches == 0);
    // Every get is one request; range lists of up to 70 ranges are one or two.
    CHECK(source->stats().requests >= 2u * threads * rounds);
}

TEST_CASE("http source slices ranges out of a whole body when the server ignores Range",
          "[source]") {
    Repo repo;
    test::PythonHttpServer python(repo.dir.path());
    HL_SKIP_UNLESS_RUNNING(python);
    auto source = open_ok(python.url() + "/repo");

    CHECK((get_ok(*source, Repo::manifest_path) == repo.manifest));
    check_ranges(*source, Repo::chunk_path, repo.chunk,
                 {{5000, 100}, {0, 10}, {repo.chunk.size() - 5, 5}, {7, 20}});
    CHECK(source->stats().requests == 2);

    SECTION("one whole body serves every batch of a long range list") {
        std::vector<ByteRange> many;
        for (std::uint64_t i = 0; i < 150; ++i)
            many.push_back({i * 3000, 50});
        check_ranges(*source, Repo::chunk_path, repo.chunk, many);
        CHECK(source->stats().requests == 3);
        // The transfer stops once the last range has arrived.
        CHECK(source->stats().bytes - repo.manifest.size() - repo.chunk.size() <
              149 * 3000 + 50 + 65536);
    }
    SECTION("ranges past the end of the body are corrupt") {
        check_error(
            source->get_ranges(Repo::manifest_path, std::vector<ByteRange>{{0, 10}, {995, 10}}),
            Errc::corrupt, {"past the end", "1000 bytes"});
    }
    SECTION("a missing object is not_found") {
        check_error(source->get("chunks/00/0000", 1 << 20), Errc::not_found, {"404"});
        check_error(source->get_ranges("chunks/00/0000", two_ranges), Errc::not_found, {"404"});
    }
}

TEST_CASE("http source gives a network error soon after the server dies", "[source]") {
    Repo repo;
    test::NginxServer nginx(repo.dir.path());
    HL_SKIP_UNLESS_RUNNING(nginx);
    auto source = open_ok(nginx.url() + "/repo", options_with(2, 8));
    CHECK((get_ok(*source, Repo::manifest_path) == repo.manifest));

    nginx.stop();
    auto start = std::chrono::steady_clock::now();
    auto got = source->get(Repo::manifest_path, 1 << 20);
    auto elapsed = std::chrono::steady_clock::now() - start;
    check_error(got, Errc::network, {"cannot connect", "127.0.0.1", "server is running"});
    CHECK(elapsed < 3s);
    check_error(source->get_ranges(Repo::chunk_path, two_ranges), Errc::network,
                {"cannot connect"});
}

TEST_CASE("https source verifies the server certificate", "[source]") {
    Repo repo;
    test::TlsFiles tls;
    std::string problem;
    if (!test::make_test_certificate(repo.dir.path(), tls, problem))
        HL_SKIP(problem);
    test::NginxServer nginx(repo.dir.path(), &tls);
    HL_SKIP_UNLESS_RUNNING(nginx);

    auto trusted = open_ok(nginx.url() + "/repo", options_with(30, 8, tls.certificate.string()));
    CHECK((get_ok(*trusted, Repo::manifest_path) == repo.manifest));
    check_ranges(*trusted, Repo::chunk_path, repo.chunk, {{10, 10}, {100000, 5000}});

    auto untrusted = open_ok(nginx.url() + "/repo");
    check_error(untrusted->get(Repo::manifest_path, 1 << 20), Errc::network, {"certificate", "CA"});
}

TEST_CASE("http source survives hostile and broken servers", "[source]") {
    const SourceOptions quick = options_with(1, 8);
    const std::string path = "chunks/ab/cd";

    // Runs one get_ranges of two_ranges against a server that always gives this answer.
    auto ranges_against = [&](std::string answer) {
        HostileServer server([answer](const std::string&, std::size_t) { return Reply{answer}; });
        auto source = open_ok(server.url() + "/repo");
        auto got = source->get_ranges(path, two_ranges);
        auto requests = server.requests();
        REQUIRE_FALSE(requests.empty());
        CHECK(requests[0].rfind("GET /repo/chunks/ab/cd HTTP/1.1\r\n", 0) == 0);
        CHECK(requests[0].find("Range: bytes=0-9,20-29\r\n") != std::string::npos);
        // Compressed answers could not be sliced by offset, so none are accepted.
        CHECK(requests[0].find("Accept-Encoding: identity\r\n") != std::string::npos);
        CHECK(requests[0].find("gzip") == std::string::npos);
        // Broken answers are not retried: only transport failures and 5xx are.
        if (!got && got.error().code == Errc::corrupt)
            CHECK(requests.size() == 1);
        return got;
    };

    SECTION("well-formed but unusual multipart answers are accepted") {
        // A preamble, a quoted boundary, and object data containing the delimiter.
        std::string object = "\r\n--odd boundary\r\n" + hostile_object.substr(18);
        std::string body =
            "This is the preamble." + multipart_body("odd boundary", {{0, 9}, {20, 29}}, object);
        auto got = ranges_against(
            response("206 Partial Content",
                     {{"Content-Type", "multipart/byteranges; boundary=\"odd boundary\""}}, body));
        INFO((got ? "" : got.error().message));
        REQUIRE(got);
        CHECK((*got)[0] == bytes_of(object.substr(0, 10)));
        CHECK((*got)[1] == bytes_of(object.substr(20, 10)));
    }
    SECTION("parts may come in any order") {
        auto got = ranges_against(multipart_response(multipart_body("SEP", {{20, 29}, {0, 9}})));
        REQUIRE(got);
        CHECK((*got)[0] == bytes_of(hostile_object.substr(0, 10)));
        CHECK((*got)[1] == bytes_of(hostile_object.substr(20, 10)));
    }
    SECTION("a single 206 covering all ranges is sliced") {
        auto got =
            ranges_against(response("206 Partial Content", {{"Content-Range", "bytes 0-29/100"}},
                                    hostile_object.substr(0, 30)));
        REQUIRE(got);
        CHECK((*got)[0] == bytes_of(hostile_object.substr(0, 10)));
        CHECK((*got)[1] == bytes_of(hostile_object.substr(20, 10)));
    }
    SECTION("malformed multipart answers are corrupt") {
        check_error(
            ranges_against(multipart_response(multipart_body("SEP", {{0, 9}, {20, 29, false}}))),
            Errc::corrupt, {"part 2", "no Content-Range"});
        std::string body = multipart_body("SEP", {{0, 9}, {20, 29}});
        check_error(ranges_against(multipart_response(body.substr(0, body.size() - 15))),
                    Errc::corrupt, {"part 2", "truncated"});
        check_error(ranges_against(multipart_response(body.substr(0, body.size() - 9))),
                    Errc::corrupt, {"not followed by the boundary"});
        check_error(ranges_against(multipart_response(body, "OTHER")), Errc::corrupt,
                    {"never appears"});
        check_error(ranges_against(response("206 Partial Content",
                                            {{"Content-Type", "multipart/byteranges"}}, body)),
                    Errc::corrupt, {"without a boundary"});
        check_error(ranges_against(multipart_response(
                        body + "--SEP\r\nContent-Range: bytes 40-49/100\r\n\r\n")),
                    Errc::corrupt, {"after the closing boundary"});
        // A truncated body whose Content-Length matches what was sent.
        check_error(ranges_against(multipart_response(body.substr(0, 120))), Errc::corrupt,
                    {"truncated"});
    }
    SECTION("missing, extra and wrong parts are corrupt") {
        check_error(ranges_against(multipart_response(multipart_body("SEP", {{0, 9}}))),
                    Errc::corrupt, {"left out bytes 20-29"});
        check_error(
            ranges_against(multipart_response(multipart_body("SEP", {{0, 9}, {12, 15}, {20, 29}}))),
            Errc::corrupt, {"bytes 12-15", "not asked for"});
        check_error(
            ranges_against(multipart_response(multipart_body("SEP", {{0, 9}, {20, 29}, {40, 49}}))),
            Errc::corrupt, {"bytes 40-49"});
        check_error(ranges_against(multipart_response(multipart_body("SEP", {{0, 9}, {5, 29}}))),
                    Errc::corrupt, {"overlapping"});
        check_error(
            ranges_against(multipart_response(multipart_body("SEP", {{0, 9}, {0, 9}, {20, 29}}))),
            Errc::corrupt, {"overlapping"});
        check_error(ranges_against(multipart_response(multipart_body("SEP", {{0, 9}, {21, 29}}))),
                    Errc::corrupt, {"bytes 21-29"});
    }
    SECTION("a multipart answer far larger than the ranges is refused") {
        std::string body = std::string(100000, 'x') + multipart_body("SEP", {{0, 9}, {20, 29}});
        check_error(ranges_against(multipart_response(body)), Errc::corrupt, {"more than the"});
        // Without Content-Length the limit applies while receiving.
        check_error(ranges_against(response(
                        "206 Partial Content",
                        {{"Content-Type", "multipart/byteranges; boundary=SEP"}}, body, false)),
                    Errc::corrupt, {"larger than"});
    }
    SECTION("a single 206 with the wrong or no Content-Range is corrupt") {
        std::vector<ByteRange> one = {{0, 10}};
        auto single = [&](std::string answer) {
            HostileServer server(
                [answer](const std::string&, std::size_t) { return Reply{answer}; });
            return open_ok(server.url())->get_ranges(path, one);
        };
        check_error(single(response("206 Partial Content", {{"Content-Range", "bytes 10-19/100"}},
                                    hostile_object.substr(10, 10))),
                    Errc::corrupt, {"bytes 10-19", "bytes 0-9"});
        check_error(single(response("206 Partial Content", {}, hostile_object.substr(0, 10))),
                    Errc::corrupt, {"without a Content-Range"});
        check_error(single(response("206 Partial Content", {{"Content-Range", "bytes 0-9/100"}},
                                    hostile_object.substr(0, 5))),
                    Errc::corrupt, {"Content-Length 5"});
        check_error(single(response("206 Partial Content", {{"Content-Range", "bytes 0-9/100"}},
                                    hostile_object.substr(0, 5), false)),
                    Errc::corrupt, {"ended after 5 of the 10"});
        check_error(single(response("206 Partial Content", {{"Content-Range", "bytes 0-9/100"}},
                                    hostile_object.substr(0, 20), false)),
                    Errc::corrupt, {"more data"});
        check_error(single(response("206 Partial Content", {{"Content-Range", "bytes */100"}}, "")),
                    Errc::corrupt, {"not satisfiable"});
        auto good = single(response("206 Partial Content", {{"Content-Range", "bytes 0-9/100"}},
                                    hostile_object.substr(0, 10)));
        REQUIRE(good);
        CHECK((*good)[0] == bytes_of(hostile_object.substr(0, 10)));
    }
    SECTION("a 200 answer too short for the ranges is corrupt") {
        check_error(ranges_against(response("200 OK", {}, hostile_object.substr(0, 25))),
                    Errc::corrupt, {"bytes 20-29", "past the end", "(25 bytes)"});
        check_error(ranges_against(response("200 OK", {}, hostile_object.substr(0, 25), false)),
                    Errc::corrupt, {"bytes 20-29", "past the end"});
    }
    SECTION("bodies larger than max_size are refused, however they are framed") {
        std::string big(5000, 'b');
        auto get_against = [&](std::string answer) {
            HostileServer server(
                [answer](const std::string&, std::size_t) { return Reply{answer}; });
            auto got = open_ok(server.url())->get(path, 1000);
            CHECK(server.requests().size() == 1);
            return got;
        };
        check_error(get_against(response("200 OK", {}, big)), Errc::corrupt,
                    {"5000 bytes", "limit of 1000"});
        check_error(get_against(response("200 OK", {}, big, false)), Errc::corrupt,
                    {"limit of 1000"});
        std::string chunked;
        for (int i = 0; i < 50; ++i)
            chunked += "64\r\n" + big.substr(0, 100) + "\r\n";
        chunked += "0\r\n\r\n";
        check_error(
            get_against(response("200 OK", {{"Transfer-Encoding", "chunked"}}, chunked, false)),
            Errc::corrupt, {"limit of 1000"});
        // Exactly max_size is fine.
        auto exact = get_against(response("200 OK", {}, big.substr(0, 1000)));
        REQUIRE(exact);
        CHECK(exact->size() == 1000);
    }
    SECTION("a truncated body is a network error, retried") {
        HostileServer server([](const std::string&, std::size_t) {
            return Reply{"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" +
                         hostile_object.substr(0, 10)};
        });
        auto source = open_ok(server.url());
        check_error(source->get(path, 1 << 20), Errc::network,
                    {"no complete answer", "tried 3 times"});
        CHECK(server.requests().size() == 3);
    }
    SECTION("a server that never answers times out") {
        HostileServer server([](const std::string&, std::size_t) { return Reply{"", true}; });
        auto source = open_ok(server.url(), quick);
        auto start = std::chrono::steady_clock::now();
        check_error(source->get(path, 1 << 20), Errc::network, {"no complete answer", "1 s"});
        check_error(source->get_ranges(path, two_ranges), Errc::network, {"no complete answer"});
        CHECK(std::chrono::steady_clock::now() - start < 5s);
    }
    SECTION("a server that stalls in the middle of the body times out") {
        HostileServer server([](const std::string&, std::size_t) {
            return Reply{"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" +
                             hostile_object.substr(0, 50),
                         true};
        });
        auto source = open_ok(server.url(), quick);
        auto start = std::chrono::steady_clock::now();
        check_error(source->get(path, 1 << 20), Errc::network, {"no complete answer"});
        CHECK(std::chrono::steady_clock::now() - start < 3s);
    }
    SECTION("a server that trickles the body is given up on") {
        const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
        HostileServer server([&](const std::string&, std::size_t) {
            return Reply{head + hostile_object, false, head.size(), 300ms};
        });
        auto source = open_ok(server.url(), quick);
        auto start = std::chrono::steady_clock::now();
        check_error(source->get(path, 1 << 20), Errc::network, {"too slowly", "in 1 s"});
        CHECK(std::chrono::steady_clock::now() - start < 3s);
        CHECK(server.requests().size() == 1);
    }
    SECTION("5xx answers are retried, then reported") {
        HostileServer server([](const std::string&, std::size_t) {
            return Reply{response("503 Service Unavailable", {}, "busy")};
        });
        auto source = open_ok(server.url() + "/repo");
        check_error(source->get(path, 1 << 20), Errc::network,
                    {"GET " + server.url() + "/repo/chunks/ab/cd", "503 Service Unavailable",
                     "try again later", "tried 3 times"});
        CHECK(server.requests().size() == 3);
    }
    SECTION("a transient 5xx followed by success succeeds") {
        HostileServer server([](const std::string&, std::size_t index) {
            if (index == 0)
                return Reply{response("502 Bad Gateway", {}, "")};
            return Reply{response("200 OK", {}, hostile_object)};
        });
        auto source = open_ok(server.url());
        CHECK((get_ok(*source, path) == bytes_of(hostile_object)));
        CHECK(source->stats().requests == 2);
    }
    SECTION("other answers are clear errors") {
        auto get_against = [&](std::string answer) {
            HostileServer server(
                [answer](const std::string&, std::size_t) { return Reply{answer}; });
            return open_ok(server.url(), quick)->get(path, 1 << 20);
        };
        check_error(get_against(response("302 Found", {{"Location", "https://elsewhere/x"}}, "")),
                    Errc::network, {"302", "https://elsewhere/x"});
        check_error(get_against(response("403 Forbidden", {}, "no")), Errc::network,
                    {"403", "access"});
        check_error(get_against(response("200 OK", {{"Content-Encoding", "gzip"}}, "\x1f\x8b")),
                    Errc::network, {"compressed", "gzip"});
        check_error(
            get_against(response("206 Partial Content", {{"Content-Range", "bytes 0-1/2"}}, "ab")),
            Errc::network, {"206"});
        check_error(get_against(response("204 No Content", {}, "", false)), Errc::network, {"204"});
        check_error(get_against("SSH-2.0-OpenSSH_9.2\r\n"), Errc::network, {});
        check_error(get_against(std::string(20000, '\0')), Errc::network, {});
        // A huge error page is dropped, not buffered.
        check_error(get_against(response("404 Not Found", {}, std::string(1 << 20, 'x'))),
                    Errc::not_found, {"404"});
    }
}
