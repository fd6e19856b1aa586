#include "heirloom/agent/workspace_vm.hpp"

#include "heirloom/agent/control.hpp"

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <map>
#include <mutex>
#include <poll.h>
#include <set>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

namespace heirloom::agent {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// ---- the guest channel ---------------------------------------------------------------------

struct GuestChannel::Impl {
    Fd fd;
    int wake[2] = {-1, -1};
    std::mutex send_mutex;
    std::thread reader;
    OnMessage on_message;
    OnClosed on_closed;

    void read_loop() {
        guest::FrameReader frames;
        std::array<std::uint8_t, 65536> buf;
        for (;;) {
            pollfd p[2] = {{fd.get(), POLLIN, 0}, {wake[0], POLLIN, 0}};
            if (::poll(p, 2, -1) < 0) {
                if (errno == EINTR)
                    continue;
                on_closed(Error{Errc::io, std::string("poll: ") + std::strerror(errno)});
                return;
            }
            if (p[1].revents)
                return; // closing
            ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), 0);
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n <= 0) {
                on_closed(Error{Errc::network, "the VM closed the guest channel"});
                return;
            }
            auto payloads = frames.feed(std::span<const std::uint8_t>(buf.data(), n));
            if (!payloads) {
                on_closed(payloads.error().context("guest channel"));
                return;
            }
            for (const auto& payload : *payloads) {
                auto message = guest::parse_guest_message(payload);
                if (!message) {
                    on_closed(message.error().context("guest channel"));
                    return;
                }
                on_message(*message);
            }
        }
    }
};

