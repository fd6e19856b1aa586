#pragma once

// A small leveled logger that writes to stderr. It is passed around explicitly (no global),
// and never receives secrets: callers log identifiers, never keys or passwords.

#include <fmt/format.h>
#include <string_view>

namespace heirloom {

enum class LogLevel { debug, info, warn, error, quiet };

class Log {
  public:
    explicit Log(LogLevel level = LogLevel::info) : level_(level) {}
    LogLevel level() const { return level_; }
    void set_level(LogLevel level) { level_ = level; }

    template <class... Args> void debug(fmt::format_string<Args...> f, Args&&... args) const {
        write(LogLevel::debug, f, std::forward<Args>(args)...);
    }
    template <class... Args> void info(fmt::format_string<Args...> f, Args&&... args) const {
        write(LogLevel::info, f, std::forward<Args>(args)...);
    }
    template <class... Args> void warn(fmt::format_string<Args...> f, Args&&... args) const {
        write(LogLevel::warn, f, std::forward<Args>(args)...);
    }
    template <class... Args> void error(fmt::format_string<Args...> f, Args&&... args) const {
        write(LogLevel::error, f, std::forward<Args>(args)...);
    }

  private:
    template <class... Args>
    void write(LogLevel at, fmt::format_string<Args...> f, Args&&... args) const {
        if (at < level_)
            return;
        emit(at, fmt::format(f, std::forward<Args>(args)...));
    }
    void emit(LogLevel at, std::string_view line) const;
    LogLevel level_;
};

} // namespace heirloom
