#pragma once

// A private X display for tests that look at windows: a real Xvfb on a free display number,
// with helpers to find windows (xdotool), read the clipboard (xclip) and take screenshots
// (ImageMagick's import), as a person looking at the screen would.

#include "support/support.hpp"

#include <chrono>
#include <sys/types.h>

namespace heirloom::test {

class Xvfb {
  public:
    Xvfb(int width = 1280, int height = 800);
    ~Xvfb();
    Xvfb(const Xvfb&) = delete;
    Xvfb& operator=(const Xvfb&) = delete;

    bool running() const { return pid_ > 0; }
    std::string display() const { return ":" + std::to_string(number_); } // ":57"
    std::string error() const { return error_; }

    // `xdotool search --name PATTERN` until a window shows up; its id, or empty on timeout.
    std::string wait_for_window(const std::string& pattern,
                                std::chrono::milliseconds timeout) const;
    // The title of a window.
    std::string window_title(const std::string& id) const;
    // Saves the whole screen as a PNG.
    bool screenshot(const fs::path& png) const;
    // Distinct colours in a PNG (1 for a blank screen).
    static long colours(const fs::path& png);
    // The CLIPBOARD selection's text ("" when nobody owns it), and setting it (xclip).
    std::string clipboard() const;
    bool set_clipboard(const std::string& text) const;

    // Runs a program with DISPLAY set to this display.
    RunResult run(std::vector<std::string> argv) const;

  private:
    int number_ = -1;
    pid_t pid_ = -1;
    std::string error_;
};

// Where tests save screenshots for people to look at (build/screenshots/).
fs::path screenshot_dir();

} // namespace heirloom::test
