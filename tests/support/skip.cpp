#include "support/skip.hpp"

#include <cstdlib>

namespace heirloom::test {

bool components_required() {
    const char* ci = std::getenv("CI");
    if (ci && std::string_view(ci) == "true")
        return true;
    const char* all = std::getenv("HEIRLOOM_REQUIRE_ALL");
    return all && *all && std::string_view(all) != "0";
}

} // namespace heirloom::test
