// The guest channel's protocol: every message both ways, framing cut anywhere, and hostile
// payloads from either side, each refused with an error naming the problem.

#include "guest/desktop_entry.hpp"
#include "heirloom/agent/guest_protocol.hpp"
#include "support/guest_frames.hpp"
#include "support/support.hpp"

#include <catch2/catch.hpp>

using namespace heirloom;
using namespace heirloom::guest;
using namespace heirloom::test;

namespace {

bool is_printable_ascii(std::string_view text) {
    return std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

std::vector<GuestMessage> every_guest_message() {
    App full{"org.example.editor",
             "Editor — Ünïcode ✓",
             "/usr/bin/editor --new %F",
             fake_png(300),
             {"text/plain", "application/vnd.oasis.opendocument.text"}};
    App bare{"7zip", "7-Zip", "7z", {}, {}};
    return {GuestHello{"0.1.0", "payroll-vm"},
            AppList{{full, bare}},
            AppList{},
            Launched{42, 1234},
            LaunchFailed{43, "program /x is not installed\nsecond line\ttab"},
            Exited{1234, 3},
            Exited{1, 255},
            TimeSet{1'700'000'000'123},
            ControlsApplied{{Direction::host_to_guest, Direction::both, true, false}},
            GuestError{"something went wrong"},
            Pong{max_counter}};
}

std::vector<HostMessage> every_host_message() {
    return {HostHello{},
            ListApps{},
            Launch{7, "org.example.editor", {"/home/u/a file.txt", "", "$(rm -rf /)", "ü"}, {}},
            Launch{0, "x", {}, {}},
            Launch{3, "ledger", {"--file", "a b"}, {"/usr/bin/ledger", "-q"}},
            SetTime{0},
            SetTime{max_unix_ms},
            Controls{{Direction::off, Direction::guest_to_host, false, true}},
            Ping{0}};
}

// Feeds text to a fresh reader and returns every payload, or the error.
Result<std::vector<std::string>> read_frames(std::string_view stream, std::size_t chunk) {
    FrameReader reader;
    std::vector<std::string> all;
    for (std::size_t pos = 0; pos < stream.size(); pos += chunk) {
        auto frames = reader.feed(stream.substr(pos, chunk));
        if (!frames)
            return std::unexpected(frames.error());
        all.insert(all.end(), frames->begin(), frames->end());
    }
    return all;
}

} // namespace

TEST_CASE("guest protocol: every message survives encode, framing and strict parsing", "[guest]") {
    SECTION("guest to host") {
        for (const auto& message : every_guest_message()) {
            INFO(message_type(message));
            auto frame = encode(message);
            REQUIRE(frame);
            auto frames = read_frames(as_text(*frame), frame->size());
            REQUIRE(frames);
            REQUIRE(frames->size() == 1);
            auto back = parse_guest_message(frames->front());
            REQUIRE(back);
            CHECK(*back == message);
            CHECK(decode_guest_message(to_json(message)).value() == message);
            // The direction matters: a guest message is not a host message (hello aside).
            if (message_type(message) != "hello")
                CHECK_FALSE(parse_host_message(frames->front()));
        }
    }
    SECTION("host to guest") {
        for (const auto& message : every_host_message()) {
            INFO(message_type(message));
            auto frame = encode(message);
            REQUIRE(frame);
            auto frames = read_frames(as_text(*frame), 1);
            REQUIRE(frames);
            REQUIRE(frames->size() == 1);
            auto back = parse_host_message(frames->front());
            REQUIRE(back);
            CHECK(*back == message);
            if (message_type(message) != "hello")
                CHECK_FALSE(parse_guest_message(frames->front()));
        }
    }
    SECTION("the wire form is what docs/guest-protocol.md shows") {
        auto hello = encode(GuestMessage(GuestHello{"1.0", "vm"}));
        REQUIRE(hello);
        CHECK(as_text(*hello).substr(4) ==
              R"({"guest_version":"1.0","hostname":"vm","type":"hello","v":1})");
        CHECK(as_text(*hello).substr(0, 4) == std::string("\0\0\0\x3c", 4));
        auto launch = encode(HostMessage(Launch{1, "app", {"a"}, {}}));
        REQUIRE(launch);
        CHECK(as_text(*launch).substr(4) ==
              R"({"app_id":"app","args":["a"],"req":1,"type":"launch"})");
    }
}

TEST_CASE("guest protocol: the frame reader takes any slicing and dies on a bad length",
          "[guest]") {
    std::string stream;
    std::vector<GuestMessage> messages = every_guest_message();
    for (const auto& message : messages)
        stream += as_text(encode(message).value());

    SECTION("split at every byte, in two pieces, gives the same messages") {
        for (std::size_t cut = 0; cut <= stream.size(); cut += (cut < 600 ? 1 : 97)) {
            FrameReader reader;
            auto first = reader.feed(std::string_view(stream).substr(0, cut));
            auto second = reader.feed(std::string_view(stream).substr(cut));
            REQUIRE(first);
            REQUIRE(second);
            first->insert(first->end(), second->begin(), second->end());
            REQUIRE(first->size() == messages.size());
            for (std::size_t i = 0; i < messages.size(); ++i)
                CHECK(parse_guest_message((*first)[i]).value() == messages[i]);
            CHECK(reader.buffered() == 0);
        }
    }
    SECTION("byte by byte, and all at once") {
        for (std::size_t chunk : {std::size_t{1}, std::size_t{3}, stream.size()}) {
            auto frames = read_frames(stream, chunk);
            REQUIRE(frames);
            CHECK(frames->size() == messages.size());
        }
    }
    SECTION("a partial frame is held until it completes") {
        FrameReader reader;
        auto frames = reader.feed(raw_frame("{\"type\":\"pong\",\"seq\":1}").substr(0, 10));
        REQUIRE(frames);
        CHECK(frames->empty());
        CHECK(reader.buffered() == 10);
    }
    SECTION("a zero length breaks the stream for good") {
        FrameReader reader;
        auto frames = reader.feed(raw_frame(""));
        REQUIRE_FALSE(frames);
        CHECK(frames.error().message.find("frame length 0") != std::string::npos);
        CHECK(reader.failed());
        CHECK_FALSE(reader.feed(stream));
    }
    SECTION("a length over 1 MiB is refused from its header, before any payload") {
        for (std::uint32_t length : {std::uint32_t(max_frame_size + 1), 0xffffffffu, 0x80000000u}) {
            FrameReader reader;
            auto frames = reader.feed(raw_frame("", length));
            REQUIRE_FALSE(frames);
            CHECK(frames.error().message.find(std::to_string(length)) != std::string::npos);
            CHECK(reader.buffered() <= 4);
        }
    }
    SECTION("exactly 1 MiB is a frame") {
        std::string payload(max_frame_size, 'x');
        auto frames = read_frames(raw_frame(payload), 65536);
        REQUIRE(frames);
        REQUIRE(frames->size() == 1);
        CHECK(frames->front().size() == max_frame_size);
        CHECK_FALSE(parse_guest_message(frames->front()));
    }
    SECTION("a good frame then a bad header: the stream is dead") {
        FrameReader reader;
        REQUIRE(reader.feed(stream.substr(0, 30)));
        CHECK_FALSE(reader.feed(stream.substr(30) + raw_frame("", 0)));
        CHECK_FALSE(reader.feed(stream));
    }
}

TEST_CASE("guest protocol: hostile payloads are refused with an error naming the problem",
          "[guest]") {
    std::string deep_array = std::string(100000, '[') + std::string(100000, ']');
    std::string deep_in_message =
        R"({"type":"pong","seq":1,"x":)" + std::string(9, '[') + std::string(9, ']') + "}";
    std::string many_apps = R"({"type":"apps","apps":[)";
    for (std::size_t i = 0; i <= max_apps; ++i)
        many_apps += (i ? "," : "") + std::string(R"({"id":"a)") + std::to_string(i) +
                     R"(","name":"n","command":"c","file_types":[]})";
    many_apps += "]}";
    auto app_with = [](std::string_view field_json) {
        return std::string(R"({"type":"apps","apps":[{"id":"app","name":"App","command":"run",)") +
               std::string(field_json) + "}]}";
    };
    std::string big_icon = base64_encode(fake_png(max_icon_bytes + 1));

    struct Case {
        std::string payload;
        std::string expected; // a part of the error message
    };
    std::vector<Case> cases = {
        {"", "empty message"},
        {"hello", "malformed JSON"},
        {"{\"type\":\"pong\",\"seq\":1", "malformed JSON"},
        {"{\"type\":\"pong\",\"seq\":1} {}", "malformed JSON"},
        {"{\"type\":\"pong\",\"seq\":1}x", "malformed JSON"},
        {"{\"type\":\"pong\",/*c*/\"seq\":1}", "malformed JSON"},
        {"{\"type\":\"pong\",\"seq\":NaN}", "malformed JSON"},
        {"{\"type\":\"pong\",\"seq\":1e400}", "malformed JSON"},
        {"[]", "must be a JSON object, not an array"},
        {"\"hello\"", "must be a JSON object, not a string"},
        {"{}", "no \"type\""},
        {"{\"type\":5}", "\"type\" must be a string"},
        {"{\"type\":\"bogus\"}", "unknown message type \"bogus\" from the guest"},
        {"{\"type\":\"launch\",\"req\":1,\"app_id\":\"a\",\"args\":[]}",
         "unknown message type \"launch\""},
        {"{\"type\":\"pong\",\"seq\":1,\"seq\":2}", "duplicate key \"seq\""},
        {"{\"type\":\"pong\",\"type\":\"pong\",\"seq\":1}", "duplicate key \"type\""},
        {deep_array, "nested deeper than 8 levels"},
        {deep_in_message, "nested deeper than 8 levels"},
        {"{\"type\":\"pong\"}", "missing field \"seq\""},
        {"{\"type\":\"pong\",\"seq\":1,\"extra\":true}", "unexpected field \"extra\""},
        {"{\"type\":\"pong\",\"seq\":1,\"\\u0001\":true}", "unexpected field \"\\x01\""},
        {"{\"type\":\"pong\",\"seq\":-1}", "out of range"},
        {"{\"type\":\"pong\",\"seq\":9007199254740992}", "out of range"},
        {"{\"type\":\"pong\",\"seq\":18446744073709551615}", "out of range"},
        {"{\"type\":\"pong\",\"seq\":1.5}", "must be an integer, not a fractional number"},
        {"{\"type\":\"pong\",\"seq\":1e3}", "must be an integer"},
        {"{\"type\":\"pong\",\"seq\":99999999999999999999999}", "must be an integer"},
        {"{\"type\":\"pong\",\"seq\":\"1\"}", "must be an integer, not a string"},
        {"{\"type\":\"pong\",\"seq\":null}", "must be an integer, not null"},
        {"{\"type\":\"hello\",\"guest_version\":\"1\",\"hostname\":\"h\"}", "missing field \"v\""},
        {"{\"type\":\"hello\",\"v\":2,\"guest_version\":\"1\",\"hostname\":\"h\"}",
         "protocol version 2 is not supported"},
        {"{\"type\":\"hello\",\"v\":\"1\",\"guest_version\":\"1\",\"hostname\":\"h\"}",
         "must be an integer"},
        {"{\"type\":\"hello\",\"v\":1,\"guest_version\":\"1\",\"hostname\":\"a\\nb\"}",
         "control or formatting character (U+000A)"},
        {"{\"type\":\"hello\",\"v\":1,\"guest_version\":\"1\",\"hostname\":\"\"}", "is empty"},
        {"{\"type\":\"hello\",\"v\":1,\"guest_version\":\"1\",\"hostname\":\"" +
             std::string(129, 'h') + "\"}",
         "longer than 128 bytes"},
        {"{\"type\":\"error\",\"message\":\"a\\u0000b\"}", "U+0000"},
        {"{\"type\":\"error\",\"message\":\"\\u001b[31mred\"}", "U+001B"},
        {"{\"type\":\"error\",\"message\":\"" + std::string(1025, 'm') + "\"}",
         "longer than 1024 bytes"},
        {"{\"type\":\"error\",\"message\":\"\xff\xfe\"}", "malformed JSON"},
        {"{\"type\":\"error\",\"message\":\"\xc0\xaf\"}", "malformed JSON"},
        {"{\"type\":\"error\",\"message\":\"\xed\xa0\x80\"}", "malformed JSON"},
        {"{\"type\":\"error\",\"message\":\"\\ud800\"}", "malformed JSON"},
        {"{\"type\":\"launched\",\"req\":1,\"pid\":0}", "\"pid\" is out of range (1 to"},
        {"{\"type\":\"launched\",\"req\":1,\"pid\":-5}", "\"pid\" is out of range"},
        {"{\"type\":\"launched\",\"req\":1,\"pid\":4194305}", "\"pid\" is out of range"},
        {"{\"type\":\"exited\",\"pid\":10,\"code\":256}", "\"code\" is out of range (0 to 255)"},
        {"{\"type\":\"time_set\",\"unix_ms\":-1}", "\"unix_ms\" is out of range"},
        {"{\"type\":\"time_set\",\"unix_ms\":253402300800000}", "\"unix_ms\" is out of range"},
        {"{\"type\":\"controls_applied\",\"clipboard\":\"sideways\",\"file_transfer\":\"off\","
         "\"printing\":false,\"removable_media\":false}",
         "must be one of off, host-to-guest, guest-to-host, both, not \"sideways\""},
        {"{\"type\":\"controls_applied\",\"clipboard\":\"off\",\"file_transfer\":\"off\","
         "\"printing\":\"no\",\"removable_media\":false}",
         "\"printing\" must be a boolean, not a string"},
        {"{\"type\":\"apps\",\"apps\":{}}", "\"apps\" must be an array, not an object"},
        {"{\"type\":\"apps\",\"apps\":[1]}", "apps[0]: must be an object, not an integer"},
        {many_apps, "513 entries, more than the limit of 512"},
        {app_with("\"file_types\":[],\"id\":\"x\""), "duplicate key \"id\""},
        {R"({"type":"apps","apps":[{"id":"app","name":"A","file_types":[]}]})",
         "apps[0]: missing field \"command\""},
        {app_with("\"file_types\":[],\"exec\":\"rm\""), "unexpected field \"exec\""},
        {R"({"type":"apps","apps":[{"id":"App","name":"A","command":"c","file_types":[]}]})",
         "\"App\" is not an app id"},
        {R"({"type":"apps","apps":[{"id":"..","name":"A","command":"c","file_types":[]}]})",
         "\"..\" is not an app id"},
        {R"({"type":"apps","apps":[{"id":"../etc","name":"A","command":"c","file_types":[]}]})",
         "is not an app id"},
        {R"({"type":"apps","apps":[{"id":"a/b","name":"A","command":"c","file_types":[]}]})",
         "is not an app id"},
        {R"({"type":"apps","apps":[{"id":")" + std::string(65, 'a') +
             R"(","name":"A","command":"c","file_types":[]}]})",
         "longer than 64 bytes"},
        {R"({"type":"apps","apps":[{"id":"a","name":"A","command":"c","file_types":[]},)"
         R"({"id":"a","name":"B","command":"c","file_types":[]}]})",
         "apps[1]: duplicate app id \"a\""},
        {R"({"type":"apps","apps":[{"id":"a","name":"Calc\u202egpj.exe","command":"c",)"
         R"("file_types":[]}]})",
         "U+202E"},
        {R"({"type":"apps","apps":[{"id":"a","name":"A\u0085","command":"c","file_types":[]}]})",
         "U+0085"},
        {app_with("\"file_types\":[],\"name\":\"x\""), "duplicate key \"name\""},
        {R"({"type":"apps","apps":[{"id":"a","name":"A","command":")" + std::string(4097, 'c') +
             R"(","file_types":[]}]})",
         "longer than 4096 bytes"},
        {app_with("\"file_types\":[\"text\"]"), "\"file_types\"[0] \"text\" is not a MIME type"},
        {app_with("\"file_types\":[\"text/plain\",\"a/b/c\"]"), "[1] \"a/b/c\" is not a MIME"},
        {app_with("\"file_types\":[\"text/pl ain\"]"), "is not a MIME type"},
        {app_with("\"file_types\":[7]"), "must be a string, not an integer"},
        {app_with("\"file_types\":[],\"icon_png\":\"abc\""), "not valid base64"},
        {app_with("\"file_types\":[],\"icon_png\":\"ab!d\""), "not valid base64 (bad character"},
        {app_with("\"file_types\":[],\"icon_png\":\"QQ=A\""), "not valid base64"},
        {app_with("\"file_types\":[],\"icon_png\":\"QR==\""), "non-canonical"},
        {app_with("\"file_types\":[],\"icon_png\":\"aGVsbG8gd29ybGQh\""), "not a PNG image"},
        {app_with("\"file_types\":[],\"icon_png\":\"" + big_icon + "\""), "larger than 256 KiB"},
        {app_with("\"file_types\":[],\"icon_png\":null"), "must be a string, not null"},
    };
    REQUIRE(cases.size() >= 30);
    for (const auto& c : cases) {
        INFO("payload: " << c.payload.substr(0, 200));
        auto result = parse_guest_message(c.payload);
        REQUIRE_FALSE(result);
        INFO("error: " << result.error().message);
        CHECK(result.error().message.find(c.expected) != std::string::npos);
        CHECK((result.error().code == Errc::corrupt || result.error().code == Errc::unsupported));
        // Errors may be logged and sent on: they never carry the hostile bytes themselves.
        CHECK(is_printable_ascii(result.error().message));
        CHECK(result.error().message.size() < 600);
    }
}

