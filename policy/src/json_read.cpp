#include "json_form.hpp"

#include <limits>

namespace heirloom::policy::detail {

namespace {
std::unexpected<Error> wrong(std::string_view path, std::string_view message) {
    return fail(Errc::invalid_argument, std::string(path) + ": " + std::string(message));
}
} // namespace

std::string join(std::string_view path, std::string_view key) {
    if (path.empty())
        return std::string(key);
    return std::string(path) + "." + std::string(key);
}

std::string index(std::string_view path, std::size_t i) {
    return std::string(path) + "[" + std::to_string(i) + "]";
}

std::string expected_one_of(std::span<const std::string_view> names) {
    std::string text = "expected one of ";
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (i > 0)
            text += ", ";
        text += names[i];
    }
    return text;
}

Status expect_object(const Json& value, std::string_view path,
                     std::initializer_list<std::string_view> allowed) {
    if (!value.is_object())
        return wrong(path.empty() ? "document" : path, "expected an object");
    for (const auto& [key, member_value] : value.items()) {
        bool known = false;
        for (auto name : allowed)
            known = known || key == name;
        if (!known)
            return wrong(join(path, key), "unknown field");
    }
    return {};
}

Status expect_array(const Json& value, std::string_view path, std::size_t max_entries) {
    if (!value.is_array())
        return wrong(path, "expected an array");
    if (value.size() > max_entries)
        return wrong(path, "more than " + std::to_string(max_entries) + " entries");
    return {};
}

Result<const Json*> member(const Json& object, std::string_view path, std::string_view key) {
    auto it = object.find(key);
    if (it == object.end())
        return wrong(join(path, key), "missing");
    return &*it;
}

Result<std::string> read_string(const Json& value, std::string_view path) {
    if (!value.is_string())
        return wrong(path, "expected a string");
    return value.get<std::string>();
}

Result<std::int64_t> read_int(const Json& value, std::string_view path, std::int64_t min,
                              std::int64_t max) {
    std::string range =
        "expected an integer from " + std::to_string(min) + " to " + std::to_string(max);
    // nlohmann keeps non-negative integers as unsigned; reading one above int64 as signed
    // would wrap, so check that case first.
    if (value.is_number_unsigned()) {
        auto u = value.get<std::uint64_t>();
        if (u > static_cast<std::uint64_t>(max))
            return wrong(path, range);
        auto v = static_cast<std::int64_t>(u);
        if (v < min)
            return wrong(path, range);
        return v;
    }
    if (!value.is_number_integer())
        return wrong(path, range);
    auto v = value.get<std::int64_t>();
    if (v < min || v > max)
        return wrong(path, range);
    return v;
}

Result<std::uint64_t> read_uint(const Json& value, std::string_view path) {
    if (!value.is_number_unsigned())
        return wrong(path, "expected a non-negative integer");
    return value.get<std::uint64_t>();
}

Result<bool> read_bool(const Json& value, std::string_view path) {
    if (!value.is_boolean())
        return wrong(path, "expected true or false");
    return value.get<bool>();
}

Result<std::vector<std::string>> read_strings(const Json& value, std::string_view path,
                                              std::size_t max_entries) {
    HL_TRY(expect_array(value, path, max_entries));
    std::vector<std::string> out;
    out.reserve(value.size());
    for (std::size_t i = 0; i < value.size(); ++i)
        out.push_back(HL_TRY(read_string(value[i], index(path, i))));
    return out;
}

} // namespace heirloom::policy::detail
