#include "heirloom/common/log.hpp"

#include <cstdio>

namespace heirloom {

void Log::emit(LogLevel at, std::string_view line) const {
    static constexpr const char* names[] = {"debug", "info", "warning", "error", ""};
    std::fprintf(stderr, "heirloom: %s: %.*s\n", names[static_cast<int>(at)],
                 static_cast<int>(line.size()), line.data());
}

} // namespace heirloom