TEST_CASE("guest protocol: the guest parses host messages just as strictly", "[guest]") {
    struct Case {
        std::string payload;
        std::string expected;
    };
    std::vector<Case> cases = {
        {R"({"type":"hello","v":1,"extra":1})", "unexpected field \"extra\""},
        {R"({"type":"hello"})", "missing field \"v\""},
        {R"({"type":"apps","apps":[]})", "unknown message type \"apps\" from the host"},
        {R"({"type":"list_apps","all":true})", "unexpected field \"all\""},
        {R"({"type":"launch","req":1,"app_id":"a","args":[],"command":"rm -rf /"})",
         "\"command\" must be an array"},
        {R"({"type":"launch","req":1,"app_id":"a","args":[],"command":["rm","-rf","/"]})",
         "absolute program path"},
        {R"({"type":"launch","req":1,"app_id":"a","args":[],"command":[]})", "must name a program"},
        {R"({"type":"launch","req":1,"app_id":"a","args":[],"command":["\\\\srv\\x.exe"]})", "UNC"},
        {R"({"type":"launch","req":1,"app_id":"a","args":[],"command":["C:\\a\\..\\x.exe"]})",
         "\"..\" component"},
        {R"({"type":"launch","req":1,"app_id":"a","args":[],"command":["C:/x.exe"]})",
         "backslashes"},
        {R"({"type":"launch","req":1,"app_id":"a","args":[],"command":["C:\\x.bat"]})", ".exe"},
        {R"({"type":"launch","req":1,"app_id":"A b","args":[]})", "is not an app id"},
        {R"({"type":"launch","req":1,"app_id":"a","args":["x\u0000y"]})", "U+0000"},
        {R"({"type":"launch","req":1,"app_id":"a","args":[1]})", "\"args\"[0] must be a string"},
        {R"({"type":"launch","req":1,"app_id":"a","args":"x"})", "\"args\" must be an array"},
        {R"({"type":"launch","req":-1,"app_id":"a","args":[]})", "\"req\" is out of range"},
        {R"({"type":"set_time","unix_ms":1.0})", "must be an integer"},
        {R"({"type":"controls","clipboard":"both","file_transfer":"both","printing":true})",
         "missing field \"removable_media\""},
        {R"({"type":"controls","clipboard":"BOTH","file_transfer":"both","printing":true,)"
         R"("removable_media":true})",
         "not \"BOTH\""},
        {R"({"type":"ping","seq":{}})", "must be an integer, not an object"},
    };
    std::string many_args = R"({"type":"launch","req":1,"app_id":"a","args":[)";
    for (std::size_t i = 0; i <= max_args; ++i)
        many_args += i ? ",\"x\"" : "\"x\"";
    cases.push_back({many_args + "]}", "65 entries, more than the limit of 64"});
    cases.push_back({R"({"type":"launch","req":1,"app_id":"a","args":[")" +
                         std::string(max_command_bytes + 1, 'a') + "\"]}",
                     "longer than 4096 bytes"});
    for (const auto& c : cases) {
        INFO("payload: " << c.payload.substr(0, 200));
        auto result = parse_host_message(c.payload);
        REQUIRE_FALSE(result);
        INFO("error: " << result.error().message);
        CHECK(result.error().message.find(c.expected) != std::string::npos);
    }
}

