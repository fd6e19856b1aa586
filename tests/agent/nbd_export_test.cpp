// The decrypting export a workspace VM boots from: random-access reads of a stored version
// (verified on read), and the NBD server in front of them, driven by real qemu-img and by a
// hostile client speaking raw NBD.

#include "heirloom/agent/nbd_export.hpp"
#include "heirloom/trim/repository.hpp"
#include "heirloom/trim/store.hpp"
#include "heirloom/trim/sync.hpp"
#include "support/images.hpp"
#include "support/support.hpp"

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <random>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

using namespace heirloom;
using namespace heirloom::trim;

namespace {

constexpr std::uint64_t disk_size = 24ull << 20;

struct StoredImage {
    test::TempDir dir;
    KeySet keys = test::make_keys(dir / "keys");
    test::SyntheticDisk disk = test::make_disk(disk_size, 40, 7);
    fs::path store = dir / "store";
    Manifest manifest;

    StoredImage() {
        test::write_vhd(dir / "in.vhd", disk.content, 3);
        REQUIRE(pack_image(dir / "in.vhd", dir / "repo", keys,
                           PackOptions{"payroll", {}, 0, 2, nullptr}));
        SyncOptions o;
        o.from = (dir / "repo").string();
        o.image = "payroll";
        o.store = store;
        REQUIRE(sync_image(o, keys));
        auto s = Store::open(store);
        REQUIRE(s);
        auto m = s->load_manifest("payroll", 1, keys.signing_public);
        REQUIRE(m);
        manifest = *m;
    }
    std::shared_ptr<ImageReader> reader() {
        auto r = ImageReader::open(store, manifest, keys.family);
        REQUIRE(r);
        return std::make_shared<ImageReader>(std::move(*r));
    }
    // A chunk file of the image that holds data at virtual offset `at`.
    fs::path chunk_holding(std::uint64_t at) {
        for (const auto& e : manifest.chunks)
            if (e.index == at / chunk_bytes)
                return store / chunk_path(e.id);
        FAIL("no chunk at that offset");
        return {};
    }
    // The offset of the first file written on the disk (non-zero data).
    std::uint64_t data_offset() const { return disk.files.front().offset; }
};

Bytes slice(const Bytes& b, std::uint64_t off, std::size_t n) {
    return Bytes(b.begin() + static_cast<long>(off), b.begin() + static_cast<long>(off + n));
}

// A raw NBD client for hostile-input tests.
class RawClient {
  public:
    explicit RawClient(const fs::path& socket) {
        fd_ = Fd(::socket(AF_UNIX, SOCK_STREAM, 0));
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strcpy(a.sun_path, socket.c_str());
        REQUIRE(::connect(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        timeval tv{5, 0};
        ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    // A send may fail once the server has closed: the checks that follow notice.
    void send(ByteView b) { (void)::send(fd_.get(), b.data(), b.size(), MSG_NOSIGNAL); }
    void send_u(std::uint64_t v, int n) {
        Bytes b;
        for (int i = n - 1; i >= 0; --i)
            b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
        send(b);
    }
    // Reads exactly n bytes; empty when the server closed the connection first.
    Bytes recv(std::size_t n) {
        Bytes b(n);
        std::size_t got = 0;
        while (got < n) {
            ssize_t r = ::recv(fd_.get(), b.data() + got, n - got, 0);
            if (r <= 0)
                return {};
            got += static_cast<std::size_t>(r);
        }
        return b;
    }
    bool closed_by_server() {
        std::uint8_t x;
        ssize_t r = ::recv(fd_.get(), &x, 1, 0);
        return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK); // EOF or reset
    }
    static std::uint64_t be(ByteView b, std::size_t at, int n) {
        std::uint64_t v = 0;
        for (int i = 0; i < n; ++i)
            v = v << 8 | b[at + static_cast<std::size_t>(i)];
        return v;
    }
    // Greeting + client flags.
    void start(std::uint32_t flags = 3) {
        Bytes hello = recv(18);
        REQUIRE(hello.size() == 18);
        CHECK(be(hello, 0, 8) == 0x4e42444d41474943);
        send_u(flags, 4);
    }
    void option(std::uint32_t opt, ByteView data) {
        send_u(0x49484156454F5054, 8);
        send_u(opt, 4);
        send_u(data.size(), 4);
        send(data);
    }
    // Reads one option reply: (type, data).
    std::pair<std::uint32_t, Bytes> option_reply() {
        Bytes h = recv(20);
        REQUIRE(h.size() == 20);
        CHECK(be(h, 0, 8) == 0x3e889045565a9);
        auto len = be(h, 16, 4);
        return {static_cast<std::uint32_t>(be(h, 12, 4)), recv(len)};
    }
    // NBD_OPT_GO for the default export, up to the final ACK.
    void go() {
        option(7, Bytes{0, 0, 0, 0, 0, 0});
        for (;;) {
            auto [type, data] = option_reply();
            if (type == 1)
                return;
            REQUIRE(type == 3);
        }
    }
    void request(std::uint16_t type, std::uint64_t handle, std::uint64_t offset,
                 std::uint32_t length) {
        send_u(0x25609513, 4);
        send_u(0, 2);
        send_u(type, 2);
        send_u(handle, 8);
        send_u(offset, 8);
        send_u(length, 4);
    }
    // A simple reply's error (and its handle checked).
    std::uint32_t reply(std::uint64_t handle) {
        Bytes h = recv(16);
        REQUIRE(h.size() == 16);
        CHECK(be(h, 0, 4) == 0x67446698);
        CHECK(be(h, 8, 8) == handle);
        return static_cast<std::uint32_t>(be(h, 4, 4));
    }

  private:
    Fd fd_;
};

} // namespace

TEST_CASE("image reader returns the disk's bytes at any offset and length", "[vm]") {
    StoredImage img;
    auto reader = img.reader();
    CHECK(reader->size() == disk_size);
    std::mt19937_64 rng(11);
    for (int i = 0; i < 300; ++i) {
        std::uint64_t len = 1 + rng() % (600 * 1024);
        std::uint64_t off = rng() % (disk_size - len);
        if (i % 3 == 0)
            off &= ~std::uint64_t{4095}; // aligned reads take the direct path
        Bytes out(len);
        REQUIRE(reader->read(off, out));
        REQUIRE(out == slice(img.disk.content, off, len));
    }
    Bytes last(1);
    REQUIRE(reader->read(disk_size - 1, last));
    CHECK(last[0] == img.disk.content.back());
    Bytes whole(disk_size);
    REQUIRE(reader->read(0, whole));
    CHECK(whole == img.disk.content);
}

TEST_CASE("image reader refuses reads past the end", "[vm]") {
    StoredImage img;
    auto reader = img.reader();
    Bytes out(2);
    auto r = reader->read(disk_size - 1, out);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("past the end"));
    CHECK_FALSE(reader->read(disk_size + 4096, MutableByteView(out.data(), 1)));
    CHECK(reader->read(disk_size, MutableByteView(out.data(), 0)));
}

TEST_CASE("image reader refuses tampered and missing chunks, and reads the rest", "[vm]") {
    StoredImage img;
    std::uint64_t at = img.data_offset();
    fs::path victim = img.chunk_holding(at);
    Bytes object = *read_file(victim);
    object[object.size() - 10] ^= 0x40; // inside the last record
    test::write_file(victim, object);
    auto reader = img.reader();
    Bytes chunk(chunk_bytes);
    std::uint64_t chunk_start = at / chunk_bytes * chunk_bytes;
    auto r = reader->read(chunk_start, chunk);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains(victim.filename().string()));

