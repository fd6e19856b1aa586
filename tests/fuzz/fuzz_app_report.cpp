// Fuzzes what the server takes from agents about the apps a guest holds (the guest is the
// least trusted party): the report's JSON, its base64 and its PNG icons. Any input must give a
// value or an error, never a crash, and what is accepted must keep the promised limits.
#include "heirloom/server/app_report.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

using namespace heirloom;
using namespace heirloom::server;

namespace {

void check(bool ok) {
    if (!ok)
        std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0)
        return 0;
    std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
    switch (data[0] % 3) {
    case 0:
        if (auto apps = parse_app_report(text)) {
            check(apps->size() <= max_reported_apps);
            for (const auto& app : *apps) {
                check(check_app_id(app.id, "id").has_value());
                check(check_app_name(app.name, "name").has_value());
                check(app.file_types.size() <= max_app_file_types);
                check(app.icon_png.empty() || check_icon_png(app.icon_png).has_value());
            }
        }
        break;
    case 1:
        if (auto bytes = decode_base64(text))
            check(bytes->size() <= text.size() / 4 * 3);
        break;
    default:
        if (check_icon_png(ByteView(data + 1, size - 1)))
            check(size - 1 <= max_app_icon_bytes);
        break;
    }
    return 0;
}
