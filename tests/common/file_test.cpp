// File helpers of common/: whole-file reads must return exactly the file's bytes.

#include "heirloom/common/file.hpp"
#include "support/support.hpp"

#include <catch2/catch.hpp>

using namespace heirloom;

TEST_CASE("read_text_file and read_file return exactly the file, at every small size", "[file]") {
    test::TempDir dir;
    // Sizes around the short-string buffer (15 bytes) and its first growth (30) included:
    // libstdc++ 12 once made a 16-byte read come back 30 bytes long.
    for (std::size_t n = 0; n <= 70; ++n) {
        std::string text(n, 'x');
        for (std::size_t i = 0; i < n; ++i)
            text[i] = static_cast<char>('a' + i % 26);
        test::write_file(dir / "f", as_bytes(text));
        auto read = read_text_file(dir / "f");
        REQUIRE(read);
        CHECK(*read == text);
        auto bytes = read_file(dir / "f");
        REQUIRE(bytes);
        CHECK(bytes->size() == n);
    }
    test::write_file(dir / "big", as_bytes(std::string(100000, 'q')));
    CHECK(read_text_file(dir / "big", 100000)->size() == 100000);
    auto refused = read_text_file(dir / "big", 99999);
    REQUIRE_FALSE(refused);
    CHECK_THAT(refused.error().message, Catch::Contains("too large"));
}
