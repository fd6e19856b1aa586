// Fuzzes the Windows program path parser the policy, the guest channel and heirloom-guest
// share: any bytes must give a path or an error, never a crash. An accepted path is plain
// (no empty, "." or ".." component, no forbidden character, an .exe at the end), looks like a
// Windows path, and parses back from its own text to itself.
#include "heirloom/common/windows_path.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

using namespace heirloom;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto parsed = parse_windows_program_path(text);
    if (!parsed)
        return 0;
    if (!looks_like_windows_path(text) || parsed->components.empty())
        std::abort();
    for (const auto& component : parsed->components)
        if (component.empty() || component == "." || component == ".." ||
            component.find_first_of("\\/:*?\"<>|") != std::string::npos)
            std::abort();
    auto again = parse_windows_program_path(parsed->text());
    if (!again || *again != *parsed)
        std::abort();
    return 0;
}
