#include "heirloom/trim/vhd.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <string_view>
#include <sys/random.h>
#include <unistd.h>

namespace heirloom::trim::vhd {

namespace {

// Footer field offsets (VHD specification v1.0, "Hard Disk Footer Format").
constexpr std::size_t f_cookie = 0;
constexpr std::size_t f_features = 8;
constexpr std::size_t f_format_version = 12;
constexpr std::size_t f_data_offset = 16;
constexpr std::size_t f_timestamp = 24;
constexpr std::size_t f_creator_application = 28;
constexpr std::size_t f_creator_version = 32;
constexpr std::size_t f_creator_host_os = 36;
constexpr std::size_t f_original_size = 40;
constexpr std::size_t f_current_size = 48;
constexpr std::size_t f_cylinders = 56;
constexpr std::size_t f_heads = 58;
constexpr std::size_t f_sectors_per_track = 59;
constexpr std::size_t f_disk_type = 60;
constexpr std::size_t f_checksum = 64;
constexpr std::size_t f_unique_id = 68;
constexpr std::size_t f_saved_state = 84;
constexpr std::size_t f_reserved = 85;

// Dynamic disk header field offsets ("Dynamic Disk Header Format").
constexpr std::size_t h_cookie = 0;
constexpr std::size_t h_data_offset = 8;
constexpr std::size_t h_table_offset = 16;
constexpr std::size_t h_header_version = 24;
constexpr std::size_t h_max_table_entries = 28;
constexpr std::size_t h_block_size = 32;
constexpr std::size_t h_checksum = 36;
constexpr std::size_t h_parent_unique_id = 40;
constexpr std::size_t h_parent_timestamp = 56;
constexpr std::size_t h_reserved1 = 60;
constexpr std::size_t h_parent_unicode_name = 64;
constexpr std::size_t h_parent_locators = 576;
constexpr std::size_t h_reserved2 = 768;

constexpr std::string_view footer_cookie = "conectix";
constexpr std::string_view header_cookie = "cxsparse";
constexpr std::uint32_t format_version = 0x00010000;
constexpr std::uint32_t header_version = 0x00010000;
constexpr std::uint32_t feature_temporary = 0x1;
constexpr std::uint32_t feature_reserved = 0x2;
constexpr std::uint64_t no_data_offset = ~std::uint64_t{0};
constexpr std::uint32_t host_os_windows = 0x5769326B; // "Wi2k"
constexpr std::uint32_t host_os_mac = 0x4D616320;     // "Mac "
// Seconds from the Unix epoch to the VHD epoch, 2000-01-01 00:00:00 UTC.
constexpr std::int64_t vhd_epoch = 946684800;

std::uint64_t div_ceil(std::uint64_t a, std::uint64_t b) {
    return a / b + (a % b != 0);
}
std::uint64_t round_up(std::uint64_t a, std::uint64_t b) {
    return div_ceil(a, b) * b;
}

// One's complement of the byte sum, skipping the 4-byte checksum field itself.
std::uint32_t checksum(ByteView bytes, std::size_t checksum_offset) {
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i < bytes.size(); ++i)
        if (i < checksum_offset || i >= checksum_offset + 4)
            sum += bytes[i];
    return ~sum;
}

// The current time as VHD timestamps count it, clamped to the field's range.
std::uint32_t vhd_now() {
    auto unix_seconds = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    return static_cast<std::uint32_t>(
        std::clamp<std::int64_t>(unix_seconds - vhd_epoch, 0, 0xFFFFFFFF));
}

bool is_zero(ByteView bytes, std::size_t offset, std::size_t length) {
    return all_zero(bytes.subspan(offset, length));
}

// Shows a cookie as text when it is printable, as hex otherwise.
std::string show_cookie(ByteView cookie) {
    bool printable = std::all_of(cookie.begin(), cookie.end(),
                                 [](std::uint8_t c) { return c >= 0x20 && c < 0x7f; });
    if (printable)
        return "\"" + std::string(cookie.begin(), cookie.end()) + "\"";
    return "0x" + to_hex(cookie);
}

bool ranges_overlap(std::uint64_t a, std::uint64_t a_len, std::uint64_t b, std::uint64_t b_len) {
    return a < b + b_len && b < a + a_len;
}

std::unexpected<Error> footer_error(std::string message) {
    return fail(Errc::corrupt, "VHD footer: " + message);
}

std::unexpected<Error> header_error(std::string message) {
    return fail(Errc::corrupt, "VHD dynamic header: " + message);
}

} // namespace

