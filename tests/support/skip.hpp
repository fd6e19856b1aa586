#pragma once

// Skipping a test whose component (slapd, nginx, libfaketime, qemu-img, lxpanel...) is not
// installed. On a developer's machine a skip is a warning, counted in the summary at the end of
// the run and reported to CTest as a skipped test (not a pass). Under CI (CI=true) and in
// tests/run-all.sh (HEIRLOOM_REQUIRE_ALL=1) it fails the test instead: there
// installer/install-deps.sh has installed every component, and a test that did not run must
// not count as one that passed.
//
// Usage:
//     if (!test::have_program("qemu-img"))
//         HL_SKIP("qemu-img is not installed");

#include <catch2/catch.hpp>
#include <string>
#include <string_view>

namespace heirloom::test {

// True when a missing component must fail the test rather than skip it (CI=true or
// HEIRLOOM_REQUIRE_ALL set to anything but 0).
bool components_required();

// What a skip's warning starts with: the run's summary counts the test cases that warned with
// it, and CTest marks a test whose output holds it as skipped (tests/CMakeLists.txt).
inline constexpr std::string_view skip_marker = "heirloom-skip: ";

} // namespace heirloom::test

// Ends the current test as skipped (a warning with the reason), or fails it with the reason
// when components are required.
#define HL_SKIP(reason)                                                                            \
    do {                                                                                           \
        const std::string hl_skip_reason_ = (reason);                                              \
        if (::heirloom::test::components_required())                                               \
            FAIL(hl_skip_reason_ << " (a missing component fails the run under CI=true and "       \
                                    "HEIRLOOM_REQUIRE_ALL=1; run installer/install-deps.sh)");     \
        WARN(::heirloom::test::skip_marker << hl_skip_reason_);                                    \
        return;                                                                                    \
    } while (0)
