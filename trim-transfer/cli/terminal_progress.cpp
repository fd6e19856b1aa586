#include "terminal_progress.hpp"

#include "heirloom/common/bytes.hpp"

#include <cstdio>
#include <fmt/format.h>
#include <unistd.h>

namespace heirloom::trim::cli {

TerminalProgress::TerminalProgress()
    : enabled_(::isatty(STDERR_FILENO) == 1), start_(std::chrono::steady_clock::now()) {}

TerminalProgress::~TerminalProgress() {
    finish();
}

void TerminalProgress::update(std::string_view stage, std::uint64_t done, std::uint64_t total) {
    if (!enabled_)
        return;
    std::lock_guard lock(mutex_);
    auto now = std::chrono::steady_clock::now();
    if (done < total && now - last_ < std::chrono::milliseconds(100))
        return;
    last_ = now;
    double pct = total ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 100.0;
    double secs = std::chrono::duration<double>(now - start_).count();
    // Pack and seed indexing count bytes; the other stages count chunks.
    bool bytes = stage == "pack" || stage == "index seed";
    std::string of = bytes ? fmt::format("{} of {}", format_bytes(done), format_bytes(total))
                           : fmt::format("{} of {} chunks", done, total);
    fmt::print(stderr, "\r\033[K{}: {:5.1f}%  ({})  {:.1f}s", stage, pct, of, secs);
    std::fflush(stderr);
    shown_ = true;
}

void TerminalProgress::finish() {
    std::lock_guard lock(mutex_);
    if (enabled_ && shown_)
        fmt::print(stderr, "\r\033[K");
    shown_ = false;
}

} // namespace heirloom::trim::cli