Geometry geometry_for(std::uint64_t virtual_size) {
    // Transcribed from the specification's appendix "CHS Calculation".
    std::uint64_t total_sectors = virtual_size / sector_size;
    total_sectors = std::min<std::uint64_t>(total_sectors, 65535ull * 16 * 255);
    std::uint64_t sectors_per_track = 0;
    std::uint64_t heads = 0;
    std::uint64_t cylinder_times_heads = 0;
    if (total_sectors >= 65535ull * 16 * 63) {
        sectors_per_track = 255;
        heads = 16;
        cylinder_times_heads = total_sectors / sectors_per_track;
    } else {
        sectors_per_track = 17;
        cylinder_times_heads = total_sectors / sectors_per_track;
        heads = (cylinder_times_heads + 1023) / 1024;
        if (heads < 4)
            heads = 4;
        if (cylinder_times_heads >= heads * 1024 || heads > 16) {
            sectors_per_track = 31;
            heads = 16;
            cylinder_times_heads = total_sectors / sectors_per_track;
        }
        if (cylinder_times_heads >= heads * 1024) {
            sectors_per_track = 63;
            heads = 16;
            cylinder_times_heads = total_sectors / sectors_per_track;
        }
    }
    return Geometry{static_cast<std::uint16_t>(cylinder_times_heads / heads),
                    static_cast<std::uint8_t>(heads), static_cast<std::uint8_t>(sectors_per_track)};
}