    // Other chunks still read correctly.
    const ManifestEntry* other = nullptr;
    for (const auto& e : img.manifest.chunks)
        if (e.index != at / chunk_bytes)
            other = &e;
    REQUIRE(other);
    std::uint64_t other_start = std::uint64_t{other->index} * chunk_bytes;
    REQUIRE(reader->read(other_start, chunk));
    CHECK(chunk == slice(img.disk.content, other_start, chunk_bytes));

    // A chunk file that vanished is an error naming it, not zeros. (The reader keeps chunks
    // open, so a fresh reader sees the removal.)
    fs::remove(img.store / chunk_path(other->id));
    auto gone = img.reader()->read(other_start, chunk);
    REQUIRE_FALSE(gone);
    CHECK_THAT(gone.error().message, Catch::Contains(to_hex(other->id)));
}

TEST_CASE("qemu-img reads the image through the NBD export exactly", "[vm]") {
    REQUIRE(test::have_program("qemu-img"));
    StoredImage img;
    fs::path sock = img.dir / "payroll.nbd";
    auto exp = agent::NbdExport::start(sock, img.reader(), "payroll");
    REQUIRE(exp);
    CHECK((fs::status(sock).permissions() & fs::perms::all) ==
          (fs::perms::owner_read | fs::perms::owner_write));
    std::string uri = "nbd+unix:///payroll?socket=" + sock.string();
    auto info = test::run({"qemu-img", "info", "--output=json", uri});
    REQUIRE(info.exit_code == 0);
    CHECK_THAT(info.out, Catch::Contains(std::to_string(disk_size)));
    auto conv = test::run(
        {"qemu-img", "convert", "-f", "raw", "-O", "raw", uri, (img.dir / "out.raw").string()});
    REQUIRE(conv.exit_code == 0);
    CHECK(*read_file(img.dir / "out.raw", disk_size) == img.disk.content);
    CHECK((*exp)->stats().bytes_read >= img.disk.files.size());

    // Another export name is refused, and the export stays up.
    auto wrong = test::run({"qemu-img", "info", "nbd+unix:///other?socket=" + sock.string()});
    CHECK(wrong.exit_code != 0);
    CHECK(test::run({"qemu-img", "info", uri}).exit_code == 0);
}

