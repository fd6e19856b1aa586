#pragma once

// A Wine prefix for tests of heirloom-guest's Windows programs: a temporary folder laid out as
// wineboot leaves a prefix, as far as heirloom-guest looks (drive_c, dosdevices/c: and z:).

#include "support/support.hpp"

#include <string_view>

namespace heirloom::test {

// A Wine prefix as wineboot leaves it, as far as heirloom-guest looks: drive_c and the
// dosdevices links of C: and Z:.
struct FakeWinePrefix {
    TempDir dir;
    fs::path prefix = dir / "prefix";
    fs::path drive_c = prefix / "drive_c";

    FakeWinePrefix() {
        fs::create_directories(drive_c);
        fs::create_directories(prefix / "dosdevices");
        fs::create_symlink("../drive_c", prefix / "dosdevices" / "c:");
        fs::create_symlink("/", prefix / "dosdevices" / "z:");
    }
    // A program under drive_c whose bytes say which it is.
    void program(const fs::path& relative, std::string_view content = "MZ program") {
        write_file(drive_c / relative, as_bytes(content));
    }
};

} // namespace heirloom::test
