#pragma once

// heirloom-guest logs one line per event to stderr, which is the guest's console. It cannot
// use heirloom::Log (fmt is not in the guest), and it is single-threaded, so this is enough.

#include <cstdio>
#include <string>
#include <string_view>

namespace heirloom::guest {

enum class LogLevel { debug, info, warn, error };

inline void log_line(LogLevel level, std::string_view message) {
    static constexpr const char* names[] = {"debug", "info", "warn", "error"};
    std::string line = "heirloom-guest: ";
    line += names[static_cast<int>(level)];
    line += ": ";
    line += message;
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
}

inline void log_info(std::string_view message) {
    log_line(LogLevel::info, message);
}
inline void log_warn(std::string_view message) {
    log_line(LogLevel::warn, message);
}
inline void log_error(std::string_view message) {
    log_line(LogLevel::error, message);
}

} // namespace heirloom::guest