Result<Footer> parse_footer(ByteView bytes, std::uint64_t file_size) {
    if (bytes.size() != footer_size)
        return footer_error(fmt::format("expected {} bytes, got {}", footer_size, bytes.size()));
    const std::uint8_t* p = bytes.data();
    ByteView cookie = bytes.subspan(f_cookie, 8);
    if (!std::equal(cookie.begin(), cookie.end(), footer_cookie.begin()))
        return footer_error(fmt::format("bad cookie (expected \"conectix\", found {}); not a VHD",
                                        show_cookie(cookie)));
    std::uint32_t stored = load_be32(p + f_checksum);
    std::uint32_t computed = checksum(bytes, f_checksum);
    if (stored != computed)
        return footer_error(
            fmt::format("bad checksum (stored {:#010x}, computed {:#010x})", stored, computed));

    Footer f;
    f.format_version = load_be32(p + f_format_version);
    if (f.format_version != format_version)
        return footer_error(fmt::format("file format version {:#010x} is not {:#010x}",
                                        f.format_version, format_version));
    std::uint32_t type = load_be32(p + f_disk_type);
    if (type == static_cast<std::uint32_t>(DiskType::differencing))
        return fail(Errc::unsupported,
                    "VHD footer: differencing VHDs (with a parent disk) are not supported");
    if (type != static_cast<std::uint32_t>(DiskType::fixed) &&
        type != static_cast<std::uint32_t>(DiskType::dynamic))
        return footer_error(fmt::format(
            "disk type {} is not valid (2 = fixed, 3 = dynamic, 4 = differencing)", type));
    f.disk_type = static_cast<DiskType>(type);

    f.features = load_be32(p + f_features);
    if ((f.features & feature_reserved) == 0 ||
        (f.features & ~(feature_reserved | feature_temporary)) != 0)
        return footer_error(fmt::format(
            "features {:#010x} are not valid (bit 0x2 must be set, only 0x1 may be added)",
            f.features));

    f.timestamp = load_be32(p + f_timestamp);
    std::copy_n(p + f_creator_application, 4, f.creator_application.begin());
    f.creator_version = load_be32(p + f_creator_version);
    f.creator_host_os = load_be32(p + f_creator_host_os);
    if (f.creator_host_os != host_os_windows && f.creator_host_os != host_os_mac)
        return footer_error(fmt::format("creator host OS {} is neither \"Wi2k\" nor \"Mac \"",
                                        show_cookie(bytes.subspan(f_creator_host_os, 4))));

    f.original_size = load_be64(p + f_original_size);
    if (f.original_size % sector_size != 0 || f.original_size > max_virtual_size)
        return footer_error(
            fmt::format("original size {} is not a multiple of 512 bytes up to the {} GiB limit",
                        f.original_size, max_virtual_size >> 30));
    f.current_size = load_be64(p + f_current_size);
    if (f.current_size % sector_size != 0)
        return footer_error(
            fmt::format("current size {} is not a multiple of 512 bytes", f.current_size));
    if (f.current_size > max_virtual_size)
        return footer_error(fmt::format("current size {} exceeds the VHD limit of {} GiB",
                                        f.current_size, max_virtual_size >> 30));

    // Virtual PC sizes disks by geometry and Hyper-V by current size; both keep the geometry
    // within the current size, so geometry addressing more than that is corrupt.
    f.geometry.cylinders = static_cast<std::uint16_t>((p[f_cylinders] << 8) | p[f_cylinders + 1]);
    f.geometry.heads = p[f_heads];
    f.geometry.sectors_per_track = p[f_sectors_per_track];
    if (f.geometry.heads > 16)
        return footer_error(
            fmt::format("disk geometry has {} heads (at most 16)", f.geometry.heads));
    std::uint64_t chs_bytes = std::uint64_t{f.geometry.cylinders} * f.geometry.heads *
                              f.geometry.sectors_per_track * sector_size;
    if (chs_bytes > f.current_size)
        return footer_error(
            fmt::format("disk geometry {}/{}/{} addresses {} bytes, more than the current size {}",
                        f.geometry.cylinders, f.geometry.heads, f.geometry.sectors_per_track,
                        chs_bytes, f.current_size));

    std::copy_n(p + f_unique_id, 16, f.unique_id.begin());
    f.saved_state = p[f_saved_state];
    if (f.saved_state == 1)
        return fail(Errc::unsupported, "VHD footer: saved state is set (the disk belongs to a "
                                       "suspended virtual machine; shut it down first)");
    if (f.saved_state != 0)
        return footer_error(fmt::format("saved state {} is not 0 or 1", f.saved_state));
    if (!is_zero(bytes, f_reserved, footer_size - f_reserved))
        return footer_error("reserved bytes are not zero");

    f.data_offset = load_be64(p + f_data_offset);
    if (f.disk_type == DiskType::fixed) {
        // The specification asks for "0xFFFFFFFF" in this 8-byte field; writers put either
        // all ones or that 32-bit value, so both are accepted.
        if (f.data_offset != no_data_offset && f.data_offset != 0xFFFFFFFFull)
            return footer_error(fmt::format("data offset {:#x} should be all ones for a fixed disk",
                                            f.data_offset));
        if (file_size < footer_size || file_size - footer_size != f.current_size)
            return footer_error(fmt::format("current size {} does not match the file: a fixed "
                                            "disk of {} bytes should hold {} bytes of data",
                                            f.current_size, file_size,
                                            file_size < footer_size ? 0 : file_size - footer_size));
        return f;
    }
    // A dynamic disk starts with a footer copy, so its header lies between that and the
    // trailing footer.
    if (f.data_offset < footer_size || file_size < 2 * footer_size + dynamic_header_size ||
        f.data_offset > file_size - footer_size - dynamic_header_size)
        return footer_error(
            fmt::format("data offset {:#x} does not place the {}-byte dynamic header between the "
                        "footer copy and the trailing footer of a {}-byte file",
                        f.data_offset, dynamic_header_size, file_size));
    return f;
}

