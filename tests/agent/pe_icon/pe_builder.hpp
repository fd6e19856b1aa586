#pragma once

// Builds small Windows programs for the PE icon reader's tests: a resource section laid out
// the way linkers do (root, type, name and language directories, data entries, data), and a
// PE32 or PE32+ file around one such section. The layout is returned too, so a test can make
// one part of it lie.

#include <algorithm>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace heirloom::test::pe {

using Bytes = std::vector<std::uint8_t>;

inline void put16(Bytes& bytes, std::size_t at, std::uint32_t value) {
    bytes[at] = static_cast<std::uint8_t>(value);
    bytes[at + 1] = static_cast<std::uint8_t>(value >> 8);
}
inline void put32(Bytes& bytes, std::size_t at, std::uint32_t value) {
    put16(bytes, at, value & 0xffff);
    put16(bytes, at + 2, value >> 16);
}
inline std::uint32_t get16(std::span<const std::uint8_t> bytes, std::size_t at) {
    return bytes[at] | std::uint32_t(bytes[at + 1]) << 8;
}
inline std::uint32_t get32(std::span<const std::uint8_t> bytes, std::size_t at) {
    return get16(bytes, at) | get16(bytes, at + 2) << 16;
}

inline constexpr std::uint16_t rt_icon = 3;
inline constexpr std::uint16_t rt_group_icon = 14;
inline constexpr std::uint32_t subdirectory = 0x80000000u;

// One resource: its type, its name (or its id when the name is empty), language and bytes.
struct Resource {
    std::uint16_t type = 0;
    std::uint16_t id = 0;
    std::string name{};
    std::uint16_t language = 0x409;
    Bytes data{};
};

// The resource section, and where each part of it is (offsets into it; the i-th entry of the
// vectors belongs to the i-th resource given).
struct ResourceSection {
    Bytes bytes{};
    std::uint32_t address = 0;     // the section's RVA, which data entries point into
    std::uint32_t file_offset = 0; // where resource_section_of found it in its file
    std::map<std::uint16_t, std::uint32_t> type_directory{};
    std::vector<std::uint32_t> name_entry{};         // the resource's entry in its type directory
    std::vector<std::uint32_t> language_directory{}; // the resource's language directory
    std::vector<std::uint32_t> data_entry{};
    std::vector<std::uint32_t> data{};
};

// Lays out resources as a linker does: types in ascending order, each type's resources in the
// order given (named first is the caller's business).
inline ResourceSection build_resources(const std::vector<Resource>& resources,
                                       std::uint32_t address = 0x1000) {
    ResourceSection section{.address = address};
    std::map<std::uint16_t, std::vector<std::size_t>> by_type;
    for (std::size_t i = 0; i < resources.size(); ++i)
        by_type[resources[i].type].push_back(i);
    std::size_t n = resources.size();
    section.name_entry.resize(n);
    section.language_directory.resize(n);
    section.data_entry.resize(n);
    section.data.resize(n);
    std::uint32_t at = 16 + 8 * std::uint32_t(by_type.size());
    for (const auto& [type, members] : by_type) {
        section.type_directory[type] = at;
        for (std::size_t k = 0; k < members.size(); ++k)
            section.name_entry[members[k]] = at + 16 + 8 * std::uint32_t(k);
        at += 16 + 8 * std::uint32_t(members.size());
    }
    for (std::size_t i = 0; i < n; ++i, at += 24)
        section.language_directory[i] = at;
    std::vector<std::uint32_t> names(n);
    for (std::size_t i = 0; i < n; ++i) {
        if (resources[i].name.empty())
            continue;
        names[i] = at;
        at += (2 + 2 * std::uint32_t(resources[i].name.size()) + 3) & ~3u;
    }
    for (std::size_t i = 0; i < n; ++i, at += 16)
        section.data_entry[i] = at;
    for (std::size_t i = 0; i < n; ++i) {
        section.data[i] = at;
        at += (std::uint32_t(resources[i].data.size()) + 3) & ~3u;
    }
    Bytes& out = section.bytes;
    out.assign(at, 0);
    put16(out, 14, std::uint32_t(by_type.size()));
    std::uint32_t entry = 16;
    for (const auto& [type, members] : by_type) {
        put32(out, entry, type);
        put32(out, entry + 4, subdirectory | section.type_directory[type]);
        entry += 8;
        std::uint32_t directory = section.type_directory[type];
        std::uint32_t named = 0;
        for (std::size_t member : members) {
            const Resource& resource = resources[member];
            std::uint32_t name_entry = section.name_entry[member];
            named += resource.name.empty() ? 0 : 1;
            put32(out, name_entry,
                  resource.name.empty() ? resource.id : subdirectory | names[member]);
            put32(out, name_entry + 4, subdirectory | section.language_directory[member]);
        }
        put16(out, directory + 12, named);
        put16(out, directory + 14, std::uint32_t(members.size()) - named);
    }
    for (std::size_t i = 0; i < n; ++i) {
        const Resource& resource = resources[i];
        put16(out, section.language_directory[i] + 14, 1);
        put32(out, section.language_directory[i] + 16, resource.language);
        put32(out, section.language_directory[i] + 20, section.data_entry[i]);
        if (!resource.name.empty()) {
            put16(out, names[i], std::uint32_t(resource.name.size()));
            for (std::size_t c = 0; c < resource.name.size(); ++c)
                put16(out, names[i] + 2 + 2 * c, static_cast<unsigned char>(resource.name[c]));
        }
        put32(out, section.data_entry[i], address + section.data[i]);
        put32(out, section.data_entry[i] + 4, std::uint32_t(resource.data.size()));
        std::copy(resource.data.begin(), resource.data.end(), out.begin() + section.data[i]);
    }
    return section;
}

