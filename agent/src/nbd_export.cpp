#include "heirloom/agent/nbd_export.hpp"

#include "heirloom/agent/control.hpp"
#include "heirloom/common/file.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <fmt/format.h>
#include <list>
#include <mutex>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

namespace heirloom::agent {

namespace {

// The NBD protocol's numbers (https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md).
constexpr std::uint64_t nbd_magic = 0x4e42444d41474943;    // "NBDMAGIC"
constexpr std::uint64_t opt_magic = 0x49484156454F5054;    // "IHAVEOPT"
constexpr std::uint64_t opt_reply_magic = 0x3e889045565a9; // option replies
constexpr std::uint32_t request_magic = 0x25609513;
constexpr std::uint32_t simple_reply_magic = 0x67446698;

constexpr std::uint16_t flag_fixed_newstyle = 1;
constexpr std::uint16_t flag_no_zeroes = 2;

constexpr std::uint32_t opt_export_name = 1;
constexpr std::uint32_t opt_abort = 2;
constexpr std::uint32_t opt_list = 3;
constexpr std::uint32_t opt_info = 6;
constexpr std::uint32_t opt_go = 7;

constexpr std::uint32_t rep_ack = 1;
constexpr std::uint32_t rep_server = 2;
constexpr std::uint32_t rep_info = 3;
constexpr std::uint32_t rep_err_unsup = 0x80000001;
constexpr std::uint32_t rep_err_invalid = 0x80000003;
constexpr std::uint32_t rep_err_unknown = 0x80000006;

constexpr std::uint16_t info_export = 0;
constexpr std::uint16_t info_block_size = 3;

constexpr std::uint16_t tx_has_flags = 1;
constexpr std::uint16_t tx_read_only = 2;
constexpr std::uint16_t tx_send_flush = 4;
constexpr std::uint16_t tx_can_multi_conn = 256;

constexpr std::uint16_t cmd_read = 0;
constexpr std::uint16_t cmd_write = 1;
constexpr std::uint16_t cmd_disc = 2;
constexpr std::uint16_t cmd_flush = 3;
constexpr std::uint16_t cmd_cache = 5;

constexpr std::uint32_t err_perm = 1;
constexpr std::uint32_t err_io = 5;
constexpr std::uint32_t err_inval = 22;

// Big-endian encoding into a growing buffer.
struct Out {
    Bytes b;
    Out& u16(std::uint16_t v) { return put(v, 2); }
    Out& u32(std::uint32_t v) { return put(v, 4); }
    Out& u64(std::uint64_t v) { return put(v, 8); }
    Out& bytes(ByteView v) {
        b.insert(b.end(), v.begin(), v.end());
        return *this;
    }
    Out& put(std::uint64_t v, int n) {
        for (int i = n - 1; i >= 0; --i)
            b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
        return *this;
    }
};

std::uint64_t get_be(const std::uint8_t* p, int n) {
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i)
        v = v << 8 | p[i];
    return v;
}

// A connection's socket with a deadline for the handshake and none while serving (QEMU keeps
// an idle connection open as long as the guest runs).
class Conn {
  public:
    explicit Conn(int fd) : fd_(fd) {} // does not own fd
    void set_deadline(std::optional<std::chrono::steady_clock::time_point> d) { deadline_ = d; }

    Status read(MutableByteView out) {
        std::size_t got = 0;
        while (got < out.size()) {
            HL_TRY(wait(POLLIN));
            ssize_t n = ::recv(fd_, out.data() + got, out.size() - got, 0);
            if (n == 0)
                return fail(Errc::network, "the client closed the connection");
            if (n < 0) {
                if (errno == EINTR || errno == EAGAIN)
                    continue;
                return fail(Errc::network, std::string("receive: ") + std::strerror(errno));
            }
            got += static_cast<std::size_t>(n);
        }
        return {};
    }
    Status write(ByteView data) {
        std::size_t sent = 0;
        while (sent < data.size()) {
            HL_TRY(wait(POLLOUT));
            ssize_t n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR || errno == EAGAIN)
                    continue;
                return fail(Errc::network, std::string("send: ") + std::strerror(errno));
            }
            sent += static_cast<std::size_t>(n);
        }
        return {};
    }
    Status skip(std::uint64_t n) {
        std::array<std::uint8_t, 4096> sink;
        while (n > 0) {
            std::size_t k = std::min<std::uint64_t>(n, sink.size());
            HL_TRY(read(MutableByteView(sink.data(), k)));
            n -= k;
        }
        return {};
    }

  private:
    Status wait(short events) {
        for (;;) {
            int timeout = -1;
            if (deadline_) {
                auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    *deadline_ - std::chrono::steady_clock::now());
                if (left.count() <= 0)
                    return fail(Errc::network, "the client took too long to finish the handshake");
                timeout = static_cast<int>(left.count());
            }
            pollfd p{fd_, events, 0};
            int r = ::poll(&p, 1, timeout);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                return fail(Errc::network, std::string("poll: ") + std::strerror(errno));
            if (r > 0)
                return {};
        }
    }
    int fd_;
    std::optional<std::chrono::steady_clock::time_point> deadline_;
};

} // namespace