TEST_CASE("guest protocol: senders cannot emit what the peer would refuse", "[guest]") {
    CHECK_FALSE(encode(GuestMessage(Launched{1, 0})));
    CHECK_FALSE(encode(GuestMessage(GuestError{"bell\a"})));
    CHECK_FALSE(encode(GuestMessage(GuestHello{"1", "bad\xff"})));
    CHECK_FALSE(encode(GuestMessage(Pong{max_counter + 1})));
    CHECK_FALSE(encode(HostMessage(Launch{1, "../x", {}, {}})));
    // A policy command line must name its program by absolute path.
    CHECK_FALSE(encode(HostMessage(Launch{1, "x", {}, {"sh", "-c", "true"}})));
    CHECK_FALSE(
        parse_host_message(R"({"type":"launch","req":1,"app_id":"x","args":[],"command":[]})"));
    CHECK_FALSE(parse_host_message(
        R"({"type":"launch","req":1,"app_id":"x","args":[],"command":"/bin/sh"})"));
    // ... or by a Windows path the strict parser takes (the guest runs it under Wine).
    CHECK_FALSE(encode(HostMessage(Launch{1, "x", {}, {"C:\\Apps\\..\\x.exe"}})));
    CHECK_FALSE(encode(HostMessage(Launch{1, "x", {}, {"\\\\?\\C:\\x.exe"}})));
    Launch windows{1, "pay", {"/tmp/f.txt"}, {"C:\\Apps\\Payroll\\PAY.EXE", "/s"}};
    auto windows_frame = encode(HostMessage(windows));
    REQUIRE(windows_frame);
    auto windows_back = parse_host_message(std::string(
        reinterpret_cast<const char*>(windows_frame->data()) + 4, windows_frame->size() - 4));
    REQUIRE(windows_back);
    CHECK(std::get<Launch>(*windows_back) == windows);
    CHECK_FALSE(encode(HostMessage(SetTime{-1})));
    AppList too_many;
    for (std::size_t i = 0; i <= max_apps; ++i)
        too_many.apps.push_back({"a" + std::to_string(i), "n", "c", {}, {}});
    auto refused = encode(GuestMessage(too_many));
    REQUIRE_FALSE(refused);
    CHECK(refused.error().message.find("refusing to send an invalid apps") != std::string::npos);
    // Valid, but too large for one frame: three icons of 256 KiB are 1 MiB of base64.
    AppList too_big;
    for (int i = 0; i < 4; ++i)
        too_big.apps.push_back({"a" + std::to_string(i), "n", "c", fake_png(max_icon_bytes), {}});
    CHECK_FALSE(encode(GuestMessage(too_big)));
    auto [icons, apps] = fit_into_frame(too_big.apps);
    CHECK(icons >= 1);
    CHECK(apps == 0);
    CHECK(too_big.apps.size() == 4);
    CHECK(encode(GuestMessage(too_big)));
}