enum class Format { pe32, pe32_plus };

// Where build_pe puts its headers.
inline constexpr std::size_t pe_offset = 0x40;
inline constexpr std::size_t coff_offset = pe_offset + 4;
inline constexpr std::size_t optional_offset = coff_offset + 20;
inline constexpr std::size_t section_file_offset = 0x200;

inline std::size_t optional_size(Format format) {
    return format == Format::pe32 ? 224 : 240;
}
inline std::size_t section_table_offset(Format format) {
    return optional_offset + optional_size(format);
}
// The offset of data directory `index` (2: resources) in the file.
inline std::size_t data_directory_offset(Format format, std::size_t index) {
    return optional_offset + (format == Format::pe32 ? 96 : 112) + 8 * index;
}

// A PE file with one section, .rsrc, holding section.bytes at section.address.
inline Bytes build_pe(const ResourceSection& section, Format format = Format::pe32) {
    std::uint32_t size = std::uint32_t(section.bytes.size());
    std::uint32_t file_size = (size + 0x1ff) & ~0x1ffu;
    Bytes pe(section_file_offset + file_size, 0);
    pe[0] = 'M';
    pe[1] = 'Z';
    put32(pe, 0x3c, pe_offset);
    pe[pe_offset] = 'P';
    pe[pe_offset + 1] = 'E';
    bool plus = format == Format::pe32_plus;
    put16(pe, coff_offset, plus ? 0x8664 : 0x14c);
    put16(pe, coff_offset + 2, 1);
    put16(pe, coff_offset + 16, std::uint32_t(optional_size(format)));
    put16(pe, coff_offset + 18, plus ? 0x22 : 0x102);
    put16(pe, optional_offset, plus ? 0x20b : 0x10b);
    if (plus)
        put32(pe, optional_offset + 28, 0x40); // ImageBase 0x140000000
    else
        put32(pe, optional_offset + 28, 0x400000);
    put32(pe, optional_offset + 32, 0x1000); // SectionAlignment
    put32(pe, optional_offset + 36, 0x200);  // FileAlignment
    put32(pe, optional_offset + 56, section.address + ((size + 0xfff) & ~0xfffu)); // SizeOfImage
    put32(pe, optional_offset + 60, section_file_offset);                          // SizeOfHeaders
    put16(pe, optional_offset + 68, 2);                                            // GUI subsystem
    put32(pe, optional_offset + (plus ? 108 : 92), 16);
    put32(pe, data_directory_offset(format, 2), section.address);
    put32(pe, data_directory_offset(format, 2) + 4, size);
    std::size_t header = section_table_offset(format);
    std::copy_n(".rsrc", 5, pe.begin() + std::ptrdiff_t(header));
    put32(pe, header + 8, size);
    put32(pe, header + 12, section.address);
    put32(pe, header + 16, file_size);
    put32(pe, header + 20, section_file_offset);
    put32(pe, header + 36, 0x40000040); // initialised data, readable
    std::copy(section.bytes.begin(), section.bytes.end(), pe.begin() + section_file_offset);
    return pe;
}