struct NbdExport::Impl {
    fs::path socket_path;
    std::shared_ptr<trim::ImageReader> reader;
    std::string export_name;
    ErrorHandler on_error;
    Fd listener;
    int wake[2] = {-1, -1};
    std::thread acceptor;

    std::mutex mutex;
    struct Client {
        int fd;
        std::thread thread;
        bool done = false;
    };
    std::list<Client> clients;
    bool stopping = false;

    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> bytes_read{0};
    std::atomic<std::uint64_t> errors{0};

    std::uint16_t transmission_flags() const {
        return tx_has_flags | tx_read_only | tx_send_flush | tx_can_multi_conn;
    }

    Status option_reply(Conn& c, std::uint32_t option, std::uint32_t type, ByteView data = {}) {
        Out o;
        o.u64(opt_reply_magic).u32(option).u32(type).u32(static_cast<std::uint32_t>(data.size()));
        o.bytes(data);
        return c.write(o.b);
    }

    Status error_reply(Conn& c, std::uint32_t option, std::uint32_t type, std::string_view why) {
        return option_reply(
            c, option, type,
            ByteView(reinterpret_cast<const std::uint8_t*>(why.data()), why.size()));
    }

    // Returns true when the client moved on to transmission, false when it ended the session.
    Result<bool> handshake(Conn& c) {
        Out hello;
        hello.u64(nbd_magic).u64(opt_magic).u16(flag_fixed_newstyle | flag_no_zeroes);
        HL_TRY(c.write(hello.b));
        std::array<std::uint8_t, 4> cf;
        HL_TRY(c.read(cf));
        auto client_flags = static_cast<std::uint32_t>(get_be(cf.data(), 4));
        if (!(client_flags & flag_fixed_newstyle))
            return fail(Errc::unsupported,
                        "the client does not speak the fixed newstyle handshake");
        if (client_flags & ~std::uint32_t{flag_fixed_newstyle | flag_no_zeroes})
            return fail(Errc::corrupt, fmt::format("unknown client flags {:#x}", client_flags));
        bool no_zeroes = client_flags & flag_no_zeroes;
        for (unsigned n = 0; n < nbd_max_options; ++n) {
            std::array<std::uint8_t, 16> h;
            HL_TRY(c.read(h));
            if (get_be(h.data(), 8) != opt_magic)
                return fail(Errc::corrupt, "an option without the IHAVEOPT magic");
            auto option = static_cast<std::uint32_t>(get_be(h.data() + 8, 4));
            auto length = static_cast<std::uint32_t>(get_be(h.data() + 12, 4));
            if (length > nbd_max_option_length)
                return fail(Errc::corrupt, fmt::format("option {} has {} bytes of data, more than "
                                                       "{}",
                                                       option, length, nbd_max_option_length));
            Bytes data(length);
            HL_TRY(c.read(data));
            switch (option) {
            case opt_export_name: {
                std::string name(data.begin(), data.end());
                if (name != export_name)
                    return fail(Errc::not_found, "the client asked for an unknown export");
                Out o;
                o.u64(reader->size()).u16(transmission_flags());
                if (!no_zeroes)
                    o.bytes(Bytes(124, 0));
                HL_TRY(c.write(o.b));
                return true;
            }
            case opt_abort:
                (void)option_reply(c, option, rep_ack);
                return false;
            case opt_list: {
                if (length != 0) {
                    HL_TRY(error_reply(c, option, rep_err_invalid, "LIST takes no data"));
                    break;
                }
                Out o;
                o.u32(static_cast<std::uint32_t>(export_name.size()))
                    .bytes(ByteView(reinterpret_cast<const std::uint8_t*>(export_name.data()),
                                    export_name.size()));
                HL_TRY(option_reply(c, option, rep_server, o.b));
                HL_TRY(option_reply(c, option, rep_ack));
                break;
            }
            case opt_info:
            case opt_go: {
                // u32 name length | name | u16 request count | count × u16
                if (length < 6) {
                    HL_TRY(error_reply(c, option, rep_err_invalid, "INFO/GO data too short"));
                    break;
                }
                auto name_len = get_be(data.data(), 4);
                if (name_len > length - 6 ||
                    get_be(data.data() + 4 + name_len, 2) * 2 != length - 6 - name_len) {
                    HL_TRY(error_reply(c, option, rep_err_invalid, "INFO/GO data malformed"));
                    break;
                }
                std::string name(data.begin() + 4, data.begin() + 4 + name_len);
                if (name != export_name) {
                    HL_TRY(error_reply(c, option, rep_err_unknown, "no such export"));
                    break;
                }
                Out ex;
                ex.u16(info_export).u64(reader->size()).u16(transmission_flags());
                HL_TRY(option_reply(c, option, rep_info, ex.b));
                Out bs;
                bs.u16(info_block_size).u32(1).u32(4096).u32(nbd_max_request);
                HL_TRY(option_reply(c, option, rep_info, bs.b));
                HL_TRY(option_reply(c, option, rep_ack));
                if (option == opt_go)
                    return true;
                break;
            }
            default:
                HL_TRY(error_reply(c, option, rep_err_unsup, "option not supported"));
            }
        }
        return fail(Errc::corrupt, fmt::format("more than {} options", nbd_max_options));
    }