Bytes encode_footer(const Footer& footer) {
    Bytes out(footer_size, 0);
    std::uint8_t* p = out.data();
    std::copy(footer_cookie.begin(), footer_cookie.end(), p + f_cookie);
    store_be32(p + f_features, footer.features);
    store_be32(p + f_format_version, footer.format_version);
    store_be64(p + f_data_offset, footer.data_offset);
    store_be32(p + f_timestamp, footer.timestamp);
    std::copy(footer.creator_application.begin(), footer.creator_application.end(),
              p + f_creator_application);
    store_be32(p + f_creator_version, footer.creator_version);
    store_be32(p + f_creator_host_os, footer.creator_host_os);
    store_be64(p + f_original_size, footer.original_size);
    store_be64(p + f_current_size, footer.current_size);
    p[f_cylinders] = static_cast<std::uint8_t>(footer.geometry.cylinders >> 8);
    p[f_cylinders + 1] = static_cast<std::uint8_t>(footer.geometry.cylinders);
    p[f_heads] = footer.geometry.heads;
    p[f_sectors_per_track] = footer.geometry.sectors_per_track;
    store_be32(p + f_disk_type, static_cast<std::uint32_t>(footer.disk_type));
    std::copy(footer.unique_id.begin(), footer.unique_id.end(), p + f_unique_id);
    p[f_saved_state] = footer.saved_state;
    store_be32(p + f_checksum, checksum(out, f_checksum));
    return out;
}

Result<DynamicHeader> parse_dynamic_header(ByteView bytes, const Footer& footer,
                                           std::uint64_t file_size) {
    if (bytes.size() != dynamic_header_size)
        return header_error(
            fmt::format("expected {} bytes, got {}", dynamic_header_size, bytes.size()));
    const std::uint8_t* p = bytes.data();
    ByteView cookie = bytes.subspan(h_cookie, 8);
    if (!std::equal(cookie.begin(), cookie.end(), header_cookie.begin()))
        return header_error(
            fmt::format("bad cookie (expected \"cxsparse\", found {})", show_cookie(cookie)));
    std::uint32_t stored = load_be32(p + h_checksum);
    std::uint32_t computed = checksum(bytes, h_checksum);
    if (stored != computed)
        return header_error(
            fmt::format("bad checksum (stored {:#010x}, computed {:#010x})", stored, computed));

    std::uint64_t data_offset = load_be64(p + h_data_offset);
    if (data_offset != no_data_offset)
        return header_error(fmt::format("data offset {:#x} is not all ones", data_offset));
    std::uint32_t version = load_be32(p + h_header_version);
    if (version != header_version)
        return header_error(
            fmt::format("header version {:#010x} is not {:#010x}", version, header_version));
    // Parent fields belong to differencing disks; a dynamic disk must leave them empty.
    if (!is_zero(bytes, h_parent_unique_id, 16))
        return header_error("parent unique id is set on a disk without a parent");
    if (load_be32(p + h_parent_timestamp) != 0)
        return header_error("parent timestamp is set on a disk without a parent");
    if (!is_zero(bytes, h_parent_unicode_name, h_parent_locators - h_parent_unicode_name))
        return header_error("parent unicode name is set on a disk without a parent");
    if (!is_zero(bytes, h_parent_locators, h_reserved2 - h_parent_locators))
        return header_error("parent locator entries are set on a disk without a parent");
    if (!is_zero(bytes, h_reserved1, 4) ||
        !is_zero(bytes, h_reserved2, dynamic_header_size - h_reserved2))
        return header_error("reserved bytes are not zero");

    DynamicHeader h;
    h.block_size = load_be32(p + h_block_size);
    if (h.block_size < sector_size || (h.block_size & (h.block_size - 1)) != 0)
        return header_error(
            fmt::format("block size {} is not a power of two multiple of 512", h.block_size));
    h.max_table_entries = load_be32(p + h_max_table_entries);
    std::uint64_t covered = std::uint64_t{h.max_table_entries} * h.block_size;
    if (covered < footer.current_size)
        return header_error(fmt::format(
            "max table entries {} of {}-byte blocks cover {} bytes, less than the current size {}",
            h.max_table_entries, h.block_size, covered, footer.current_size));
    if (covered > round_up(max_virtual_size, h.block_size))
        return header_error(
            fmt::format("max table entries {} of {}-byte blocks cover {} bytes, more than the "
                        "VHD limit of {} GiB",
                        h.max_table_entries, h.block_size, covered, max_virtual_size >> 30));

    h.table_offset = load_be64(p + h_table_offset);
    std::uint64_t table_bytes = std::uint64_t{h.max_table_entries} * 4;
    std::uint64_t end = file_size < footer_size ? 0 : file_size - footer_size;
    if (h.table_offset < footer_size || h.table_offset > end || table_bytes > end - h.table_offset)
        return header_error(fmt::format(
            "table offset {:#x} with {} entries does not lie between the footer copy and the "
            "trailing footer of a {}-byte file",
            h.table_offset, h.max_table_entries, file_size));
    if (ranges_overlap(h.table_offset, table_bytes, footer.data_offset, dynamic_header_size))
        return header_error(
            fmt::format("table offset {:#x} makes the BAT overlap the header at {:#x}",
                        h.table_offset, footer.data_offset));
    return h;
}