// The .rsrc section of a PE file a linker made (its bytes up to its virtual size, and its RVA).
inline ResourceSection resource_section_of(std::span<const std::uint8_t> pe) {
    std::size_t header = get32(pe, 0x3c);
    std::size_t sections = get16(pe, header + 6);
    std::size_t table = header + 24 + get16(pe, header + 20);
    for (std::size_t i = 0; i < sections; ++i) {
        std::size_t at = table + 40 * i;
        if (std::string(pe.begin() + std::ptrdiff_t(at), pe.begin() + std::ptrdiff_t(at) + 5) !=
            ".rsrc")
            continue;
        std::size_t offset = get32(pe, at + 20);
        std::size_t size = get32(pe, at + 8);
        return {.bytes = Bytes(pe.begin() + std::ptrdiff_t(offset),
                               pe.begin() + std::ptrdiff_t(offset + size)),
                .address = get32(pe, at + 12),
                .file_offset = std::uint32_t(offset)};
    }
    return {};
}

// A bitmap icon image of size × size pixels at the given depth: a full palette, every pixel
// colour 0 (or black), no pixel masked.
inline Bytes bitmap_image(int size, int bits) {
    std::size_t colours = bits <= 8 ? std::size_t(1) << bits : 0;
    std::size_t stride = (std::size_t(size) * std::size_t(bits) + 31) / 32 * 4;
    std::size_t mask_stride = (std::size_t(size) + 31) / 32 * 4;
    Bytes image(40 + colours * 4 + (stride + mask_stride) * std::size_t(size), 0);
    put32(image, 0, 40);
    put32(image, 4, std::uint32_t(size));
    put32(image, 8, 2 * std::uint32_t(size));
    put16(image, 12, 1);
    put16(image, 14, std::uint32_t(bits));
    return image;
}

// One image as an icon group lists it.
struct GroupEntry {
    int width = 0; // 256 is written as 0
    int height = 0;
    int bits = 0;
    std::uint32_t bytes = 0;
    std::uint16_t id = 0;
};

inline Bytes icon_group(const std::vector<GroupEntry>& entries) {
    Bytes group(6 + 14 * entries.size(), 0);
    put16(group, 2, 1);
    put16(group, 4, std::uint32_t(entries.size()));
    for (std::size_t i = 0; i < entries.size(); ++i) {
        std::size_t at = 6 + 14 * i;
        group[at] = static_cast<std::uint8_t>(entries[i].width & 0xff);
        group[at + 1] = static_cast<std::uint8_t>(entries[i].height & 0xff);
        put16(group, at + 4, 1);
        put16(group, at + 6, std::uint32_t(entries[i].bits));
        put32(group, at + 8, entries[i].bytes);
        put16(group, at + 12, entries[i].id);
    }
    return group;
}

// The resources of a program whose one icon group (id 1) lists these images as RT_ICON ids 1,
// 2, ... (resources[0] is the group, resources[i] image i).
inline std::vector<Resource> icon_resources(const std::vector<Bytes>& images,
                                            const std::vector<GroupEntry>& entries) {
    std::vector<Resource> resources{{.type = rt_group_icon, .id = 1, .data = icon_group(entries)}};
    for (std::size_t i = 0; i < images.size(); ++i)
        resources.push_back({.type = rt_icon, .id = std::uint16_t(i + 1), .data = images[i]});
    return resources;
}

} // namespace heirloom::test::pe
