// The defaults of each directory type (docs/server.md, "Directory types").

#include "heirloom/server/directory.hpp"

#include <algorithm>

namespace heirloom::server {

void apply_directory_profile(DirectoryConfig& config, DirectoryType type) {
    config.type = type;
    config.user_filter.clear();
    config.group_attribute = "cn";
    switch (type) {
    case DirectoryType::openldap:
        config.user_attribute = "uid";
        config.user_object_class = "inetOrgPerson";
        config.group_object_class.clear();
        config.membership = GroupMembership::automatic;
        break;
    case DirectoryType::posix:
        config.user_attribute = "uid";
        config.user_object_class = "posixAccount";
        config.group_object_class = "posixGroup";
        config.membership = GroupMembership::posix;
        break;
    case DirectoryType::active_directory:
        config.user_attribute = "sAMAccountName";
        config.user_object_class = "user";
        // People: computers are objectClass=user too, but objectCategory=computer.
        config.user_filter = "(&(objectCategory=person)(objectClass=user))";
        config.group_object_class = "group";
        config.membership = GroupMembership::in_chain;
        break;
    }
}

bool same_group_name(const DirectoryConfig& config, std::string_view a, std::string_view b) {
    if (config.type != DirectoryType::active_directory)
        return a == b;
    const auto lower = [](char c) {
        return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    };
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [&](char x, char y) { return lower(x) == lower(y); });
}

} // namespace heirloom::server