Bytes encode_dynamic_header(const DynamicHeader& header) {
    Bytes out(dynamic_header_size, 0);
    std::uint8_t* p = out.data();
    std::copy(header_cookie.begin(), header_cookie.end(), p + h_cookie);
    store_be64(p + h_data_offset, no_data_offset);
    store_be64(p + h_table_offset, header.table_offset);
    store_be32(p + h_header_version, header_version);
    store_be32(p + h_max_table_entries, header.max_table_entries);
    store_be32(p + h_block_size, header.block_size);
    store_be32(p + h_checksum, checksum(out, h_checksum));
    return out;
}

Result<Image> Image::open(const fs::path& path) {
    auto context = "VHD " + path.string();
    Image image;
    image.path_ = path;
    image.fd_ = HL_TRY_CTX(open_read(path), context);
    std::uint64_t size = HL_TRY_CTX(file_size(image.fd_.get(), path), context);
    if (size < footer_size)
        return fail(Errc::corrupt, fmt::format("{}: file is {} bytes, too small for a {}-byte VHD "
                                               "footer; not a VHD",
                                               context, size, footer_size));

    std::array<std::uint8_t, footer_size> trailing{};
    HL_TRY_CTX(pread_exact(image.fd_.get(), trailing, size - footer_size, path), context);
    std::array<std::uint8_t, footer_size> copy{};
    HL_TRY_CTX(pread_exact(image.fd_.get(), copy, 0, path), context);
    bool copy_has_cookie = std::equal(footer_cookie.begin(), footer_cookie.end(), copy.begin());
    bool trailing_has_cookie =
        std::equal(footer_cookie.begin(), footer_cookie.end(), trailing.begin());
    // A dynamic VHD cut short keeps its footer copy, so say so rather than "not a VHD".
    if (!trailing_has_cookie && copy_has_cookie)
        return fail(Errc::corrupt,
                    fmt::format("{}: VHD footer: missing at the end of the file (found {} where "
                                "the \"conectix\" cookie belongs, but the file starts with one; "
                                "is it truncated?)",
                                context, show_cookie(ByteView(trailing).first(8))));
    image.footer_ = HL_TRY_CTX(parse_footer(trailing, size), context);
    if (image.footer_.disk_type == DiskType::fixed)
        return image;

    // Dynamic disks mirror the footer at the start of the file; a mismatch means one of
    // the two was damaged or the file was spliced.
    if (copy != trailing)
        return fail(Errc::corrupt,
                    context + ": VHD footer: the copy at offset 0 differs from the footer at the "
                              "end of the file");
    std::array<std::uint8_t, dynamic_header_size> header_bytes{};
    HL_TRY_CTX(pread_exact(image.fd_.get(), header_bytes, image.footer_.data_offset, path),
               context);
    DynamicHeader header =
        HL_TRY_CTX(parse_dynamic_header(header_bytes, image.footer_, size), context);
    image.dynamic_ = header;
    image.bitmap_bytes_ = round_up(div_ceil(header.block_size / sector_size, 8), sector_size);

    Bytes table(std::size_t{header.max_table_entries} * 4);
    HL_TRY_CTX(pread_exact(image.fd_.get(), table, header.table_offset, path), context);
    image.bat_.resize(header.max_table_entries);
    std::vector<std::uint64_t> starts;
    const std::uint64_t span = image.bitmap_bytes_ + header.block_size;
    const std::uint64_t data_end = size - footer_size;
    for (std::size_t i = 0; i < image.bat_.size(); ++i) {
        std::uint32_t entry = load_be32(table.data() + 4 * i);
        image.bat_[i] = entry;
        if (entry == unallocated)
            continue;
        std::uint64_t start = std::uint64_t{entry} * sector_size;
        if (start < footer_size || start > data_end || span > data_end - start)
            return fail(Errc::corrupt,
                        fmt::format("{}: VHD BAT entry {}: block at sector {} (bitmap and data, "
                                    "{} bytes) does not lie between the footer copy and the "
                                    "trailing footer of a {}-byte file",
                                    context, i, entry, span, size));
        if (ranges_overlap(start, span, image.footer_.data_offset, dynamic_header_size))
            return fail(Errc::corrupt,
                        fmt::format("{}: VHD BAT entry {}: block at sector {} overlaps the "
                                    "dynamic header",
                                    context, i, entry));
        if (ranges_overlap(start, span, header.table_offset, table.size()))
            return fail(Errc::corrupt,
                        fmt::format("{}: VHD BAT entry {}: block at sector {} overlaps the BAT",
                                    context, i, entry));
        starts.push_back(start);
    }
    std::sort(starts.begin(), starts.end());
    for (std::size_t i = 1; i < starts.size(); ++i)
        if (starts[i] - starts[i - 1] < span)
            return fail(Errc::corrupt,
                        fmt::format("{}: VHD BAT: blocks at sectors {} and {} overlap", context,
                                    starts[i - 1] / sector_size, starts[i] / sector_size));
    return image;
}

