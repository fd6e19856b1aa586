#include "heirloom/agent/vm.hpp"

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
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string path = socket.string();
    if (path.size() >= sizeof(addr.sun_path))
        return fail(Errc::invalid_argument, "QMP socket path too long: " + path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
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
    return std::unique_ptr<Vm>(new Vm(std::move(impl)));
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
