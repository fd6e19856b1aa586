// Fuzzes everything the server parses from the network and from its configuration file: the
// JSON request bodies (and a Kerberos login's), the Authorization header and Negotiate tokens,
// query parameters, object paths in URLs and version numbers. The first byte picks the parser; any
// input must give a value or an error, never a crash, and what is accepted must keep the promises
// the routes rely on.
#include "heirloom/negotiate/negotiate.hpp"
#include "heirloom/server/config.hpp"
#include "heirloom/server/image_store.hpp"
#include "heirloom/server/requests.hpp"
#include "heirloom/trim/source.hpp"

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

std::multimap<std::string, std::string> query(std::string_view text) {
    std::multimap<std::string, std::string> params;
    while (!text.empty()) {
        auto amp = text.find('&');
        std::string_view pair = text.substr(0, amp);
        auto eq = pair.find('=');
        params.emplace(std::string(pair.substr(0, eq)),
                       eq == std::string_view::npos ? "" : std::string(pair.substr(eq + 1)));
        if (amp == std::string_view::npos)
            break;
        text.remove_prefix(amp + 1);
    }
    return params;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0)
        return 0;
    std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
    switch (data[0] % 12) {
    case 0:
        if (auto c = parse_login(text))
            check(!c->password.empty() && !c->user.empty());
        break;
    case 1:
        if (auto c = parse_enrol(text))
            check(!c->password.empty() && !c->hostname.empty());
        break;
    case 2:
        if (auto events = parse_events(text)) {
            check(events->size() <= max_events_per_report);
            for (const auto& e : *events)
                check(known_event_type(e.type) && e.message.size() <= max_event_message);
        }
        break;
    case 3:
        if (auto list = parse_object_list(text, 100))
            check(list->size() <= 100);
        break;
    case 4:
        (void)parse_image_create(text);
        (void)parse_policy_update(text);
        break;
    case 5:
        if (auto token = parse_bearer(text))
            check(token->token.size() == 66);
        break;
    case 6:
        (void)parse_event_filter(query(text));
        break;
    case 7:
        if (uploadable_object_path(text))
            check(trim::valid_object_path(text) && text.find("..") == std::string_view::npos);
        break;
    case 8:
        (void)parse_version_number(text);
        {
            std::string host;
            int port = 0;
            if (parse_listen(text, host, port))
                check(port >= 0 && port <= 65535);
        }
        break;
    case 9:
        if (auto hostname = parse_negotiated(text, (data[0] & 0x80) != 0))
            check((data[0] & 0x80) ? !hostname->empty() : hostname->empty());
        break;
    case 10:
        // Negotiate tokens: what decodes encodes back the same; a principal's user has no
        // realm or service part in it.
        if (auto bytes = negotiate::base64_decode(text))
            check(negotiate::base64_encode(*bytes) == text);
        if (auto user = negotiate::user_of_principal(text, "HEIRLOOM.TEST"))
            check(!user->empty() && user->find_first_of("@/\\") == std::string::npos);
        break;
    default:
        (void)parse_config(text);
        break;
    }
    return 0;
}