std::uint64_t Image::allocated_blocks() const {
    return static_cast<std::uint64_t>(
        std::count_if(bat_.begin(), bat_.end(), [](std::uint32_t e) { return e != unallocated; }));
}

Status Image::read(std::uint64_t offset, MutableByteView out) const {
    const std::uint64_t size = footer_.current_size;
    if (offset > size || out.size() > size - offset)
        return fail(
            Errc::invalid_argument,
            fmt::format("VHD {}: read of {} bytes at {} is past the end of the {}-byte disk",
                        path_.string(), out.size(), offset, size));
    if (!dynamic_)
        return pread_exact(fd_.get(), out, offset, path_);

    // The sector bitmap is not consulted: it only matters for differencing disks, where a
    // clear bit sends the read to the parent. Writers of dynamic disks (Hyper-V, Virtual PC,
    // qemu) zero a block's data when allocating it, and qemu itself reads allocated blocks
    // as stored, so the stored data is the disk's content.
    const std::uint64_t block_size = dynamic_->block_size;
    std::size_t done = 0;
    while (done < out.size()) {
        std::uint64_t position = offset + done;
        std::uint64_t block = position / block_size;
        std::uint64_t within = position % block_size;
        std::size_t n = static_cast<std::size_t>(
            std::min<std::uint64_t>(out.size() - done, block_size - within));
        MutableByteView piece = out.subspan(done, n);
        std::uint32_t entry = bat_[block];
        if (entry == unallocated)
            std::memset(piece.data(), 0, piece.size());
        else
            HL_TRY(pread_exact(fd_.get(), piece,
                               std::uint64_t{entry} * sector_size + bitmap_bytes_ + within, path_));
        done += n;
    }
    return {};
}

