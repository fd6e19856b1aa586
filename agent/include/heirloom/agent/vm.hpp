#pragma once

// The hidden workspace VM: QEMU with no display, controlled over QMP. The base disk is the
// decrypting NBD export of the stored image; the user's writes go to a LUKS-encrypted qcow2
// overlay whose key never appears in argv, the environment or a file (it reaches qemu-img and
// QEMU through an inherited pipe). The guest agent's control channel and the display channel
// are virtio-serial ports on private unix sockets: no TCP port anywhere. See docs/vm.md.

#include "heirloom/common/crypto.hpp"
#include "heirloom/common/error.hpp"
#include "heirloom/common/file.hpp"
#include "heirloom/common/json.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace heirloom::agent {

// ---- child processes --------------------------------------------------------------------

struct SpawnOptions {
    std::vector<std::string> argv;
    std::vector<std::string> env;         // the child's whole environment ("K=V")
    std::vector<std::pair<int, int>> fds; // (parent fd, child fd) made available to the child
    fs::path stdout_file;                 // empty: /dev/null (stderr goes to the same file)
};
// Starts a program (looked up in PATH) with only the given environment and file descriptors.
Result<pid_t> spawn_process(const SpawnOptions& options);
// Waits for pid until timeout; returns its exit code (128+signal when killed) or nullopt.
std::optional<int> wait_process(pid_t pid, std::chrono::milliseconds timeout);
// TERM, up to grace for it to exit, then KILL; reaps it.
void stop_process(pid_t pid, std::chrono::milliseconds grace);
// A minimal environment for helpers (PATH, HOME, LANG and the display variables of ours
// that are set); never anything else of the agent's environment.
std::vector<std::string> child_environment();

// ---- QMP ------------------------------------------------------------------------------------

class Qmp {
  public:
    // Connects to QEMU's QMP socket (retrying until timeout while QEMU starts) and negotiates
    // capabilities.
    static Result<Qmp> connect(const fs::path& socket, std::chrono::milliseconds timeout);
    Qmp(Qmp&&) noexcept;
    Qmp& operator=(Qmp&&) noexcept;
    ~Qmp();

    // Runs a command; returns its "return" value, or QEMU's error as an Error.
    Result<Json> execute(const std::string& command, const Json& arguments = Json::object(),
                         std::chrono::milliseconds timeout = std::chrono::seconds(30));
    // Hands QEMU a file descriptor under a name (QMP getfd, over SCM_RIGHTS), for "fd:NAME".
    Status send_fd(const std::string& name, int fd);
    // Events received so far (and drained); waits up to timeout for one named `name`.
    Result<Json> wait_event(const std::string& name, std::chrono::milliseconds timeout);

  private:
    struct Impl;
    explicit Qmp(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// ---- the VM -------------------------------------------------------------------------------

enum class Accel { kvm, tcg };
std::string_view accel_name(Accel a);

// Whether KVM really works here: /dev/kvm usable and a QEMU on it still running after a
// moment (on some machines /dev/kvm opens and QEMU then aborts setting MSRs). Cached per
// process. HEIRLOOM_ACCEL=tcg|kvm forces the answer.
Accel probe_accel();

struct VmSpec {
    std::string name;        // workspace id, for the process name and messages
    fs::path run_dir;        // private folder: QMP, guest channel sockets, console log
    fs::path base_socket;    // the NBD export of the base image
    std::string base_export; // its export name
    fs::path overlay;        // qcow2 + LUKS over the base; made by create_overlay
    std::string overlay_key; // the overlay's LUKS passphrase (hex of 32 random bytes)
    unsigned memory_mib = 1024;
    unsigned cpus = 2;
    bool network = true;        // QEMU user networking (NAT); false: no network device
    std::optional<Accel> accel; // default: probe_accel()
    // Resume from a state file written by Vm::suspend_to (with the same disks) instead of
    // booting; state_key is its key.
    std::optional<fs::path> resume_from;
    crypto::Key state_key{};
    std::vector<std::string> extra_args; // for tests only
};

// Creates the encrypted overlay of a base disk of size bytes (the key through a pipe).
Status create_overlay(const fs::path& overlay, std::uint64_t size, const std::string& key);
// A fresh random overlay key (hex).
std::string new_overlay_key();

class Vm {
  public:
    // Starts QEMU (running the guest at once) and connects to its QMP socket.
    static Result<std::unique_ptr<Vm>> start(const VmSpec& spec);
    // Quits QEMU if it still runs.
    ~Vm();
    Vm(const Vm&) = delete;
    Vm& operator=(const Vm&) = delete;

    const VmSpec& spec() const;
    Accel accel() const;
    pid_t pid() const;
    fs::path control_socket() const; // virtio-serial port org.heirloom.control
    fs::path display_socket() const; // virtio-serial port org.heirloom.xpra
    fs::path console_log() const;    // the guest's serial console
    Qmp& qmp();

    // False once QEMU has exited (crashed, killed, or the guest powered off); then exit_code()
    // tells how.
    bool alive();
    std::optional<int> exit_code() const;
    // Asks the guest to power off (ACPI), waits up to timeout, then quits QEMU.
    void shut_down(std::chrono::milliseconds timeout);
    // Suspends to disk: pauses the guest, saves its memory and devices through QEMU's
    // migration stream, encrypted (AES-256-GCM frames under key) into state_file, then quits
    // QEMU. The file appears only when complete.
    Status suspend_to(const fs::path& state_file, const crypto::Key& key,
                      std::chrono::milliseconds timeout);

  private:
    Status resume(const fs::path& state_file, const crypto::Key& key);
    struct Impl;
    explicit Vm(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

} // namespace heirloom::agent