    Status simple_reply(Conn& c, std::uint32_t error, std::uint64_t handle, ByteView data = {}) {
        std::array<std::uint8_t, 16> h;
        Out o;
        o.u32(simple_reply_magic).u32(error).u64(handle);
        std::memcpy(h.data(), o.b.data(), h.size());
        HL_TRY(c.write(h));
        return data.empty() ? Status{} : c.write(data);
    }

    // Reads are served by a few threads per connection (QEMU keeps several requests in
    // flight), their replies sent whole under a lock and in any order: each names its
    // request's handle. Everything else is answered in line.
    Status transmission(Conn& c) {
        std::mutex queue_mutex; // jobs, busy, closing
        std::condition_variable changed;
        struct Job {
            std::uint64_t handle, offset;
            std::uint32_t length;
        };
        std::deque<Job> jobs;
        unsigned busy = 0;
        bool closing = false;
        std::mutex write_mutex;
        Status write_failed;
        auto reply = [&](std::uint32_t error, std::uint64_t handle, ByteView data) {
            std::lock_guard lock(write_mutex);
            if (!write_failed)
                return write_failed;
            auto ok = simple_reply(c, error, handle, data);
            if (!ok)
                write_failed = ok;
            return ok;
        };
        auto work = [&] {
            struct Wiped {
                Bytes b;
                ~Wiped() { crypto::secure_wipe(b); }
            } plain;
            std::unique_lock lock(queue_mutex);
            for (;;) {
                changed.wait(lock, [&] { return closing || !jobs.empty(); });
                if (jobs.empty())
                    return; // closing, and nothing left to answer
                Job job = jobs.front();
                jobs.pop_front();
                ++busy;
                lock.unlock();
                plain.b.resize(job.length);
                auto ok = reader->read(job.offset, plain.b);
                if (!ok) {
                    ++errors;
                    if (on_error)
                        on_error(ok.error());
                    (void)reply(err_io, job.handle, {});
                } else {
                    bytes_read += job.length;
                    (void)reply(0, job.handle, plain.b);
                }
                lock.lock();
                --busy;
                changed.notify_all();
            }
        };
        unsigned threads = std::clamp(std::thread::hardware_concurrency(), 2u, 4u);
        std::vector<std::thread> workers;
        for (unsigned i = 0; i < threads; ++i)
            workers.emplace_back(work);
        auto finish = [&](Status result) {
            {
                std::lock_guard lock(queue_mutex);
                closing = true;
            }
            changed.notify_all();
            for (auto& t : workers)
                t.join();
            return result;
        };
        for (;;) {
            std::array<std::uint8_t, 28> h;
            if (auto ok = c.read(h); !ok)
                return finish(ok);
            if (get_be(h.data(), 4) != request_magic)
                return finish(fail(Errc::corrupt, "a request without the request magic"));
            auto type = static_cast<std::uint16_t>(get_be(h.data() + 6, 2));
            std::uint64_t handle = get_be(h.data() + 8, 8);
            std::uint64_t offset = get_be(h.data() + 16, 8);
            auto length = static_cast<std::uint32_t>(get_be(h.data() + 24, 4));
            ++requests;
            Status answered;
            switch (type) {
            case cmd_read: {
                std::uint64_t size = reader->size();
                if (length == 0 || length > nbd_max_request || offset > size ||
                    length > size - offset) {
                    ++errors;
                    answered = reply(err_inval, handle, {});
                    break;
                }
                std::unique_lock lock(queue_mutex);
                // At most two requests queued per thread: a client cannot make us buffer more.
                changed.wait(lock, [&] { return jobs.size() + busy < 3 * threads; });
                jobs.push_back({handle, offset, length});
                changed.notify_all();
                break;
            }
            case cmd_write:
                // Read-only: the payload still follows and must be consumed to stay in step.
                if (length > nbd_max_request)
                    return finish(fail(Errc::corrupt, "a write larger than any request we accept"));
                answered = c.skip(length);
                if (answered) {
                    ++errors;
                    answered = reply(err_perm, handle, {});
                }
                break;
            case cmd_disc:
                return finish({}); // the reads already received are still answered
            case cmd_flush:
            case cmd_cache:
                answered = reply(0, handle, {});
                break;
            default:
                ++errors;
                answered = reply(err_inval, handle, {});
            }
            if (!answered)
                return finish(answered);
        }
    }

