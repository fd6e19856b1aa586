// The lease clock's boot-time anchor: within one boot, setting the system clock back and
// leaving it running must not move the trusted time back, because CLOCK_BOOTTIME (which date(1)
// cannot set) keeps counting from the anchor. The anchor file is written as the clock itself
// would have written it some minutes ago, before the system clock was set back a day.

#include "heirloom/agent/clock.hpp"
#include "heirloom/agent/vault.hpp"
#include "heirloom/common/json.hpp"
#include "support/support.hpp"

#include <catch2/catch.hpp>
#include <ctime>

using namespace heirloom;
using namespace heirloom::agent;

namespace {

std::int64_t boottime() {
    timespec ts{};
    ::clock_gettime(CLOCK_BOOTTIME, &ts);
    return ts.tv_sec;
}

std::int64_t wall() {
    return static_cast<std::int64_t>(std::time(nullptr));
}

} // namespace

TEST_CASE("trusted clock: an anchor of this boot outlasts the system clock set back",
          "[agent][clock]") {
    test::TempDir dir;
    auto vault = Vault::open(dir / "vault");
    REQUIRE(vault);
    fs::path file = dir / "clock.json";
    auto clock = TrustedClock::load(*vault, file);
    REQUIRE(clock);
    REQUIRE(clock->save()); // an anchor of this boot, with its boot id
    auto text = vault->read_authenticated(file, "clock");
    REQUIRE(text);
    auto doc = parse_json(*text);
    REQUIRE(doc);

    // The anchor was taken `elapsed` seconds of this boot ago, when the system clock read a
    // day later than it does now minus those seconds: the clock has since been set back a day
    // and left running. The high-water mark is what the clock saved then, the anchor's time.
    const std::int64_t elapsed = std::min<std::int64_t>(boottime() - 1, 300);
    REQUIRE(elapsed >= 30); // the machine has been up long enough to tell the two apart
    const std::int64_t day = 86400;
    const std::int64_t anchor_wall = wall() + day - elapsed;
    (*doc)["anchor_wall"] = anchor_wall;
    (*doc)["anchor_boot"] = boottime() - elapsed;
    (*doc)["high_water"] = anchor_wall;

    SECTION("same boot: now is at least the anchor plus the boot time elapsed since") {
        REQUIRE(vault->write_authenticated(file, "clock", doc->dump()));
        auto later = TrustedClock::load(*vault, file);
        REQUIRE(later);
        std::int64_t now = later->now();
        INFO("now " << now << ", anchor " << anchor_wall << " + " << elapsed << " s");
        CHECK(now >= anchor_wall + elapsed);
        CHECK(now <= anchor_wall + elapsed + 5);
        CHECK(later->clock_behind() >= day - 5);
        // It keeps running from there, and a save keeps it.
        REQUIRE(later->save());
        auto again = TrustedClock::load(*vault, file);
        REQUIRE(again);
        CHECK(again->now() >= anchor_wall + elapsed);
    }

    SECTION("another boot: its boot time means nothing here, the high-water mark holds") {
        (*doc)["boot_id"] = "00000000-0000-0000-0000-000000000000";
        REQUIRE(vault->write_authenticated(file, "clock", doc->dump()));
        auto later = TrustedClock::load(*vault, file);
        REQUIRE(later);
        std::int64_t now = later->now();
        CHECK(now >= anchor_wall);
        CHECK(now < anchor_wall + elapsed);
    }
}
