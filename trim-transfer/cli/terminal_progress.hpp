#pragma once

// Shows progress of long operations on a terminal (stderr), at most ten times a second, and
// nothing at all when stderr is not a terminal.

#include "heirloom/trim/progress.hpp"

#include <chrono>
#include <mutex>
#include <string>

namespace heirloom::trim::cli {

class TerminalProgress final : public Progress {
  public:
    TerminalProgress();
    ~TerminalProgress() override;
    void update(std::string_view stage, std::uint64_t done, std::uint64_t total) override;
    // Ends the progress line so the next output starts on a fresh line.
    void finish();

  private:
    bool enabled_;
    bool shown_ = false;
    std::mutex mutex_;
    std::chrono::steady_clock::time_point last_{};
    std::chrono::steady_clock::time_point start_;
};

} // namespace heirloom::trim::cli