    void serve(int fd) {
        Conn c(fd);
        c.set_deadline(std::chrono::steady_clock::now() +
                       std::chrono::milliseconds(nbd_handshake_timeout_ms));
        auto go = handshake(c);
        if (go && *go) {
            c.set_deadline(std::nullopt);
            (void)transmission(c);
        }
    }

    void accept_loop() {
        for (;;) {
            pollfd p[2] = {{listener.get(), POLLIN, 0}, {wake[0], POLLIN, 0}};
            if (::poll(p, 2, -1) < 0 && errno != EINTR)
                return;
            if (p[1].revents)
                return;
            if (!(p[0].revents & POLLIN))
                continue;
            int fd = ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0)
                continue;
            std::lock_guard lock(mutex);
            reap_locked();
            if (stopping) {
                ::close(fd);
                return;
            }
            auto& client = clients.emplace_back(Client{fd, {}, false});
            client.thread = std::thread([this, &client] {
                serve(client.fd);
                std::lock_guard l(mutex);
                ::close(client.fd);
                client.fd = -1;
                client.done = true;
            });
        }
    }

    void reap_locked() {
        for (auto it = clients.begin(); it != clients.end();) {
            if (it->done) {
                it->thread.join();
                it = clients.erase(it);
            } else {
                ++it;
            }
        }
    }
};

NbdExport::NbdExport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<NbdExport>> NbdExport::start(const fs::path& socket_path,
                                                    std::shared_ptr<trim::ImageReader> reader,
                                                    std::string export_name,
                                                    ErrorHandler on_error) {
    auto impl = std::make_unique<Impl>();
    impl->socket_path = socket_path;
    impl->reader = std::move(reader);
    impl->export_name = std::move(export_name);
    impl->on_error = std::move(on_error);
    std::string path = socket_path.string();
    sockaddr_un addr = HL_TRY(unix_address(socket_path));
    impl->listener = Fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!impl->listener)
        return fail(Errc::io, std::string("socket: ") + std::strerror(errno));
    std::error_code ec;
    fs::remove(socket_path, ec);
    mode_t old = ::umask(0177);
    int r = ::bind(impl->listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::umask(old);
    if (r < 0)
        return fail(Errc::io, fmt::format("bind {}: {}", path, std::strerror(errno)));
    if (::listen(impl->listener.get(), 16) < 0)
        return fail(Errc::io, fmt::format("listen {}: {}", path, std::strerror(errno)));
    if (::pipe2(impl->wake, O_CLOEXEC) < 0)
        return fail(Errc::io, std::string("pipe: ") + std::strerror(errno));
    Impl* raw = impl.get();
    impl->acceptor = std::thread([raw] { raw->accept_loop(); });
    return std::unique_ptr<NbdExport>(new NbdExport(std::move(impl)));
}

NbdExport::~NbdExport() {
    if (!impl_)
        return;
    {
        std::lock_guard lock(impl_->mutex);
        impl_->stopping = true;
    }
    char x = 1;
    (void)!::write(impl_->wake[1], &x, 1);
    impl_->acceptor.join();
    {
        std::lock_guard lock(impl_->mutex);
        for (auto& c : impl_->clients)
            if (c.fd >= 0)
                ::shutdown(c.fd, SHUT_RDWR);
    }
    for (auto& c : impl_->clients)
        c.thread.join();
    ::close(impl_->wake[0]);
    ::close(impl_->wake[1]);
    std::error_code ec;
    fs::remove(impl_->socket_path, ec);
}

const fs::path& NbdExport::socket_path() const {
    return impl_->socket_path;
}

NbdStats NbdExport::stats() const {
    return {impl_->requests.load(), impl_->bytes_read.load(), impl_->errors.load()};
}

} // namespace heirloom::agent
