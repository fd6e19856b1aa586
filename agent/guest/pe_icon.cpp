#include "guest/pe_icon.hpp"

#include "guest/icon_image.hpp"

#include <algorithm>
#include <cstdio>
#include <string>

namespace heirloom::guest {

namespace {

using Bytes = std::vector<std::uint8_t>;
using View = std::span<const std::uint8_t>;

constexpr std::uint32_t rt_icon = 3;
constexpr std::uint32_t rt_group_icon = 14;
constexpr std::size_t max_sections = 96;            // the Windows loader's own limit
constexpr std::uint32_t max_data_directories = 16;  // IMAGE_NUMBEROF_DIRECTORY_ENTRIES
constexpr std::size_t max_directory_entries = 4096; // per resource directory
constexpr std::size_t max_group_entries = 256;      // images in one icon group
constexpr std::uint32_t max_group_bytes = 6 + 14 * 256;
constexpr std::uint32_t max_image_bytes = 512u << 10; // a 256×256 32-bit bitmap is ~265 KiB
constexpr std::uint32_t high_bit = 0x80000000u;

std::uint16_t le16(View b, std::size_t at) {
    return static_cast<std::uint16_t>(b[at] | b[at + 1] << 8);
}
std::uint32_t le32(View b, std::size_t at) {
    return std::uint32_t(b[at]) | std::uint32_t(b[at + 1]) << 8 | std::uint32_t(b[at + 2]) << 16 |
           std::uint32_t(b[at + 3]) << 24;
}

// Whether [offset, offset + length) lies within size bytes; the inputs are at most 2^32 each.
bool fits(std::size_t size, std::uint64_t offset, std::uint64_t length) {
    return offset <= size && length <= size - offset;
}

std::string hex(std::uint64_t value) {
    char text[24];
    std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(value));
    return text;
}

std::unexpected<Error> corrupt(std::string message) {
    return fail(Errc::corrupt, std::move(message));
}

struct Section {
    std::uint32_t address = 0; // RVA
    std::uint32_t file_size = 0;
    std::uint32_t file_offset = 0;
};

struct PeFile {
    View bytes;
    std::vector<Section> sections;
    std::uint32_t resource_address = 0; // RVA of the resource directory
    std::uint32_t resource_size = 0;
};

// The file bytes of length bytes at rva, all within one section's data in the file.
Result<View> map_rva(const PeFile& pe, std::uint32_t rva, std::uint32_t length,
                     const std::string& what) {
    for (const auto& section : pe.sections) {
        if (rva < section.address || !fits(section.file_size, rva - section.address, length))
            continue;
        std::uint64_t offset = std::uint64_t(section.file_offset) + (rva - section.address);
        if (!fits(pe.bytes.size(), offset, length))
            return corrupt(what + " (RVA " + hex(rva) + ", " + std::to_string(length) +
                           " bytes) points past the end of the file (truncated?)");
        return pe.bytes.subspan(offset, length);
    }
    return corrupt(what + " (RVA " + hex(rva) + ", " + std::to_string(length) +
                   " bytes) is not within the file data of any section");
}

Result<Section> read_section(View table, std::size_t index) {
    View entry = table.subspan(index * 40, 40);
    std::uint32_t virtual_size = le32(entry, 8);
    Section section{
        .address = le32(entry, 12), .file_size = le32(entry, 16), .file_offset = le32(entry, 20)};
    // Only the part that is both in the file and in the loaded image holds the file's bytes.
    if (virtual_size != 0)
        section.file_size = std::min(section.file_size, virtual_size);
    if (std::uint64_t(section.address) + section.file_size > UINT32_MAX)
        return corrupt("section " + std::to_string(index + 1) +
                       " runs past the 4 GiB address space");
    return section;
}

Result<PeFile> read_headers(View bytes) {
    if (bytes.size() < 64 || bytes[0] != 'M' || bytes[1] != 'Z')
        return corrupt("not a Windows program (no MZ header)");
    std::uint32_t pe_offset = le32(bytes, 0x3c);
    if (!fits(bytes.size(), pe_offset, 24))
        return corrupt("the PE header offset " + hex(pe_offset) + " points outside the file (" +
                       std::to_string(bytes.size()) + " bytes)");
    if (!std::equal(bytes.begin() + pe_offset, bytes.begin() + pe_offset + 4, "PE\0\0"))
        return fail(Errc::unsupported, "no PE signature at offset " + hex(pe_offset) +
                                           ": an MS-DOS or 16-bit program, which has no icon "
                                           "that can be read");
    std::size_t coff = pe_offset + 4;
    std::size_t section_count = le16(bytes, coff + 2);
    std::size_t optional_size = le16(bytes, coff + 16);
    if (section_count == 0 || section_count > max_sections)
        return corrupt("the PE header lists " + std::to_string(section_count) +
                       " sections, not 1 to 96");
    std::size_t optional = coff + 20;
    if (!fits(bytes.size(), optional, optional_size) || optional_size < 2)
        return corrupt("the optional header (" + std::to_string(optional_size) +
                       " bytes) runs past the end of the file");
    View header = bytes.subspan(optional, optional_size);
    std::uint16_t magic = le16(header, 0);
    if (magic != 0x10b && magic != 0x20b)
        return corrupt("the optional header's magic is " + hex(magic) +
                       ", neither PE32 (0x10b) nor PE32+ (0x20b)");
    std::size_t count_at = magic == 0x10b ? 92 : 108; // NumberOfRvaAndSizes
    if (header.size() < count_at + 4)
        return corrupt("the optional header is " + std::to_string(header.size()) +
                       " bytes, too short for its data directories");
    std::uint32_t directories = le32(header, count_at);
    if (directories > max_data_directories ||
        header.size() < count_at + 4 + std::size_t(directories) * 8)
        return corrupt("the optional header lists " + std::to_string(directories) +
                       " data directories, more than it holds or than 16");
    if (directories <= 2)
        return fail(Errc::not_found, "the program has no resource directory, so no icon");
    PeFile pe{.bytes = bytes,
              .sections = {},
              .resource_address = le32(header, count_at + 4 + 2 * 8),
              .resource_size = le32(header, count_at + 4 + 2 * 8 + 4)};
    if (pe.resource_address == 0 || pe.resource_size == 0)
        return fail(Errc::not_found, "the program has no resources, so no icon");
    std::size_t table = optional + optional_size;
    if (!fits(bytes.size(), table, section_count * 40))
        return corrupt("the section table (" + std::to_string(section_count) +
                       " sections) runs past the end of the file");
    for (std::size_t i = 0; i < section_count; ++i)
        pe.sections.push_back(HL_TRY(read_section(bytes.subspan(table, section_count * 40), i)));
    return pe;
}

// One entry of a resource directory: an id or a name, and a subdirectory or a data entry.
struct ResourceEntry {
    bool named = false;
    std::uint32_t id = 0; // when not named
    bool directory = false;
    std::uint32_t offset = 0; // of the subdirectory or data entry, in the resource section
};

// The resource section and the directories on the current path from its root, to refuse a
// directory that leads back to one of them.
struct ResourceTree {
    View section;
    std::vector<std::uint32_t> path;
};

Result<std::vector<ResourceEntry>> read_directory(ResourceTree& tree, std::uint32_t offset,
                                                  const std::string& what) {
    if (std::ranges::find(tree.path, offset) != tree.path.end())
        return corrupt(what + " at offset " + hex(offset) +
                       " is a directory above it again (a loop)");
    if (!fits(tree.section.size(), offset, 16))
        return corrupt(what + " at offset " + hex(offset) + " points outside the " +
                       std::to_string(tree.section.size()) + "-byte resource section");
    std::size_t named = le16(tree.section, offset + 12);
    std::size_t count = named + le16(tree.section, offset + 14);
    if (count > max_directory_entries)
        return corrupt(what + " lists " + std::to_string(count) + " entries, more than " +
                       std::to_string(max_directory_entries));
    if (!fits(tree.section.size(), offset + 16, count * 8))
        return corrupt(what + "'s " + std::to_string(count) +
                       " entries run past the end of the resource section");
    tree.path.push_back(offset);
    std::vector<ResourceEntry> entries;
    for (std::size_t i = 0; i < count; ++i) {
        std::uint32_t name = le32(tree.section, offset + 16 + i * 8);
        std::uint32_t target = le32(tree.section, offset + 16 + i * 8 + 4);
        ResourceEntry entry{.named = (name & high_bit) != 0,
                            .id = name & ~high_bit,
                            .directory = (target & high_bit) != 0,
                            .offset = target & ~high_bit};
        auto which = [&] {
            return what + " entry " + std::to_string(i + 1);
        };
        if (entry.named != (i < named))
            return corrupt(which() + (entry.named ? " is named among the numbered ones"
                                                  : " is numbered among the named ones"));
        if (!entry.named && entry.id > 0xffff)
            return corrupt(which() + " has id " + hex(entry.id) + ", more than 16 bits");
        if (entry.named && !fits(tree.section.size(), entry.id, 2))
            return corrupt(which() + "'s name points outside the resource section");
        if (entry.named &&
            !fits(tree.section.size(), entry.id + 2ull, 2ull * le16(tree.section, entry.id)))
            return corrupt(which() + "'s name runs past the end of the resource section");
        if (!fits(tree.section.size(), entry.offset, 16))
            return corrupt(which() + " points outside the resource section");
        entries.push_back(entry);
    }
    return entries;
}

// The entry with the given id, or an error of code not_found saying what is missing.
Result<ResourceEntry> find_id(const std::vector<ResourceEntry>& entries, std::uint32_t id,
                              const std::string& missing) {
    auto found = std::ranges::find_if(
        entries, [&](const ResourceEntry& entry) { return !entry.named && entry.id == id; });
    if (found == entries.end())
        return fail(Errc::not_found, missing);
    return *found;
}

Result<ResourceEntry> expect(ResourceEntry entry, bool directory, const std::string& what) {
    if (entry.directory != directory)
        return corrupt(what + (directory ? " is data where a directory belongs"
                                         : " is a directory where data belongs"));
    return entry;
}

// The bytes a resource data entry points at, at most limit of them.
Result<View> read_data(const PeFile& pe, const ResourceTree& tree, std::uint32_t offset,
                       std::uint32_t limit, const std::string& what) {
    std::uint32_t address = le32(tree.section, offset);
    std::uint32_t size = le32(tree.section, offset + 4);
    if (size == 0)
        return corrupt(what + " is empty");
    if (size > limit)
        return corrupt(what + " is " + std::to_string(size) + " bytes, more than " +
                       std::to_string(limit));
    return map_rva(pe, address, size, what);
}

// One image of an icon group (GRPICONDIRENTRY).
struct GroupImage {
    int width = 0;
    int height = 0;
    int bits = 0;
    std::uint32_t bytes = 0;
    std::uint32_t id = 0;
};

Result<std::vector<GroupImage>> read_group(View group) {
    if (group.size() < 6 || le16(group, 0) != 0 || le16(group, 2) != 1)
        return corrupt("the icon group does not start with an icon header (0, 1, count)");
    std::size_t count = le16(group, 4);
    if (count == 0 || count > max_group_entries)
        return corrupt("the icon group lists " + std::to_string(count) + " images, not 1 to 256");
    if (group.size() < 6 + count * 14)
        return corrupt("the icon group's " + std::to_string(count) + " images need " +
                       std::to_string(6 + count * 14) + " bytes but it has " +
                       std::to_string(group.size()));
    std::vector<GroupImage> images;
    for (std::size_t i = 0; i < count; ++i) {
        View entry = group.subspan(6 + i * 14, 14);
        images.push_back({.width = entry[0] == 0 ? 256 : entry[0],
                          .height = entry[1] == 0 ? 256 : entry[1],
                          .bits = le16(entry, 6),
                          .bytes = le32(entry, 8),
                          .id = le16(entry, 12)});
    }
    return images;
}

// The largest image within max_pixels, the deeper one of two the same size, else the first.
Result<GroupImage> choose_image(const std::vector<GroupImage>& images, int max_pixels) {
    const GroupImage* best = nullptr;
    for (const auto& image : images) {
        if (image.width > max_pixels || image.height > max_pixels)
            continue;
        if (best == nullptr || image.width * image.height > best->width * best->height ||
            (image.width * image.height == best->width * best->height && image.bits > best->bits))
            best = &image;
    }
    if (best == nullptr)
        return fail(Errc::not_found, "the icon has no image of at most " +
                                         std::to_string(max_pixels) + "×" +
                                         std::to_string(max_pixels) + " pixels");
    return *best;
}

Result<Bytes> read_icon(View bytes, int max_pixels) {
    PeFile pe = HL_TRY(read_headers(bytes));
    ResourceTree tree{.section = HL_TRY(map_rva(pe, pe.resource_address, pe.resource_size,
                                                "the resource directory")),
                      .path = {}};
    // RT_GROUP_ICON → the first group → its first language → the GRPICONDIR.
    auto types = HL_TRY(read_directory(tree, 0, "the resource directory"));
    auto group_type = HL_TRY(
        find_id(types, rt_group_icon, "the program has no icon (no RT_GROUP_ICON resource)"));
    group_type = HL_TRY(expect(group_type, true, "the RT_GROUP_ICON resource entry"));
    auto groups = HL_TRY(read_directory(tree, group_type.offset, "the icon group directory"));
    if (groups.empty())
        return fail(Errc::not_found, "the program has no icon (its icon group list is empty)");
    auto first = HL_TRY(expect(groups[0], true, "the first icon group"));
    auto languages = HL_TRY(read_directory(tree, first.offset, "the first icon group's directory"));
    if (languages.empty())
        return corrupt("the first icon group has no language entries");
    auto language = HL_TRY(expect(languages[0], false, "the first icon group's first language"));
    View group_bytes =
        HL_TRY(read_data(pe, tree, language.offset, max_group_bytes, "the first icon group"));
    auto group = HL_TRY(read_group(group_bytes));
    GroupImage chosen = HL_TRY(choose_image(group, max_pixels));

    // RT_ICON → the chosen id → the group's language if it has it, else its first.
    tree.path.clear();
    std::string image_name = "icon image " + std::to_string(chosen.id);
    auto icon_type = HL_TRY(find_id(types, rt_icon,
                                    "the icon group lists " + image_name +
                                        " but the program has no RT_ICON resources"));
    icon_type = HL_TRY(expect(icon_type, true, "the RT_ICON resource entry"));
    tree.path.push_back(0);
    auto images = HL_TRY(read_directory(tree, icon_type.offset, "the icon image directory"));
    auto image = HL_TRY(find_id(images, chosen.id,
                                "the icon group lists " + image_name +
                                    " but the program has no such RT_ICON resource"));
    image = HL_TRY(expect(image, true, image_name));
    auto image_languages = HL_TRY(read_directory(tree, image.offset, image_name + "'s directory"));
    if (image_languages.empty())
        return corrupt(image_name + " has no language entries");
    auto same_language = find_id(image_languages, language.id, {});
    auto image_data = HL_TRY(expect(same_language ? *same_language : image_languages[0], false,
                                    image_name + "'s language entry"));
    View image_bytes = HL_TRY(read_data(pe, tree, image_data.offset, max_image_bytes, image_name));
    if (image_bytes.size() != chosen.bytes)
        return corrupt(image_name + " is " + std::to_string(image_bytes.size()) +
                       " bytes but the icon group says " + std::to_string(chosen.bytes));
    return HL_TRY_CTX(icon_image_png(image_bytes, chosen.width, chosen.height), image_name);
}

} // namespace

Result<Bytes> pe_icon_png(std::span<const std::uint8_t> pe, int max_pixels) {
    if (max_pixels < 1 || max_pixels > max_icon_pixels)
        return fail(Errc::invalid_argument,
                    "an icon size of " + std::to_string(max_pixels) + " pixels is not 1 to 256");
    return read_icon(pe, max_pixels);
}

} // namespace heirloom::guest
