#pragma once

// Internal: strict readers for JSON values that name the JSON path of whatever is wrong, and
// the JSON form of each model item, shared by the policy set and the signed effective policy.

#include "heirloom/common/json.hpp"
#include "heirloom/policy/model.hpp"

#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace heirloom::policy::detail {

// "path.key", or just "key" at the top level.
std::string join(std::string_view path, std::string_view key);
// "path[i]".
std::string index(std::string_view path, std::size_t i);

// Fails unless value is an object holding only the allowed keys.
Status expect_object(const Json& value, std::string_view path,
                     std::initializer_list<std::string_view> allowed);
// Fails unless value is an array of at most max_entries.
Status expect_array(const Json& value, std::string_view path, std::size_t max_entries);
// The member at key, or an error saying it is missing.
Result<const Json*> member(const Json& object, std::string_view path, std::string_view key);

// Typed reads that fail with "path: expected ..." on the wrong type or range.
Result<std::string> read_string(const Json& value, std::string_view path);
Result<std::int64_t> read_int(const Json& value, std::string_view path, std::int64_t min,
                              std::int64_t max);
Result<std::uint64_t> read_uint(const Json& value, std::string_view path);
Result<bool> read_bool(const Json& value, std::string_view path);
Result<std::vector<std::string>> read_strings(const Json& value, std::string_view path,
                                              std::size_t max_entries);

template <class E> using EnumNames = std::span<const std::pair<std::string_view, E>>;

// The spelling of e in names (every enum value has one).
template <class E> std::string_view enum_name(EnumNames<E> names, E e) {
    for (const auto& [name, value] : names)
        if (value == e)
            return name;
    return "?";
}

// "expected one of a, b, c", for enum errors.
std::string expected_one_of(std::span<const std::string_view> names);

// The enum value spelled by value, from names.
template <class E>
Result<E> read_enum(const Json& value, std::string_view path, EnumNames<E> names) {
    std::vector<std::string_view> spellings;
    for (const auto& [name, e] : names)
        spellings.push_back(name);
    if (value.is_string()) {
        const auto& text = value.get_ref<const std::string&>();
        for (const auto& [name, e] : names)
            if (text == name)
                return e;
    }
    return fail(Errc::invalid_argument, std::string(path) + ": " + expected_one_of(spellings));
}

// Reads member key of object with parse(value, path of the member); fails if it is missing.
template <class Parse>
auto parse_member(const Json& object, std::string_view path, std::string_view key, Parse parse)
    -> decltype(parse(object, path)) {
    auto it = object.find(key);
    if (it == object.end())
        return fail(Errc::invalid_argument, join(path, key) + ": missing");
    return parse(*it, join(path, key));
}

inline Result<std::string> string_field(const Json& object, std::string_view path,
                                        std::string_view key) {
    return parse_member(object, path, key, read_string);
}
inline Result<std::int64_t> int_field(const Json& object, std::string_view path,
                                      std::string_view key, std::int64_t min, std::int64_t max) {
    return parse_member(object, path, key, [&](const Json& v, std::string_view p) {
        return read_int(v, p, min, max);
    });
}
inline Result<std::uint64_t> uint_field(const Json& object, std::string_view path,
                                        std::string_view key) {
    return parse_member(object, path, key, read_uint);
}
inline Result<bool> bool_field(const Json& object, std::string_view path, std::string_view key) {
    return parse_member(object, path, key, read_bool);
}
inline Result<std::vector<std::string>> strings_field(const Json& object, std::string_view path,
                                                      std::string_view key,
                                                      std::size_t max_entries) {
    return parse_member(object, path, key, [&](const Json& v, std::string_view p) {
        return read_strings(v, p, max_entries);
    });
}
template <class E>
Result<E> enum_field(const Json& object, std::string_view path, std::string_view key,
                     EnumNames<E> names) {
    return parse_member(object, path, key,
                        [&](const Json& v, std::string_view p) { return read_enum(v, p, names); });
}

// The JSON form of each model item; parse_* is the strict inverse of *_to_json.
Json image_to_json(const ImageRef& image);
Json workspace_to_json(const Workspace& workspace);
Json app_to_json(const PublishedApp& app);
Json controls_to_json(const DeviceControls& controls);
Json assignment_to_json(const Assignment& assignment);

Result<ImageRef> parse_image(const Json& value, std::string_view path);
Result<Workspace> parse_workspace(const Json& value, std::string_view path);
Result<PublishedApp> parse_app(const Json& value, std::string_view path);
Result<DeviceControls> parse_controls(const Json& value, std::string_view path);
Result<Assignment> parse_assignment(const Json& value, std::string_view path);

Result<OnExpiry> parse_on_expiry(const Json& value, std::string_view path);
std::string_view on_expiry_name(OnExpiry on_expiry);
std::string_view flow_name(DataFlow flow);
std::string_view printing_name(Printing printing);
std::string_view media_name(RemovableMedia media);

} // namespace heirloom::policy::detail
