#pragma once

// The VHD format (Microsoft Virtual Hard Disk, spec v1.0): fixed and dynamic disks.
// The reader works on the virtual disk, not the file: a dynamic VHD stores 2 MiB blocks in
// allocation order behind per-block sector bitmaps, and unallocated blocks read as zeros.
// Parsing is strict: every footer and header field is checked, BAT entries are bounds-checked
// against the file, and differencing disks (parent locators) are refused.

#include "heirloom/common/bytes.hpp"
#include "heirloom/common/file.hpp"

#include <cstdint>
#include <optional>
#include <vector>

namespace heirloom::trim::vhd {

inline constexpr std::uint64_t sector_size = 512;
inline constexpr std::uint64_t footer_size = 512;
inline constexpr std::uint64_t dynamic_header_size = 1024;
inline constexpr std::uint32_t unallocated = 0xFFFFFFFF;
// The largest virtual size we accept (the VHD format tops out just below 2 TiB).
inline constexpr std::uint64_t max_virtual_size = 2040ull << 30;

enum class DiskType : std::uint32_t { fixed = 2, dynamic = 3, differencing = 4 };

struct Geometry {
    std::uint16_t cylinders = 0;
    std::uint8_t heads = 0;
    std::uint8_t sectors_per_track = 0;
};

// CHS geometry for a size, computed as the VHD specification's appendix prescribes.
Geometry geometry_for(std::uint64_t virtual_size);

struct Footer {
    std::uint32_t features = 2;
    std::uint32_t format_version = 0x00010000;
    std::uint64_t data_offset = 0; // offset of the dynamic header, or all ones for fixed disks
    std::uint32_t timestamp = 0;   // seconds since 2000-01-01 UTC
    std::array<std::uint8_t, 4> creator_application{'h', 'l', 'm', ' '};
    std::uint32_t creator_version = 0x00010000;
    std::uint32_t creator_host_os = 0x5769326B; // "Wi2k"
    std::uint64_t original_size = 0;
    std::uint64_t current_size = 0; // the virtual disk size
    Geometry geometry;
    DiskType disk_type = DiskType::dynamic;
    std::array<std::uint8_t, 16> unique_id{};
    std::uint8_t saved_state = 0;
};

struct DynamicHeader {
    std::uint64_t table_offset = 0;      // file offset of the BAT
    std::uint32_t max_table_entries = 0; // number of BAT entries
    std::uint32_t block_size = 2u << 20; // bytes of virtual disk per block (power of two)
};

// Parses and checks a 512-byte footer. file_size is the size of the whole file, used for
// bounds checks. Errors name the offending field.
Result<Footer> parse_footer(ByteView bytes, std::uint64_t file_size);
Bytes encode_footer(const Footer& footer);

// Parses and checks a 1024-byte dynamic disk header against its footer and the file size.
Result<DynamicHeader> parse_dynamic_header(ByteView bytes, const Footer& footer,
                                           std::uint64_t file_size);
Bytes encode_dynamic_header(const DynamicHeader& header);

// A read-only view of a VHD's virtual disk.
class Image {
  public:
    static Result<Image> open(const fs::path& path);

    std::uint64_t virtual_size() const { return footer_.current_size; }
    const Footer& footer() const { return footer_; }
    const std::optional<DynamicHeader>& dynamic_header() const { return dynamic_; }
    // Number of allocated data blocks (dynamic disks), for reporting.
    std::uint64_t allocated_blocks() const;

    // Reads virtual disk bytes at offset; unallocated ranges read as zeros. Thread-safe.
    Status read(std::uint64_t offset, MutableByteView out) const;
    // False only when the whole range is known to read as zeros without touching the file
    // (unallocated blocks of a dynamic disk). Lets callers skip sparse areas cheaply.
    bool may_hold_data(std::uint64_t offset, std::uint64_t length) const;

  private:
    Image() = default;
    fs::path path_;
    Fd fd_;
    Footer footer_;
    std::optional<DynamicHeader> dynamic_;
    std::vector<std::uint32_t> bat_; // sector offsets of each block's bitmap, or unallocated
    std::uint64_t bitmap_bytes_ = 0; // size of a block's sector bitmap, padded to a sector
};

// Writes a new dynamic VHD. Blocks are allocated in the order they are first written with
// non-zero data (so callers control the file's block order); writes that are entirely zero
// into an unallocated block allocate nothing. finish() writes the BAT and footers and syncs.
class DynamicWriter {
  public:
    static Result<DynamicWriter> create(const fs::path& path, std::uint64_t virtual_size,
                                        std::uint32_t block_size = 2u << 20);

    // Writes data at a virtual offset; offset and size must be multiples of 512.
    Status write(std::uint64_t offset, ByteView data);
    Status finish();
    std::uint64_t virtual_size() const { return footer_.current_size; }

  private:
    DynamicWriter() = default;
    Result<std::uint64_t> allocate(std::uint32_t block);
    fs::path path_;
    Fd fd_;
    Footer footer_;
    DynamicHeader header_;
    std::vector<std::uint32_t> bat_;
    std::uint64_t next_free_ = 0; // file offset where the next block goes
    std::uint64_t bitmap_bytes_ = 0;
    bool finished_ = false;
};

} // namespace heirloom::trim::vhd
