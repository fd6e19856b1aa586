// Fuzzes the guest channel as both ends see it: any bytes, cut anywhere, go through the frame
// reader and the strict message parser for each direction and must give messages or errors,
// never a crash. A message that parses must encode again and parse back to itself, and a
// base64 text that decodes must be the canonical encoding of its bytes.
#include "heirloom/agent/guest_protocol.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

using namespace heirloom::guest;

namespace {

template <class Message, class Parse>
void check_round_trip(std::string_view payload, Parse&& parse) {
    auto message = parse(payload);
    if (!message)
        return;
    auto frame = encode(Message(*message));
    if (!frame)
        std::abort();
    auto again = parse(
        std::string_view(reinterpret_cast<const char*>(frame->data()) + 4, frame->size() - 4));
    if (!again || !(*again == *message))
        std::abort();
}

// Feeds the stream in two slices cut where its first byte says, as a peer's reads might.
template <class Message, class Parse> void read_stream(std::string_view stream, Parse&& parse) {
    FrameReader reader;
    std::size_t cut = stream.empty() ? 0 : static_cast<unsigned char>(stream[0]) % stream.size();
    for (auto slice : {stream.substr(0, cut), stream.substr(cut)}) {
        auto payloads = reader.feed(slice);
        if (!payloads)
            return;
        for (const auto& payload : *payloads)
            check_round_trip<Message>(payload, parse);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view bytes(reinterpret_cast<const char*>(data), size);
    auto guest = [](std::string_view p) {
        return parse_guest_message(p);
    };
    auto host = [](std::string_view p) {
        return parse_host_message(p);
    };
    read_stream<GuestMessage>(bytes, guest);
    read_stream<HostMessage>(bytes, host);
    check_round_trip<GuestMessage>(bytes, guest);
    check_round_trip<HostMessage>(bytes, host);
    if (auto decoded = base64_decode(bytes); decoded && base64_encode(*decoded) != bytes)
        std::abort();
    return 0;
}