bool Image::may_hold_data(std::uint64_t offset, std::uint64_t length) const {
    const std::uint64_t size = footer_.current_size;
    if (offset >= size || length == 0)
        return false;
    length = std::min(length, size - offset);
    if (!dynamic_)
        return true;
    const std::uint64_t block_size = dynamic_->block_size;
    std::uint64_t last = (offset + length - 1) / block_size;
    for (std::uint64_t block = offset / block_size; block <= last; ++block)
        if (bat_[block] != unallocated)
            return true;
    return false;
}

Result<DynamicWriter> DynamicWriter::create(const fs::path& path, std::uint64_t virtual_size,
                                            std::uint32_t block_size) {
    if (virtual_size == 0 || virtual_size % sector_size != 0 || virtual_size > max_virtual_size)
        return fail(Errc::invalid_argument,
                    fmt::format("VHD {}: virtual size {} is not a positive multiple of 512 bytes "
                                "up to {} GiB",
                                path.string(), virtual_size, max_virtual_size >> 30));
    if (block_size < sector_size || (block_size & (block_size - 1)) != 0)
        return fail(Errc::invalid_argument,
                    fmt::format("VHD {}: block size {} is not a power of two multiple of 512",
                                path.string(), block_size));

    DynamicWriter w;
    w.path_ = path;
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return fail_errno("create", path.string());
    w.fd_ = Fd(fd);

    w.footer_.data_offset = footer_size;
    w.footer_.timestamp = vhd_now();
    w.footer_.original_size = virtual_size;
    w.footer_.current_size = virtual_size;
    w.footer_.geometry = geometry_for(virtual_size);
    w.footer_.disk_type = DiskType::dynamic;
    // qemu sizes a VHD from its CHS geometry unless the creator is one it knows to record the
    // exact size ("win ", "qem2", ...). When the geometry cannot express the size exactly, use
    // qemu's own marker for "current size is exact", so qemu sees every byte; Hyper-V and
    // VirtualBox read the current size either way.
    const Geometry& g = w.footer_.geometry;
    if (std::uint64_t{g.cylinders} * g.heads * g.sectors_per_track * sector_size != virtual_size)
        w.footer_.creator_application = {'q', 'e', 'm', '2'};
    // A random unique id; the low-quality fallback only matters if getrandom is unavailable.
    if (::getrandom(w.footer_.unique_id.data(), w.footer_.unique_id.size(), 0) !=
        static_cast<ssize_t>(w.footer_.unique_id.size()))
        store_be64(w.footer_.unique_id.data(),
                   static_cast<std::uint64_t>(
                       std::chrono::steady_clock::now().time_since_epoch().count()));
    // Mark it as an RFC 4122 version 4 UUID, as other VHD writers do.
    w.footer_.unique_id[6] = static_cast<std::uint8_t>((w.footer_.unique_id[6] & 0x0f) | 0x40);
    w.footer_.unique_id[8] = static_cast<std::uint8_t>((w.footer_.unique_id[8] & 0x3f) | 0x80);

    w.header_.block_size = block_size;
    w.header_.max_table_entries = static_cast<std::uint32_t>(div_ceil(virtual_size, block_size));
    w.header_.table_offset = footer_size + dynamic_header_size;
    w.bat_.assign(w.header_.max_table_entries, unallocated);
    w.bitmap_bytes_ = round_up(div_ceil(block_size / sector_size, 8), sector_size);
    std::uint64_t table_bytes =
        round_up(std::uint64_t{w.header_.max_table_entries} * 4, sector_size);
    w.next_free_ = w.header_.table_offset + table_bytes;

    HL_TRY(pwrite_all(w.fd_.get(), encode_footer(w.footer_), 0, path));
    HL_TRY(pwrite_all(w.fd_.get(), encode_dynamic_header(w.header_), footer_size, path));
    // The placeholder BAT marks every block unallocated, so the space is reserved and a reader
    // never sees garbage there even before finish() writes the real table.
    Bytes placeholder(table_bytes, 0xFF);
    HL_TRY(pwrite_all(w.fd_.get(), placeholder, w.header_.table_offset, path));
    return w;
}

