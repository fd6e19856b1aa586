#pragma once

// Progress of long operations (pack, sync, export, verify), reported to whoever shows it:
// a terminal line, a daemon's status, or nothing.

#include <cstdint>
#include <string_view>

namespace heirloom::trim {

class Progress {
  public:
    virtual ~Progress() = default;
    // Called from worker threads, often; implementations must be thread-safe and cheap.
    virtual void update(std::string_view stage, std::uint64_t done, std::uint64_t total) = 0;
};

} // namespace heirloom::trim
