#include "heirloom/agent/vm.hpp"

#include "heirloom/agent/control.hpp"
#include "heirloom/common/crypto.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <fmt/format.h>
#include <mutex>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace heirloom::agent {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// ---- child processes --------------------------------------------------------------------

Result<pid_t> spawn_process(const SpawnOptions& o) {
    if (o.argv.empty())
        return fail(Errc::invalid_argument, "nothing to run");
    std::vector<char*> argv;
    for (const auto& a : o.argv)
        argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (const auto& e : o.env)
        envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    std::string out = o.stdout_file.empty() ? "/dev/null" : o.stdout_file.string();
    Fd out_fd(::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!out_fd)
        return fail(Errc::io, fmt::format("open {}: {}", out, std::strerror(errno)));
    Fd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    // Whether exec failed, reported through a close-on-exec pipe.
    int status_pipe[2];
    if (::pipe2(status_pipe, O_CLOEXEC) < 0)
        return fail(Errc::io, std::string("pipe: ") + std::strerror(errno));
    pid_t pid = ::fork();
    if (pid < 0) {
        ::close(status_pipe[0]);
        ::close(status_pipe[1]);
        return fail(Errc::io, std::string("fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
        // Only async-signal-safe calls from here to exec.
        ::setpgid(0, 0);
        ::dup2(null_fd.get(), 0);
        ::dup2(out_fd.get(), 1);
        ::dup2(out_fd.get(), 2);
        for (auto [from, to] : o.fds) {
            if (from == to)
                ::fcntl(to, F_SETFD, 0);
            else
                ::dup2(from, to);
        }
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        ::execvpe(argv[0], argv.data(), envp.data());
        int e = errno;
        (void)!::write(status_pipe[1], &e, sizeof e);
        ::_exit(127);
    }
    ::close(status_pipe[1]);
    int e = 0;
    ssize_t n;
    do
        n = ::read(status_pipe[0], &e, sizeof e);
    while (n < 0 && errno == EINTR);
    ::close(status_pipe[0]);
    if (n == sizeof e) {
        ::waitpid(pid, nullptr, 0);
        return fail(Errc::not_found, fmt::format("cannot run {}: {}", o.argv[0], std::strerror(e)));
    }
    return pid;
}

std::optional<int> wait_process(pid_t pid, std::chrono::milliseconds timeout) {
    auto end = Clock::now() + timeout;
    for (;;) {
        int status = 0;
        pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (r < 0)
            return -1; // not our child any more (already reaped)
        if (Clock::now() >= end)
            return std::nullopt;
        std::this_thread::sleep_for(20ms);
    }
}

void stop_process(pid_t pid, std::chrono::milliseconds grace) {
    if (pid <= 0)
        return;
    ::kill(pid, SIGTERM);
    if (!wait_process(pid, grace)) {
        ::kill(pid, SIGKILL);
        wait_process(pid, 5s);
    }
}

std::vector<std::string> child_environment() {
    std::vector<std::string> env;
    for (const char* name : {"PATH", "HOME", "LANG", "DISPLAY", "XAUTHORITY", "XDG_RUNTIME_DIR",
                             "WAYLAND_DISPLAY", "TMPDIR"})
        if (const char* v = std::getenv(name))
            env.push_back(fmt::format("{}={}", name, v));
    return env;
}

// ---- QMP ------------------------------------------------------------------------------------

struct Qmp::Impl {
    Fd fd;
    std::string buffer;
    std::deque<Json> events;
    std::uint64_t next_id = 1;

    // One JSON line, or an error at the deadline or when QEMU closed the socket.
    Result<Json> read_message(Clock::time_point deadline) {
        for (;;) {
            auto nl = buffer.find('\n');
            if (nl != std::string::npos) {
                std::string line = buffer.substr(0, nl);
                buffer.erase(0, nl + 1);
                if (line.find_first_not_of(" \r\t") == std::string::npos)
                    continue;
                return parse_json(line, 64u << 20);
            }
            if (buffer.size() > (64u << 20))
                return fail(Errc::corrupt, "QMP: a message larger than 64 MiB");
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            if (left.count() <= 0)
                return fail(Errc::network, "QMP: QEMU did not answer in time");
            pollfd p{fd.get(), POLLIN, 0};
            int r = ::poll(&p, 1, static_cast<int>(left.count()));
            if (r < 0 && errno != EINTR)
                return fail(Errc::io, std::string("QMP poll: ") + std::strerror(errno));
            if (r <= 0)
                continue;
            char chunk[8192];
            ssize_t n = ::recv(fd.get(), chunk, sizeof chunk, 0);
            if (n == 0)
                return fail(Errc::network, "QMP: QEMU closed the connection (it exited)");
            if (n < 0) {
                if (errno == EINTR || errno == EAGAIN)
                    continue;
                return fail(Errc::network, std::string("QMP receive: ") + std::strerror(errno));
            }
            buffer.append(chunk, static_cast<std::size_t>(n));
        }
    }

    Status send(const Json& j) {
        std::string text = j.dump() + "\n";
        std::size_t sent = 0;
        while (sent < text.size()) {
            ssize_t n = ::send(fd.get(), text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                return fail(Errc::network, std::string("QMP send: ") + std::strerror(errno));
            }
            sent += static_cast<std::size_t>(n);
        }
        return {};
    }
};

Qmp::Qmp(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Qmp::Qmp(Qmp&&) noexcept = default;
Qmp& Qmp::operator=(Qmp&&) noexcept = default;
Qmp::~Qmp() = default;

Result<Qmp> Qmp::connect(const fs::path& socket, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    std::string path = socket.string();
    sockaddr_un addr = HL_TRY_CTX(unix_address(socket), "QMP");
    auto impl = std::make_unique<Impl>();
    for (;;) {
        impl->fd = Fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (::connect(impl->fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0)
            break;
        if (Clock::now() >= deadline)
            return fail(Errc::network,
                        fmt::format("QMP: cannot connect to {}: {}", path, std::strerror(errno)));
        std::this_thread::sleep_for(20ms);
    }
    auto greeting = HL_TRY(impl->read_message(deadline));
    if (!greeting.contains("QMP"))
        return fail(Errc::corrupt, "QMP: no greeting from QEMU");
    Qmp qmp(std::move(impl));
    HL_TRY(qmp.execute(
        "qmp_capabilities", Json::object(),
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now())));
    return qmp;
}

Result<Json> Qmp::execute(const std::string& command, const Json& arguments,
                          std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    std::uint64_t id = impl_->next_id++;
    Json request = {{"execute", command}, {"id", id}};
    if (!arguments.empty())
        request["arguments"] = arguments;
    HL_TRY(impl_->send(request));
    for (;;) {
        Json m = HL_TRY(impl_->read_message(deadline));
        if (m.contains("event")) {
            impl_->events.push_back(std::move(m));
            if (impl_->events.size() > 256)
                impl_->events.pop_front();
            continue;
        }
        if (!m.contains("id") || m["id"] != id)
            continue;
        if (m.contains("error")) {
            std::string desc = m["error"].value("desc", std::string("unknown error"));
            return fail(Errc::unsupported, fmt::format("QEMU refused {}: {}", command, desc));
        }
        return m.value("return", Json::object());
    }
}

Status Qmp::send_fd(const std::string& name, int fd) {
    std::uint64_t id = impl_->next_id++;
    std::string text =
        Json{{"execute", "getfd"}, {"arguments", {{"fdname", name}}}, {"id", id}}.dump() + "\n";
    iovec iov{text.data(), text.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    ssize_t n;
    do
        n = ::sendmsg(impl_->fd.get(), &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(text.size()))
        return fail(Errc::network, std::string("QMP getfd: ") + std::strerror(errno));
    auto deadline = Clock::now() + 10s;
    for (;;) {
        Json m = HL_TRY(impl_->read_message(deadline));
        if (m.contains("event")) {
            impl_->events.push_back(std::move(m));
            continue;
        }
        if (!m.contains("id") || m["id"] != id)
            continue;
        if (m.contains("error"))
            return fail(Errc::unsupported,
                        "QEMU refused getfd: " + m["error"].value("desc", std::string("?")));
        return {};
    }
}

Result<Json> Qmp::wait_event(const std::string& name, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        while (!impl_->events.empty()) {
            Json e = std::move(impl_->events.front());
            impl_->events.pop_front();
            if (e.value("event", std::string()) == name)
                return e;
        }
        Json m = HL_TRY(impl_->read_message(deadline));
        if (m.contains("event"))
            impl_->events.push_back(std::move(m));
    }
}

// ---- acceleration ---------------------------------------------------------------------------

std::string_view accel_name(Accel a) {
    return a == Accel::kvm ? "kvm" : "tcg";
}

namespace {

Accel probe_accel_uncached() {
    if (const char* forced = std::getenv("HEIRLOOM_ACCEL")) {
        if (std::string_view(forced) == "kvm")
            return Accel::kvm;
        if (std::string_view(forced) == "tcg")
            return Accel::tcg;
    }
    if (::access("/dev/kvm", R_OK | W_OK) != 0)
        return Accel::tcg;
    // A QEMU on KVM running firmware with no disk: alive after a moment means KVM works.
    SpawnOptions o;
    o.argv = {"qemu-system-x86_64",
              "-accel",
              "kvm",
              "-machine",
              "q35",
              "-cpu",
              "host",
              "-m",
              "64",
              "-nodefaults",
              "-display",
              "none",
              "-no-user-config"};
    o.env = child_environment();
    auto pid = spawn_process(o);
    if (!pid)
        return Accel::tcg;
    if (wait_process(*pid, 1500ms))
        return Accel::tcg; // exited (or aborted) at once: KVM does not work here
    stop_process(*pid, 2s);
    return Accel::kvm;
}

} // namespace

Accel probe_accel() {
    static std::once_flag once;
    static Accel result = Accel::tcg;
    std::call_once(once, [] { result = probe_accel_uncached(); });
    return result;
}

// ---- overlay --------------------------------------------------------------------------------

namespace {

// A pipe holding secret, whose read end a child opens as /dev/fd/N.
struct SecretPipe {
    int read_end = -1;
    SecretPipe(const SecretPipe&) = delete;
    SecretPipe& operator=(const SecretPipe&) = delete;
    static Result<std::unique_ptr<SecretPipe>> make(std::string_view secret) {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) < 0)
            return fail(Errc::io, std::string("pipe: ") + std::strerror(errno));
        ssize_t n = ::write(p[1], secret.data(), secret.size()); // far below the pipe's capacity
        ::close(p[1]);
        if (n != static_cast<ssize_t>(secret.size())) {
            ::close(p[0]);
            return fail(Errc::io, "cannot hand a key to QEMU through a pipe");
        }
        auto s = std::unique_ptr<SecretPipe>(new SecretPipe());
        s->read_end = p[0];
        return s;
    }
    ~SecretPipe() {
        if (read_end >= 0)
            ::close(read_end);
    }

  private:
    SecretPipe() = default;
};

constexpr int secret_fd = 3; // where children find the key

} // namespace

std::string new_overlay_key() {
    crypto::Key k;
    crypto::random_bytes(k);
    std::string hex = to_hex(k);
    crypto::secure_wipe(k);
    return hex;
}

Status create_overlay(const fs::path& overlay, std::uint64_t size, const std::string& key) {
    fs::path tmp = overlay;
    tmp += ".partial";
    fs::path log_file = overlay.parent_path() / "qemu-img.log";
    // qemu-img times PBKDF2 with the thread's CPU clock to pick an iteration count and gives
    // up ("Unable to get accurate CPU usage") when a fast CPU runs its first round in under a
    // clock tick; that is chance, so it is tried again.
    for (int attempt = 1;; ++attempt) {
        std::error_code ec;
        fs::remove(tmp, ec);
        fs::remove(log_file, ec);
        auto secret = HL_TRY(SecretPipe::make(key));
        SpawnOptions o;
        // iter-time: the key is 256 random bits, so stretching it buys nothing and costs
        // seconds at every start.
        o.argv = {"qemu-img",
                  "create",
                  "-q",
                  "-f",
                  "qcow2",
                  "--object",
                  fmt::format("secret,id=overlay-key,file=/dev/fd/{}", secret_fd),
                  "-o",
                  "encrypt.format=luks,encrypt.key-secret=overlay-key,encrypt.iter-time=10",
                  tmp.string(),
                  std::to_string(size)};
        o.env = child_environment();
        o.fds = {{secret->read_end, secret_fd}};
        o.stdout_file = log_file;
        pid_t pid = HL_TRY(spawn_process(o));
        auto code = wait_process(pid, 60s);
        if (!code) {
            stop_process(pid, 1s);
            return fail(Errc::io, "qemu-img create did not finish in 60 s");
        }
        if (*code == 0)
            break;
        auto log = read_text_file(log_file, 64 << 10);
        std::string text = log ? *log : "(no output)";
        if (attempt < 5 && text.find("accurate CPU usage") != std::string::npos)
            continue;
        return fail(Errc::io, fmt::format("qemu-img could not create the overlay {}: {}",
                                          overlay.string(), text));
    }
    ::chmod(tmp.c_str(), 0600);
    std::error_code ec;
    fs::rename(tmp, overlay, ec);
    if (ec)
        return fail(Errc::io, "move overlay into place: " + ec.message());
    return {};
}

// ---- suspended state -----------------------------------------------------------------------
//
// A state file is "HLVMSTATE1" then frames: u32 plaintext length (big-endian) | ciphertext |
// 16-byte GCM tag, each sealed with nonce = 4 zero bytes | u64 frame number and AAD = 1 byte,
// 1 for the last frame (empty) and 0 otherwise, so a truncated, reordered or spliced file
// fails to open.

namespace {

constexpr std::string_view state_magic = "HLVMSTATE1";
constexpr std::size_t state_frame = 1u << 20;

crypto::Nonce frame_nonce(std::uint64_t n) {
    crypto::Nonce nonce{};
    for (int i = 0; i < 8; ++i)
        nonce[4 + i] = static_cast<std::uint8_t>(n >> (56 - 8 * i));
    return nonce;
}

// Reads QEMU's migration stream from fd until it closes and writes it encrypted to file.
Status encrypt_stream(int fd, const fs::path& file, const crypto::Key& key) {
    Fd out(::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!out)
        return fail(Errc::io, fmt::format("create {}: {}", file.string(), std::strerror(errno)));
    HL_TRY(write_all(out.get(), as_bytes(state_magic), file));
    crypto::AesGcm gcm;
    Bytes plain(state_frame), sealed(state_frame + 4 + 16);
    for (std::uint64_t n = 0;; ++n) {
        std::size_t got = 0;
        while (got < plain.size()) {
            ssize_t r = ::read(fd, plain.data() + got, plain.size() - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                return fail(Errc::io, std::string("read the VM's state: ") + std::strerror(errno));
            if (r == 0)
                break;
            got += static_cast<std::size_t>(r);
        }
        bool last = got == 0;
        std::uint8_t aad = last ? 1 : 0;
        auto len = static_cast<std::uint32_t>(got);
        for (int i = 0; i < 4; ++i)
            sealed[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(len >> (24 - 8 * i));
        auto tag =
            HL_TRY(gcm.seal(key, frame_nonce(n), ByteView(&aad, 1), ByteView(plain.data(), got),
                            MutableByteView(sealed.data() + 4, got)));
        std::memcpy(sealed.data() + 4 + got, tag.data(), tag.size());
        HL_TRY(write_all(out.get(), ByteView(sealed.data(), 4 + got + 16), file));
        if (last)
            break;
    }
    crypto::secure_wipe(plain);
    if (::fsync(out.get()) != 0)
        return fail(Errc::io, fmt::format("fsync {}: {}", file.string(), std::strerror(errno)));
    return {};
}

// Decrypts a state file into fd (QEMU's incoming migration), checking every frame first.
Status decrypt_stream(const fs::path& file, int fd, const crypto::Key& key) {
    Fd in = HL_TRY(open_read(file));
    std::array<std::uint8_t, state_magic.size()> magic;
    HL_TRY(pread_exact(in.get(), magic, 0, file));
    if (std::string_view(reinterpret_cast<const char*>(magic.data()), magic.size()) != state_magic)
        return fail(Errc::corrupt, file.string() + " is not a suspended VM's state");
    std::uint64_t offset = magic.size();
    std::uint64_t size = HL_TRY(file_size(in.get(), file));
    crypto::AesGcm gcm;
    Bytes sealed(state_frame + 16), plain(state_frame);
    for (std::uint64_t n = 0;; ++n) {
        std::array<std::uint8_t, 4> h;
        if (offset + 4 > size)
            return fail(Errc::corrupt, file.string() + " is truncated");
        HL_TRY(pread_exact(in.get(), h, offset, file));
        std::uint32_t len =
            std::uint32_t{h[0]} << 24 | std::uint32_t{h[1]} << 16 | std::uint32_t{h[2]} << 8 | h[3];
        if (len > state_frame || offset + 4 + len + 16 > size)
            return fail(Errc::corrupt, file.string() + " is truncated or damaged");
        HL_TRY(pread_exact(in.get(), MutableByteView(sealed.data(), len + 16), offset + 4, file));
        crypto::GcmTag tag;
        std::memcpy(tag.data(), sealed.data() + len, tag.size());
        std::uint8_t aad = len == 0 ? 1 : 0;
        HL_TRY_CTX(gcm.open(key, frame_nonce(n), ByteView(&aad, 1), ByteView(sealed.data(), len),
                            tag, MutableByteView(plain.data(), len)),
                   file.string());
        offset += 4 + len + 16;
        if (len == 0)
            break;
        HL_TRY(write_all(fd, ByteView(plain.data(), len), file));
    }
    crypto::secure_wipe(plain);
    return {};
}

// Waits for QEMU's migration to finish: its status once completed, failed or cancelled.
Result<std::string> wait_migration(Qmp& qmp, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        Json info = HL_TRY(qmp.execute("query-migrate", Json::object(), 10s));
        std::string status = info.value("status", std::string());
        if (status == "completed" || status == "failed" || status == "cancelled")
            return status;
        if (Clock::now() >= deadline)
            return fail(Errc::io, "the VM's state was not saved in time");
        std::this_thread::sleep_for(100ms);
    }
}

} // namespace

// ---- the VM ---------------------------------------------------------------------------------

struct Vm::Impl {
    VmSpec spec;
    Accel accel = Accel::tcg;
    pid_t pid = -1;
    std::optional<int> exit_code;
    std::optional<Qmp> qmp;

    fs::path sock(std::string_view name) const { return spec.run_dir / name; }
};

Vm::Vm(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Vm>> Vm::start(const VmSpec& spec) {
    auto impl = std::make_unique<Impl>();
    impl->spec = spec;
    impl->accel = spec.accel.value_or(probe_accel());
    HL_TRY(make_dirs(spec.run_dir));
    ::chmod(spec.run_dir.c_str(), 0700);
    for (const char* name : {"qmp.sock", "control.sock", "display.sock"}) {
        std::error_code ec;
        fs::remove(spec.run_dir / name, ec);
    }
    auto secret = HL_TRY(SecretPipe::make(spec.overlay_key));

    Json base_nbd = {{"driver", "nbd"},
                     {"node-name", "base-nbd"},
                     {"server", {{"type", "unix"}, {"path", spec.base_socket.string()}}},
                     {"export", spec.base_export},
                     {"read-only", true}};
    Json base = {
        {"driver", "raw"}, {"node-name", "base"}, {"file", "base-nbd"}, {"read-only", true}};
    Json disk = {{"driver", "qcow2"},
                 {"node-name", "disk"},
                 {"file", {{"driver", "file"}, {"filename", spec.overlay.string()}}},
                 {"backing", "base"},
                 {"encrypt", {{"format", "luks"}, {"key-secret", "overlay-key"}}}};
    auto chardev = [&](std::string_view id, std::string_view file) {
        return fmt::format("socket,id={},path={},server=on,wait=off", id,
                           impl->sock(file).string());
    };
    std::vector<std::string> argv = {
        "qemu-system-x86_64",
        "-name",
        fmt::format("heirloom-{},process=heirloom-{}", spec.name, spec.name),
        "-machine",
        fmt::format("q35,accel={}", accel_name(impl->accel)),
        "-cpu",
        impl->accel == Accel::kvm ? "host" : "max",
        "-m",
        std::to_string(spec.memory_mib),
        "-smp",
        std::to_string(spec.cpus),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-vga",
        "none",
        // The guest is hostile: QEMU may not spawn programs, raise privileges or use
        // obsolete system calls.
        "-sandbox",
        "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
        "-qmp",
        fmt::format("unix:{},server=on,wait=off", impl->sock("qmp.sock").string()),
        "-serial",
        fmt::format("file:{}", impl->sock("console.log").string()),
        "-object",
        fmt::format("secret,id=overlay-key,file=/dev/fd/{}", secret_fd),
        "-blockdev",
        base_nbd.dump(),
        "-blockdev",
        base.dump(),
        "-blockdev",
        disk.dump(),
        "-device",
        "virtio-blk-pci,drive=disk,bootindex=1",
        "-device",
        "virtio-serial-pci,id=vser",
        "-chardev",
        chardev("control", "control.sock"),
        "-device",
        "virtserialport,chardev=control,name=org.heirloom.control",
        "-chardev",
        chardev("display", "display.sock"),
        "-device",
        "virtserialport,chardev=display,name=org.heirloom.xpra",
        "-device",
        "virtio-rng-pci",
    };
    if (spec.network) {
        argv.insert(argv.end(),
                    {"-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0"});
    }
    if (spec.resume_from)
        argv.insert(argv.end(), {"-incoming", "defer"});
    argv.insert(argv.end(), spec.extra_args.begin(), spec.extra_args.end());
    SpawnOptions o;
    o.argv = std::move(argv);
    o.env = child_environment();
    o.fds = {{secret->read_end, secret_fd}};
    o.stdout_file = spec.run_dir / "qemu.log";
    {
        std::error_code ec;
        fs::remove(o.stdout_file, ec);
    }
    impl->pid = HL_TRY(spawn_process(o));
    auto qmp = Qmp::connect(impl->sock("qmp.sock"), 20s);
    if (!qmp) {
        stop_process(impl->pid, 2s);
        auto log = read_text_file(o.stdout_file, 64 << 10);
        return fail(Errc::io, fmt::format("QEMU did not start for workspace '{}': {} {}", spec.name,
                                          qmp.error().message, log ? *log : std::string()));
    }
    impl->qmp = std::move(*qmp);
    std::unique_ptr<Vm> vm(new Vm(std::move(impl)));
    if (spec.resume_from)
        HL_TRY(vm->resume(*spec.resume_from, spec.state_key));
    return vm;
}

Vm::~Vm() {
    if (impl_ && alive())
        shut_down(0ms);
}

const VmSpec& Vm::spec() const {
    return impl_->spec;
}
Accel Vm::accel() const {
    return impl_->accel;
}
pid_t Vm::pid() const {
    return impl_->pid;
}
fs::path Vm::control_socket() const {
    return impl_->sock("control.sock");
}
fs::path Vm::display_socket() const {
    return impl_->sock("display.sock");
}
fs::path Vm::console_log() const {
    return impl_->sock("console.log");
}
Qmp& Vm::qmp() {
    return *impl_->qmp;
}
std::optional<int> Vm::exit_code() const {
    return impl_->exit_code;
}

bool Vm::alive() {
    if (impl_->exit_code)
        return false;
    if (auto code = wait_process(impl_->pid, 0ms)) {
        impl_->exit_code = *code;
        return false;
    }
    return true;
}

Status Vm::resume(const fs::path& state_file, const crypto::Key& key) {
    // A socket pair rather than a pipe: shutdown() unblocks the side we hold if QEMU fails.
    int p[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0)
        return fail(Errc::io, std::string("socketpair: ") + std::strerror(errno));
    Fd read_end(p[0]), write_end(p[1]);
    HL_TRY(impl_->qmp->send_fd("resume", read_end.get()));
    read_end = Fd();
    HL_TRY(impl_->qmp->execute("migrate-incoming", {{"uri", "fd:resume"}}));
    Status fed;
    std::thread feeder([&] {
        fed = decrypt_stream(state_file, write_end.get(), key);
        write_end = Fd(); // end of stream
    });
    auto status = wait_migration(*impl_->qmp, 300s);
    if (!status)
        ::shutdown(write_end.get(), SHUT_RDWR);
    feeder.join();
    HL_TRY(fed);
    std::string st = HL_TRY(std::move(status));
    if (st != "completed")
        return fail(Errc::io, "QEMU could not load the suspended state (" + st + ")");
    auto running = HL_TRY(impl_->qmp->execute("query-status"));
    if (running.value("status", std::string()) != "running")
        HL_TRY(impl_->qmp->execute("cont"));
    return {};
}

Status Vm::suspend_to(const fs::path& state_file, const crypto::Key& key,
                      std::chrono::milliseconds timeout) {
    if (!alive())
        return fail(Errc::io, "the VM is not running");
    fs::path tmp = state_file;
    tmp += ".partial";
    // A socket pair rather than a pipe: shutdown() unblocks the side we hold if QEMU fails.
    int p[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0)
        return fail(Errc::io, std::string("socketpair: ") + std::strerror(errno));
    Fd read_end(p[0]), write_end(p[1]);
    HL_TRY(impl_->qmp->execute("stop"));
    HL_TRY(impl_->qmp->send_fd("suspend", write_end.get()));
    write_end = Fd(); // QEMU holds it now: the stream ends when QEMU closes its copy
    Status saved;
    std::thread saver([&] { saved = encrypt_stream(read_end.get(), tmp, key); });
    auto started = impl_->qmp->execute("migrate", {{"uri", "fd:suspend"}});
    Result<std::string> status = started ? wait_migration(*impl_->qmp, timeout)
                                         : Result<std::string>(std::unexpected(started.error()));
    if (!status || *status != "completed") {
        shut_down(0ms); // closes QEMU's end of the pipe
        saver.join();
        std::error_code ec;
        fs::remove(tmp, ec);
        if (!status)
            return std::unexpected(status.error());
        return fail(Errc::io, "QEMU could not save the VM's state (" + *status + ")");
    }
    shut_down(0ms); // quit: QEMU closes the stream
    saver.join();
    if (!saved) {
        std::error_code ec;
        fs::remove(tmp, ec);
        return saved;
    }
    std::error_code ec;
    fs::rename(tmp, state_file, ec);
    if (ec)
        return fail(Errc::io, "move the VM's state into place: " + ec.message());
    return {};
}

void Vm::shut_down(std::chrono::milliseconds timeout) {
    if (!alive())
        return;
    if (timeout.count() > 0) {
        (void)impl_->qmp->execute("system_powerdown", Json::object(), 2s);
        if (auto code = wait_process(impl_->pid, timeout)) {
            impl_->exit_code = *code;
            return;
        }
    }
    (void)impl_->qmp->execute("quit", Json::object(), 2s);
    if (auto code = wait_process(impl_->pid, 5s)) {
        impl_->exit_code = *code;
        return;
    }
    stop_process(impl_->pid, 2s);
    impl_->exit_code = 128 + SIGKILL;
}

} // namespace heirloom::agent