Result<std::uint64_t> DynamicWriter::allocate(std::uint32_t block) {
    std::uint64_t start = next_free_;
    std::uint64_t span = bitmap_bytes_ + header_.block_size;
    if (start / sector_size >= unallocated)
        return fail(Errc::invalid_argument,
                    fmt::format("VHD {}: block {} would start beyond the 2 TiB a BAT can address",
                                path_.string(), block));
    // Every sector of an allocated block is marked present. Its data area is left as a hole
    // until written, which reads back as zeros.
    static constexpr std::array<std::uint8_t, sector_size> ones = [] {
        std::array<std::uint8_t, sector_size> a{};
        a.fill(0xFF);
        return a;
    }();
    for (std::uint64_t done = 0; done < bitmap_bytes_; done += sector_size)
        HL_TRY(pwrite_all(fd_.get(), ones, start + done, path_));
    bat_[block] = static_cast<std::uint32_t>(start / sector_size);
    next_free_ = start + span;
    return start;
}

Status DynamicWriter::write(std::uint64_t offset, ByteView data) {
    if (finished_)
        return fail(Errc::invalid_argument, "VHD " + path_.string() + ": write after finish");
    if (offset % sector_size != 0 || data.size() % sector_size != 0)
        return fail(Errc::invalid_argument,
                    fmt::format("VHD {}: write of {} bytes at {} is not sector-aligned",
                                path_.string(), data.size(), offset));
    const std::uint64_t size = footer_.current_size;
    if (offset > size || data.size() > size - offset)
        return fail(Errc::invalid_argument,
                    fmt::format("VHD {}: write of {} bytes at {} is past the end of the {}-byte "
                                "disk",
                                path_.string(), data.size(), offset, size));
    const std::uint64_t block_size = header_.block_size;
    std::size_t done = 0;
    while (done < data.size()) {
        std::uint64_t position = offset + done;
        auto block = static_cast<std::uint32_t>(position / block_size);
        std::uint64_t within = position % block_size;
        std::size_t n = static_cast<std::size_t>(
            std::min<std::uint64_t>(data.size() - done, block_size - within));
        ByteView piece = data.subspan(done, n);
        done += n;
        std::uint64_t start = 0;
        if (bat_[block] == unallocated) {
            if (all_zero(piece))
                continue;
            start = HL_TRY(allocate(block));
        } else {
            start = std::uint64_t{bat_[block]} * sector_size;
        }
        HL_TRY(pwrite_all(fd_.get(), piece, start + bitmap_bytes_ + within, path_));
    }
    return {};
}

Status DynamicWriter::finish() {
    if (finished_)
        return fail(Errc::invalid_argument, "VHD " + path_.string() + ": finished twice");
    Bytes table(round_up(bat_.size() * 4, sector_size), 0xFF);
    for (std::size_t i = 0; i < bat_.size(); ++i)
        store_be32(table.data() + 4 * i, bat_[i]);
    HL_TRY(pwrite_all(fd_.get(), table, header_.table_offset, path_));
    HL_TRY(pwrite_all(fd_.get(), encode_footer(footer_), next_free_, path_));
    if (::fdatasync(fd_.get()) != 0)
        return fail_errno("fsync", path_.string());
    finished_ = true;
    return {};
}

} // namespace heirloom::trim::vhd
