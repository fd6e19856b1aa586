// The host-to-guest file message of the guest channel: parts round-trip, and malformed,
// truncated or oversized parts and hostile names are refused or made safe.

#include "heirloom/agent/guest_protocol.hpp"
#include "support/guest_frames.hpp"

#include <catch2/catch.hpp>

using namespace heirloom;
using namespace heirloom::guest;

TEST_CASE("guest protocol: file parts and the guest's answers", "[guest][shell]") {
    std::vector<std::uint8_t> data(max_file_part, 0x5a);
    std::vector<HostMessage> host = {
        FilePart{1, "report 2004.csv", 3 * max_file_part, max_file_part, data},
        FilePart{2, "empty.txt", 0, 0, {}}};
    for (const auto& m : host) {
        auto frame = encode(m);
        REQUIRE(frame);
        CHECK(frame->size() <= max_frame_size + 4);
        auto back = parse_host_message(test::as_text(*frame).substr(4));
        REQUIRE(back);
        CHECK(*back == m);
    }
    std::vector<GuestMessage> guest = {FileStored{7, "/tmp/heirloom-files-x/a.csv"},
                                       FileFailed{8, "file transfer from the host is off"}};
    for (const auto& m : guest) {
        auto back = parse_guest_message(test::as_text(encode(m).value()).substr(4));
        REQUIRE(back);
        CHECK(*back == m);
    }
}

TEST_CASE("guest protocol: malformed file parts are refused", "[guest][shell]") {
    std::string big(((max_file_part + 3) / 3 + 1) * 4, 'A');
    const std::vector<std::pair<std::string, std::string>> bad = {
        {R"({"type":"file","req":1,"name":"a","size":3,"offset":0})", "missing"},
        {R"({"type":"file","req":1,"name":"a","size":3,"offset":0,"data":"YWJj","x":1})",
         "unexpected"},
        {R"({"type":"file","req":1,"name":"","size":3,"offset":0,"data":"YWJj"})", "name"},
        {R"({"type":"file","req":1,"name":"a\nb","size":3,"offset":0,"data":"YWJj"})", "name"},
        {R"({"type":"file","req":1,"name":"a\u202eb","size":3,"offset":0,"data":"YWJj"})", "name"},
        {R"({"type":"file","req":1,"name":"a","size":2,"offset":0,"data":"YWJj"})", "past"},
        {R"({"type":"file","req":1,"name":"a","size":3,"offset":4,"data":""})", "offset"},
        {R"({"type":"file","req":1,"name":"a","size":3,"offset":1,"data":"YWJj"})", "past"},
        {R"({"type":"file","req":1,"name":"a","size":3,"offset":0,"data":""})", "empty"},
        {R"({"type":"file","req":1,"name":"a","size":3,"offset":0,"data":"YWJ"})", "data"},
        {R"({"type":"file","req":1,"name":"a","size":3,"offset":0,"data":"YW Jj"})", "data"},
        {R"({"type":"file","req":1,"name":"a","size":-1,"offset":0,"data":""})", "size"},
        {R"({"type":"file","req":1,"name":"a","size":268435457,"offset":0,"data":"YWJj"})", "size"},
        {R"({"type":"file","req":1,"name":"a","size":3.0,"offset":0,"data":"YWJj"})", "size"},
        {R"({"type":"file","req":"1","name":"a","size":3,"offset":0,"data":"YWJj"})", "req"},
        {R"({"type":"file","req":1,"name":"a","size":9999999,"offset":0,"data":")" + big + "\"}",
         "data"},
        {std::string(R"({"type":"file","req":1,"name":")") + std::string(300, 'n') +
             R"(","size":3,"offset":0,"data":"YWJj"})",
         "name"},
    };
    for (const auto& [payload, why] : bad) {
        INFO(payload.substr(0, 200));
        auto m = parse_host_message(payload);
        REQUIRE_FALSE(m);
        CHECK(m.error().message.find(why) != std::string::npos);
    }
    // Truncated: every prefix of a good part is refused.
    std::string good = R"({"type":"file","req":1,"name":"a","size":3,"offset":0,"data":"YWJj"})";
    REQUIRE(parse_host_message(good));
    for (std::size_t n = 0; n < good.size(); ++n)
        CHECK_FALSE(parse_host_message(good.substr(0, n)));
    // The guest's answers: a relative path is refused.
    CHECK_FALSE(parse_guest_message(R"({"type":"file_stored","req":1,"path":"a/b"})"));
    CHECK_FALSE(parse_guest_message(R"({"type":"file_stored","req":1,"path":"/a\nb"})"));
    CHECK_FALSE(parse_guest_message(R"({"type":"file_failed","req":1})"));
}

TEST_CASE("guest protocol: hostile file names become safe base names", "[guest][shell]") {
    CHECK(safe_file_name("report 2004.csv") == "report 2004.csv");
    CHECK(safe_file_name("../../etc/passwd") == "passwd");
    CHECK(safe_file_name("C:\\Windows\\win.ini") == "win.ini");
    CHECK(safe_file_name("..") == "file");
    CHECK(safe_file_name(".bashrc") == "bashrc");
    CHECK(safe_file_name("-rf") == "rf");
    CHECK(safe_file_name("") == "file");
    CHECK(safe_file_name("/") == "file");
    CHECK(safe_file_name("a$(id)`x`;|&.txt") == "a_(id)_x____.txt");
    CHECK(safe_file_name("new\nline\u202e.txt") == "new_line___.txt");
    CHECK(safe_file_name(std::string(500, 'x')).size() == 128);
}
