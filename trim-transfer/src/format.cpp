#include "heirloom/trim/format.hpp"

namespace heirloom::trim {

std::string chunk_path(const ChunkId& id) {
    std::string hex = to_hex(id);
    return "chunks/" + hex.substr(0, 2) + "/" + hex;
}

bool valid_image_name(std::string_view name) {
    if (name.empty() || name.size() > 64)
        return false;
    auto alnum = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    };
    if (!alnum(name[0]))
        return false;
    for (char c : name)
        if (!alnum(c) && c != '.' && c != '_' && c != '-')
            return false;
    return true;
}

} // namespace heirloom::trim