TEST_CASE("NBD export answers hostile clients with errors or a closed connection", "[vm]") {
    StoredImage img;
    fs::path sock = img.dir / "x.nbd";
    std::vector<Error> errors;
    std::mutex m;
    auto exp = agent::NbdExport::start(sock, img.reader(), "", [&](const Error& e) {
        std::lock_guard l(m);
        errors.push_back(e);
    });
    REQUIRE(exp);

    SECTION("a client without fixed newstyle is dropped") {
        RawClient c(sock);
        c.start(0);
        CHECK(c.closed_by_server());
    }
    SECTION("unknown client flags are refused") {
        RawClient c(sock);
        c.start(0x80000001);
        CHECK(c.closed_by_server());
    }
    SECTION("an option with the wrong magic ends the session") {
        RawClient c(sock);
        c.start();
        c.send_u(0x1122334455667788, 8);
        c.send_u(7, 4);
        c.send_u(0, 4);
        CHECK(c.closed_by_server());
    }
    SECTION("an option with too much data ends the session") {
        RawClient c(sock);
        c.start();
        c.send_u(0x49484156454F5054, 8);
        c.send_u(7, 4);
        c.send_u(0xffffffff, 4);
        CHECK(c.closed_by_server());
    }
    SECTION("unknown and malformed options are answered, then GO still works") {
        RawClient c(sock);
        c.start();
        c.option(42, Bytes{1, 2, 3});
        CHECK(c.option_reply().first == 0x80000001);
        c.option(7, Bytes{0, 0, 0, 9, 0, 0}); // name longer than the data
        CHECK(c.option_reply().first == 0x80000003);
        c.option(7, Bytes{0, 0, 0, 1, 'x', 0, 0}); // no such export
        CHECK(c.option_reply().first == 0x80000006);
        c.option(5, {}); // STARTTLS: not offered
        CHECK(c.option_reply().first == 0x80000001);
        c.go();
        c.request(0, 7, 0, 4096);
        REQUIRE(c.reply(7) == 0);
        CHECK(c.recv(4096) == slice(img.disk.content, 0, 4096));
    }
    SECTION("too many options end the session") {
        RawClient c(sock);
        c.start();
        for (unsigned i = 0; i < agent::nbd_max_options; ++i) {
            c.option(42, {});
            CHECK(c.option_reply().first == 0x80000001);
        }
        c.option(42, {});
        CHECK(c.closed_by_server());
    }
    SECTION("reads out of range, writes and unknown commands get errors") {
        RawClient c(sock);
        c.start();
        c.go();
        c.request(0, 1, disk_size - 512, 4096);
        CHECK(c.reply(1) == 22);
        c.request(0, 2, 0, 0);
        CHECK(c.reply(2) == 22);
        c.request(0, 3, 0, agent::nbd_max_request + 1);
        CHECK(c.reply(3) == 22);
        c.request(0, 4, ~std::uint64_t{0} - 10, 4096);
        CHECK(c.reply(4) == 22);
        c.request(1, 5, 0, 512);
        c.send(Bytes(512, 0xAA));
        CHECK(c.reply(5) == 1);
        c.request(99, 6, 0, 0);
        CHECK(c.reply(6) == 22);
        c.request(3, 7, 0, 0); // flush
        CHECK(c.reply(7) == 0);
        c.request(0, 8, 4096, 4096); // still in step after all that
        REQUIRE(c.reply(8) == 0);
        CHECK(c.recv(4096) == slice(img.disk.content, 4096, 4096));
        CHECK((*exp)->stats().errors == 6);
        c.request(2, 9, 0, 0); // disconnect
        CHECK(c.closed_by_server());
    }
    SECTION("a request with a bad magic ends the session") {
        RawClient c(sock);
        c.start();
        c.go();
        c.send(Bytes(28, 0x55));
        CHECK(c.closed_by_server());
    }
    SECTION("a tampered block is an I/O error in the guest and reported") {
        std::uint64_t at = img.data_offset();
        fs::path victim = img.chunk_holding(at);
        Bytes object = *read_file(victim);
        object[object.size() - 10] ^= 1;
        test::write_file(victim, object);
        RawClient c(sock);
        c.start();
        c.go();
        std::uint64_t chunk_start = at / chunk_bytes * chunk_bytes;
        c.request(0, 1, chunk_start, chunk_bytes);
        CHECK(c.reply(1) == 5);
        std::lock_guard l(m);
        REQUIRE(errors.size() == 1);
        CHECK_THAT(errors[0].message, Catch::Contains(victim.filename().string()));
    }
    SECTION("the export stops with clients still connected") {
        RawClient c(sock);
        c.start();
        c.go();
        exp->reset();
        CHECK(c.closed_by_server());
        CHECK_FALSE(fs::exists(sock));
    }
}