TEST_CASE("guest protocol: strict base64, UTF-8 and names", "[guest]") {
    for (std::size_t n = 0; n < 12; ++n) {
        auto bytes = test::pseudo_random(n, n);
        std::vector<std::uint8_t> data(bytes.begin(), bytes.end());
        auto text = base64_encode(data);
        CHECK(text.size() % 4 == 0);
        CHECK(base64_decode(text).value() == data);
    }
    CHECK(base64_encode(std::vector<std::uint8_t>{'M', 'a'}) == "TWE=");
    for (std::string bad : {"TWE", "TW==x===", "T===", "TWE=TWE=", "TW E", "TWF\n", "TWF-"})
        CHECK_FALSE(base64_decode(bad));
    CHECK(is_valid_utf8("plain ✓ 𝄞"));
    CHECK_FALSE(is_valid_utf8("\xe2\x82"));
    CHECK_FALSE(is_valid_utf8("\xf4\x90\x80\x80")); // past U+10FFFF
    CHECK(is_clean_name("Calculator"));
    CHECK_FALSE(is_clean_name("Calc\xe2\x80\xae"
                              "exe")); // U+202E
    CHECK(is_valid_mime_type("application/vnd.ms-excel"));
    CHECK_FALSE(is_valid_mime_type("/plain"));
    CHECK(is_valid_app_id("0ad"));
    CHECK_FALSE(is_valid_app_id("-rf"));
}
