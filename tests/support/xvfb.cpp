#include "support/xvfb.hpp"

#include <csignal>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace heirloom::test {

using namespace std::chrono_literals;

Xvfb::Xvfb(int width, int height) {
    // A display number nobody uses: its socket and lock file are both absent.
    for (int n = 40 + static_cast<int>(::getpid() % 200); n < 1000; ++n) {
        if (fs::exists("/tmp/.X11-unix/X" + std::to_string(n)) ||
            fs::exists("/tmp/.X" + std::to_string(n) + "-lock"))
            continue;
        number_ = n;
        break;
    }
    pid_ = spawn_background({"Xvfb", display(), "-screen", "0",
                             std::to_string(width) + "x" + std::to_string(height) + "x24",
                             "-nolisten", "tcp", "-noreset"});
    if (pid_ < 0) {
        error_ = "cannot start Xvfb (apt-get install xvfb)";
        return;
    }
    for (int i = 0; i < 100; ++i) {
        if (fs::exists("/tmp/.X11-unix/X" + std::to_string(number_)))
            return;
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            error_ = "Xvfb exited at start";
            return;
        }
        std::this_thread::sleep_for(50ms);
    }
    error_ = "Xvfb did not create its socket in 5 s";
}

Xvfb::~Xvfb() {
    if (pid_ > 0) {
        ::kill(pid_, SIGTERM);
        ::waitpid(pid_, nullptr, 0);
    }
}

RunResult Xvfb::run(std::vector<std::string> argv) const {
    argv.insert(argv.begin(), {"env", "DISPLAY=" + display()});
    return test::run(argv);
}

std::string Xvfb::wait_for_window(const std::string& pattern,
                                  std::chrono::milliseconds timeout) const {
    auto end = std::chrono::steady_clock::now() + timeout;
    do {
        auto r = run({"xdotool", "search", "--onlyvisible", "--name", pattern});
        if (r.exit_code == 0 && !r.out.empty())
            return r.out.substr(0, r.out.find('\n'));
        std::this_thread::sleep_for(200ms);
    } while (std::chrono::steady_clock::now() < end);
    return {};
}

std::string Xvfb::window_title(const std::string& id) const {
    auto r = run({"xdotool", "getwindowname", id});
    std::string title = r.out;
    while (!title.empty() && (title.back() == '\n' || title.back() == '\r'))
        title.pop_back();
    return title;
}

bool Xvfb::screenshot(const fs::path& png) const {
    fs::create_directories(png.parent_path());
    return run({"import", "-window", "root", png.string()}).exit_code == 0;
}

long Xvfb::colours(const fs::path& png) {
    auto r = test::run({"identify", "-format", "%k", png.string()});
    return r.exit_code == 0 ? std::stol(r.out) : 0;
}

std::string Xvfb::clipboard() const {
    auto r = run({"timeout", "5", "xclip", "-o", "-selection", "clipboard"});
    return r.exit_code == 0 ? r.out : std::string();
}

bool Xvfb::set_clipboard(const std::string& text) const {
    // xclip forks a child that serves the selection until someone else takes it; its output
    // goes nowhere, so nothing waits on it.
    fs::path file = fs::temp_directory_path() / ("heirloom-clip-" + std::to_string(::getpid()));
    write_file(file, as_bytes(text));
    pid_t pid = spawn_background(
        {"env", "DISPLAY=" + display(), "xclip", "-selection", "clipboard", "-i", file.string()});
    int status = 0;
    bool ok = pid > 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
              WEXITSTATUS(status) == 0;
    fs::remove(file);
    return ok;
}

fs::path screenshot_dir() {
    if (const char* dir = std::getenv("HEIRLOOM_SCREENSHOT_DIR"))
        return dir;
    return bin_dir().parent_path() / "screenshots";
}

} // namespace heirloom::test