GuestChannel::GuestChannel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<GuestChannel>>
GuestChannel::connect(const fs::path& socket, OnMessage on_message, OnClosed on_closed) {
    auto impl = std::make_unique<Impl>();
    impl->on_message = std::move(on_message);
    impl->on_closed = std::move(on_closed);
    std::string path = socket.string();
    sockaddr_un addr = HL_TRY_CTX(unix_address(socket), "guest channel");
    impl->fd = Fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(impl->fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
        return fail(Errc::network, fmt::format("cannot connect to the guest channel {}: {}", path,
                                               std::strerror(errno)));
    if (::pipe2(impl->wake, O_CLOEXEC) < 0)
        return fail(Errc::io, std::string("pipe: ") + std::strerror(errno));
    Impl* raw = impl.get();
    impl->reader = std::thread([raw] { raw->read_loop(); });
    return std::unique_ptr<GuestChannel>(new GuestChannel(std::move(impl)));
}

GuestChannel::~GuestChannel() {
    char x = 1;
    (void)!::write(impl_->wake[1], &x, 1);
    impl_->reader.join();
    ::close(impl_->wake[0]);
    ::close(impl_->wake[1]);
}

Status GuestChannel::send(const guest::HostMessage& message) {
    auto bytes = guest::encode(message);
    if (!bytes)
        return std::unexpected(bytes.error());
    std::lock_guard lock(impl_->send_mutex);
    std::size_t sent = 0;
    while (sent < bytes->size()) {
        ssize_t n =
            ::send(impl_->fd.get(), bytes->data() + sent, bytes->size() - sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fail(Errc::network, std::string("guest channel: ") + std::strerror(errno));
        }
        sent += static_cast<std::size_t>(n);
    }
    return {};
}

// ---- the seamless display -----------------------------------------------------------------

namespace {

// Xpra's clipboard direction is seen from its server (the guest): "to-server" is host→guest.
std::string_view xpra_direction(guest::Direction d) {
    switch (d) {
    case guest::Direction::host_to_guest:
        return "to-server";
    case guest::Direction::guest_to_host:
        return "to-client";
    case guest::Direction::both:
        return "both";
    case guest::Direction::off:
        break;
    }
    return "disabled";
}

class XpraDisplay final : public DisplayBackend {
  public:
    ~XpraDisplay() override { detach(); }
    Status attach(const fs::path& channel, const DisplaySettings& settings) override {
        detach();
        SpawnOptions o;
        o.argv = xpra_client_args(channel, settings);
        o.env = child_environment();
        o.stdout_file = settings.log_file;
        pid_ = HL_TRY(spawn_process(o));
        return {};
    }
    bool attached() override {
        if (pid_ <= 0)
            return false;
        if (wait_process(pid_, 0ms)) {
            pid_ = -1;
            return false;
        }
        return true;
    }
    void detach() override {
        if (pid_ > 0)
            stop_process(pid_, 3s);
        pid_ = -1;
    }

  private:
    pid_t pid_ = -1;
};

} // namespace

std::vector<std::string> xpra_client_args(const fs::path& channel, const DisplaySettings& s) {
    const auto& c = s.controls;
    bool file_in = c.file_transfer == guest::Direction::host_to_guest ||
                   c.file_transfer == guest::Direction::both;
    // The workspace's name goes in front of every title, so users know what runs where; the
    // title itself comes from the guest and Xpra shows it as text, never interprets it.
    std::vector<std::string> args = {
        "xpra",
        "attach",
        "socket://" + channel.string(),
        "--title=[" + s.workspace_name + "] @title@",
        fmt::format("--clipboard={}", c.clipboard == guest::Direction::off ? "no" : "yes"),
        fmt::format("--clipboard-direction={}", xpra_direction(c.clipboard)),
        fmt::format("--file-transfer={}", file_in ? "yes" : "no"),
        "--open-files=no",
        "--open-url=no",
        fmt::format("--printing={}", c.printing ? "yes" : "no"),
        "--tray=no",
        "--system-tray=no",
        "--notifications=no",
        "--speaker=off",
        "--microphone=off",
        "--webcam=no",
        "--mdns=no",
        "--bell=no",
        "--opengl=no",
    };
    if (s.colour)
        args.push_back("--border=" + *s.colour + ",3");
    return args;
}

std::unique_ptr<DisplayBackend> make_xpra_display() {
    return std::make_unique<XpraDisplay>();
}

// ---- the workspace ------------------------------------------------------------------------

struct WorkspaceVm::Impl {
    WorkspaceVmConfig config;
    std::unique_ptr<NbdExport> exp;
    std::unique_ptr<Vm> vm;
    std::unique_ptr<GuestChannel> channel;
    std::unique_ptr<DisplayBackend> display;

    std::mutex mutex;
    std::condition_variable changed;
    bool hello = false;
    bool have_apps = false;
    bool controls_applied = false;
    std::optional<Error> broken; // the guest broke the protocol or the channel closed
    std::vector<guest::App> apps;
    std::map<std::uint64_t, std::variant<std::int64_t, std::string>> launches; // req → result
    std::map<std::uint64_t, std::pair<bool, std::string>> files; // req → (stored, path or why)
    std::set<std::int64_t> apps_running;         // guest pids of launched apps still running
    std::optional<Clock::time_point> idle_since; // since when no launched app runs
    std::uint64_t next_req = 1;
    bool stopped = false;

    void event(const std::string& name, const Json& detail) {
        if (config.on_event)
            config.on_event(name, detail);
    }

    void on_message(const guest::GuestMessage& m) {
        std::unique_lock lock(mutex);
        if (auto* h = std::get_if<guest::GuestHello>(&m)) {
            hello = true;
            Json detail = {{"guest_version", h->guest_version}, {"hostname", h->hostname}};
            lock.unlock();
            greet();
            event("guest-hello", detail);
            lock.lock();
        } else if (auto* a = std::get_if<guest::AppList>(&m)) {
            apps = a->apps;
            have_apps = true;
            if (apps_running.empty() && !idle_since)
                idle_since = Clock::now();
            if (config.on_apps) {
                lock.unlock();
                config.on_apps(a->apps);
                lock.lock();
            }
        } else if (auto* l = std::get_if<guest::Launched>(&m)) {
            launches[l->req] = l->pid;
            apps_running.insert(l->pid);
            idle_since.reset();
        } else if (auto* f = std::get_if<guest::LaunchFailed>(&m)) {
            launches[f->req] = f->message;
        } else if (auto* stored = std::get_if<guest::FileStored>(&m)) {
            files[stored->req] = {true, stored->path};
        } else if (auto* refused = std::get_if<guest::FileFailed>(&m)) {
            files[refused->req] = {false, refused->message};
        } else if (auto* e = std::get_if<guest::Exited>(&m)) {
            if (apps_running.erase(e->pid) && apps_running.empty())
                idle_since = Clock::now();
            Json detail = {{"pid", e->pid}, {"code", e->code}};
            lock.unlock();
            event("app-exited", detail);
            lock.lock();
        } else if (std::get_if<guest::ControlsApplied>(&m)) {
            controls_applied = true;
        } else if (auto* g = std::get_if<guest::GuestError>(&m)) {
            Json detail = {{"message", g->message}};
            lock.unlock();
            event("guest-error", detail);
            lock.lock();
        }
        changed.notify_all();
    }

    // What the guest gets after its hello, and after a resume (it was greeted before the
    // suspend and never saw the host go): the time, the controls, and a request for its apps.
    void greet() {
        (void)channel->send(guest::HostHello{});
        (void)channel->send(guest::SetTime{std::chrono::duration_cast<std::chrono::milliseconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count()});
        (void)channel->send(guest::Controls{config.controls});
        (void)channel->send(guest::ListApps{});
    }

    void on_closed(const Error& e) {
        {
            std::lock_guard lock(mutex);
            if (stopped)
                return;
            broken = e;
        }
        changed.notify_all();
        event("guest-channel-closed", {{"message", e.message}});
    }

    // Waits for pred under the lock, failing when the VM dies or the guest channel breaks.
    Status wait(std::unique_lock<std::mutex>& lock, Clock::time_point deadline,
                const std::function<bool()>& pred, std::string_view what) {
        while (!pred()) {
            if (broken)
                return fail(Errc::network,
                            fmt::format("workspace '{}': {}", config.id, broken->message));
            if (!vm->alive())
                return fail(Errc::io, fmt::format("workspace '{}': the VM stopped while {} "
                                                  "(see {})",
                                                  config.id, what, vm->console_log().string()));
            if (Clock::now() >= deadline)
                return fail(Errc::network,
                            fmt::format("workspace '{}': timed out while {}", config.id, what));
            changed.wait_for(lock, 200ms);
        }
        return {};
    }
};

WorkspaceVm::WorkspaceVm(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<WorkspaceVm>> WorkspaceVm::start(WorkspaceVmConfig config) {
    auto impl = std::make_unique<Impl>();
    impl->config = std::move(config);
    auto& c = impl->config;
    HL_TRY(make_dirs(c.run_dir));
    ::chmod(c.run_dir.c_str(), 0700);
    Impl* raw = impl.get();
    impl->exp =
        HL_TRY(NbdExport::start(c.run_dir / "base.nbd", c.image, c.id, [raw](const Error& e) {
            raw->event("image-read-error", {{"message", e.message}});
        }));
    std::error_code ec;
    if (!fs::exists(c.overlay, ec))
        HL_TRY(create_overlay(c.overlay, c.image->size(), c.overlay_key));
    VmSpec spec;
    spec.name = c.id;
    spec.run_dir = c.run_dir;
    spec.base_socket = c.run_dir / "base.nbd";
    spec.base_export = c.id;
    spec.overlay = c.overlay;
    spec.overlay_key = c.overlay_key;
    spec.memory_mib = c.memory_mib;
    spec.network = c.network;
    spec.accel = c.accel;
    spec.resume_from = c.resume_from;
    spec.state_key = c.state_key;
    impl->vm = HL_TRY(Vm::start(spec));
    impl->channel = HL_TRY(GuestChannel::connect(
        impl->vm->control_socket(), [raw](const guest::GuestMessage& m) { raw->on_message(m); },
        [raw](const Error& e) { raw->on_closed(e); }));
    if (c.resume_from) {
        {
            std::lock_guard lock(impl->mutex);
            impl->hello = true;
            impl->apps_running = c.apps_running;
        }
        impl->greet();
    }
    if (c.display) {
        impl->display = make_xpra_display();
        HL_TRY(impl->display->attach(
            impl->vm->display_socket(),
            DisplaySettings{c.display_name, c.colour, c.controls, c.run_dir / "xpra-client.log"}));
    }
    return std::unique_ptr<WorkspaceVm>(new WorkspaceVm(std::move(impl)));
}

WorkspaceVm::~WorkspaceVm() {
    stop(5s);
}

Status WorkspaceVm::wait_ready(std::chrono::milliseconds timeout) {
    std::unique_lock lock(impl_->mutex);
    return impl_->wait(
        lock, Clock::now() + timeout,
        [&] { return impl_->hello && impl_->have_apps && impl_->controls_applied; },
        "waiting for the guest agent");
}

Result<std::int64_t> WorkspaceVm::launch(const std::string& app_id,
                                         const std::vector<std::string>& command,
                                         const std::vector<std::string>& args,
                                         std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    HL_TRY(wait_ready(timeout));
    std::uint64_t req;
    {
        std::lock_guard lock(impl_->mutex);
        req = impl_->next_req++;
    }
    guest::Launch l{req, app_id, args, command};
    HL_TRY(impl_->channel->send(l));
    std::unique_lock lock(impl_->mutex);
    HL_TRY(impl_->wait(
        lock, deadline, [&] { return impl_->launches.contains(req); },
        "waiting for the app to start"));
    auto result = impl_->launches[req];
    impl_->launches.erase(req);
    if (auto* message = std::get_if<std::string>(&result))
        return fail(Errc::not_found, fmt::format("workspace '{}' could not start '{}': {}",
                                                 impl_->config.id, app_id, *message));
    return std::get<std::int64_t>(result);
}

Result<std::string> WorkspaceVm::send_file(const fs::path& file,
                                           std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    HL_TRY(wait_ready(timeout));
    Fd fd = HL_TRY(open_read(file));
    std::uint64_t size = HL_TRY(file_size(fd.get(), file));
    if (size > guest::max_file_bytes)
        return fail(Errc::invalid_argument,
                    fmt::format("{} is larger than the {} MiB a file sent into a workspace may "
                                "be",
                                file.filename().string(), guest::max_file_bytes >> 20));
    std::uint64_t req;
    {
        std::lock_guard lock(impl_->mutex);
        req = impl_->next_req++;
    }
    guest::FilePart part{req, guest::safe_file_name(file.filename().string()), size, 0, {}};
    do {
        part.data.resize(std::min<std::uint64_t>(guest::max_file_part, size - part.offset));
        HL_TRY(pread_exact(fd.get(), part.data, part.offset, file));
        HL_TRY(impl_->channel->send(part));
        part.offset += part.data.size();
    } while (part.offset < size);
    std::unique_lock lock(impl_->mutex);
    HL_TRY(impl_->wait(
        lock, deadline, [&] { return impl_->files.contains(req); },
        "waiting for the guest to store the file"));
    auto [stored, text] = impl_->files[req];
    impl_->files.erase(req);
    if (!stored)
        return fail(Errc::denied,
                    fmt::format("workspace '{}' refused the file: {}", impl_->config.id, text));
    return text;
}

std::vector<guest::App> WorkspaceVm::apps() {
    std::lock_guard lock(impl_->mutex);
    return impl_->apps;
}

std::string WorkspaceVm::state() {
    std::lock_guard lock(impl_->mutex);
    if (impl_->stopped)
        return "stopped";
    if (!impl_->vm->alive())
        return "died";
    return impl_->hello && impl_->have_apps ? "running" : "booting";
}

std::set<std::int64_t> WorkspaceVm::apps_running() {
    std::lock_guard lock(impl_->mutex);
    return impl_->apps_running;
}

std::optional<std::chrono::seconds> WorkspaceVm::idle_for() {
    std::lock_guard lock(impl_->mutex);
    if (impl_->stopped || !impl_->idle_since || !impl_->apps_running.empty())
        return std::nullopt;
    return std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - *impl_->idle_since);
}

Accel WorkspaceVm::accel() const {
    return impl_->vm->accel();
}
Vm& WorkspaceVm::vm() {
    return *impl_->vm;
}

Json WorkspaceVm::status() {
    Json j = {{"state", state()},
              {"accel", std::string(accel_name(impl_->vm->accel()))},
              {"pid", impl_->vm->pid()},
              {"image_version", impl_->config.image->version()}};
    auto stats = impl_->exp->stats();
    j["disk_bytes_read"] = stats.bytes_read;
    j["disk_read_errors"] = stats.errors;
    if (impl_->display)
        j["display"] = impl_->display->attached() ? "attached" : "detached";
    return j;
}

Status WorkspaceVm::suspend(const fs::path& state_file, const crypto::Key& key) {
    {
        std::lock_guard lock(impl_->mutex);
        if (impl_->stopped)
            return fail(Errc::invalid_argument, "workspace '" + impl_->config.id + "' is stopped");
        impl_->stopped = true;
    }
    if (impl_->display)
        impl_->display->detach();
    auto saved = impl_->vm->suspend_to(state_file, key, std::chrono::seconds(300));
    impl_->vm->shut_down(std::chrono::milliseconds(0));
    impl_->channel.reset();
    impl_->exp.reset();
    return saved;
}

void WorkspaceVm::stop(std::chrono::milliseconds timeout) {
    {
        std::lock_guard lock(impl_->mutex);
        if (impl_->stopped)
            return;
        impl_->stopped = true;
    }
    if (impl_->display)
        impl_->display->detach();
    impl_->vm->shut_down(timeout);
    impl_->channel.reset();
    impl_->exp.reset();
    if (impl_->config.revertible) {
        std::error_code ec;
        fs::remove(impl_->config.overlay, ec);
    }
}

} // namespace heirloom::agent
